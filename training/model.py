"""The style network: a small CNN over one log-mel window.

Design notes (why it looks like this):

* Gain invariance: the first thing ``forward`` does is subtract the window's mean log-mel.
  A louder or quieter mic adds a constant in the log domain, so it cancels exactly.
* Pitch-shift robustness: every conv slides along the mel axis (weights shared across
  frequency) and the head pools globally over frequency as well as time, so a pattern
  moved a few mel bins up or down lands on the same features. Training adds small mel
  shifts on top (``train.py``).
* Register (optional, ``register=True``): a second input channel holds each mel band's
  position, so the convs can tell a low stride bass from the same shape played higher;
  without it the global pooling over frequency leaves register to the edges of the
  receptive field. The mel-shift augmentation still moves the music against that channel.
* Timbre/EQ robustness (optional, ``band_norm`` = lambda in (0, 1]): after the gain
  invariance, lambda times each mel band's mean over the window is subtracted. A mic, a room
  or a piano that colours the sound by a fixed EQ adds a constant per band in the log domain,
  so at lambda = 1 it cancels exactly; lambda < 1 keeps part of the long-term spectrum, which
  also carries register. (A relaxed, mean-only form of frequency-wise instance normalisation,
  as used for unseen recording devices in acoustic scene classification.)
* Tempo robustness: global pooling over time makes the output independent of where in
  the window an event sits; training adds random time-stretches.
* Deployability: only Conv, BatchNorm (folded into Conv at export), ReLU, MaxPool,
  GlobalAverage/MaxPool, Concat, Gemm, ReduceMean/Sub and Softmax — all of which
  ONNX Runtime's static QDQ quantiser and TensorRT's explicit-INT8 path handle.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


class _ConvBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int | tuple[int, int],
                 stride: int | tuple[int, int] = 1, pool: int | tuple[int, int] | None = 2):
        super().__init__()
        k = (kernel, kernel) if isinstance(kernel, int) else kernel
        self.conv = nn.Conv2d(c_in, c_out, k, stride=stride, padding=(k[0] // 2, k[1] // 2),
                              bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.act = nn.ReLU(inplace=True)
        self.pool = nn.MaxPool2d(pool) if pool else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.act(self.bn(self.conv(x))))


class StyleNet(nn.Module):
    """``forward(x) -> (probs, embedding)``; ``logits(x)`` for training.

    ``x`` is ``[N, 1, n_mels, n_frames]`` raw log-mel (as ``log_mel`` returns it).
    """

    def __init__(self, n_mels: int, n_frames: int, n_labels: int, emb_dim: int = 96,
                 widths: tuple[int, int, int, int] = (24, 48, 64, 128), register: bool = False,
                 band_norm: float = 0.0):
        super().__init__()
        if not 0.0 <= band_norm <= 1.0:
            raise ValueError(f"band_norm must be in [0, 1], got {band_norm}")
        self.n_mels, self.n_frames = n_mels, n_frames
        self.band_norm = float(band_norm)
        self.n_labels, self.emb_dim = n_labels, emb_dim
        self.register = register
        if register:
            self.register_buffer("band", torch.linspace(-1.0, 1.0, n_mels).view(1, 1, n_mels, 1))
        w1, w2, w3, w4 = widths
        # the stem strides 2x2 straight away: full-resolution convs cost most of the time
        self.features = nn.Sequential(
            _ConvBlock(2 if register else 1, w1, 5, stride=2, pool=2),   # /4
            _ConvBlock(w1, w2, 3, pool=2),            # /8
            _ConvBlock(w2, w3, 3, pool=2),            # /16
            _ConvBlock(w3, w4, 3, pool=None),
        )
        self.avg = nn.AdaptiveAvgPool2d(1)
        self.max = nn.AdaptiveMaxPool2d(1)
        self.embed = nn.Sequential(nn.Linear(2 * w4, emb_dim), nn.ReLU(inplace=True))
        self.dropout = nn.Dropout(0.2)
        self.head = nn.Linear(emb_dim, n_labels)

    def embedding(self, x: torch.Tensor) -> torch.Tensor:
        x = x - x.mean(dim=(1, 2, 3), keepdim=True)   # gain invariance
        if self.band_norm:
            x = x - self.band_norm * x.mean(dim=3, keepdim=True)   # fixed EQ, partly
        if self.register:
            x = torch.cat([x, self.band.expand(x.shape[0], 1, -1, x.shape[3])], dim=1)
        f = self.features(x)
        pooled = torch.cat([self.avg(f), self.max(f)], dim=1).flatten(1)
        return self.embed(pooled)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.embedding(x)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        e = self.embedding(x)
        return torch.softmax(self.head(e), dim=1), e


def make_model(n_mels: int, n_frames: int, n_labels: int, emb_dim: int = 96, *,
               widths: tuple[int, int, int, int] = (24, 48, 64, 128),
               register: bool = False, band_norm: float = 0.0) -> nn.Module:
    """A fresh StyleNet: about 138 k parameters, ~27 M multiply-adds per 128x144 window.

    Widths were picked by latency: INT8 ~0.4 ms/window on one x86 core in ONNX Runtime,
    leaving the rest of the 5 ms budget to the log-mel front end (~3.7 ms).
    """
    return StyleNet(n_mels, n_frames, n_labels, emb_dim, widths=widths, register=register,
                    band_norm=band_norm)


def count_params(model: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def fused_for_export(model: nn.Module) -> nn.Module:
    """An eval-mode copy with every BatchNorm folded into the conv before it.

    Folding here (rather than trusting the exporter) keeps the ONNX graph to plain
    Conv+ReLU whatever exporter torch uses, which is what the INT8 quantiser wants.
    """
    m = copy.deepcopy(model).eval()
    for mod in m.modules():
        if isinstance(mod, _ConvBlock) and isinstance(mod.bn, nn.BatchNorm2d):
            mod.conv = fuse_conv_bn_eval(mod.conv, mod.bn)
            mod.bn = nn.Identity()
    return m
