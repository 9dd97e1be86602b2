"""Start training from an engine bundle's weights instead of from scratch.

A bundle keeps only ``model.onnx``, whose convolutions have their BatchNorm folded in
(``model.fused_for_export``). To train on, the folds are undone: each conv gets the folded
weights, and its BatchNorm is set to the mean and spread of that conv's output on real windows,
so that in eval mode the network computes exactly what the bundle computed, and in train mode
(batch statistics) very nearly so. A build that was cut short by its time budget can then be
continued rather than repeated.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

from training.model import _ConvBlock, fused_for_export


class WarmStartError(ValueError):
    """The bundle's weights do not fit the network being trained."""


def bundle_weights(onnx_path: Path | str) -> dict[str, torch.Tensor]:
    """The named initializers of an exported (fused) model, as tensors."""
    graph = onnx.load(str(onnx_path)).graph
    return {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in graph.initializer}


@torch.no_grad()
def load_bundle_weights(model: nn.Module, onnx_path: Path | str,
                        sample_x: np.ndarray | torch.Tensor, batch: int = 256) -> None:
    """Give ``model`` (a fresh, unfused ``StyleNet``) the weights of ``onnx_path``, in place.

    ``sample_x``: windows ``[N, n_mels, n_frames]`` (or with the channel axis) whose statistics
    set each BatchNorm; a few thousand training windows are plenty. Raises ``WarmStartError``
    naming the first tensor whose name or shape does not match.
    """
    weights = bundle_weights(onnx_path)
    fused = fused_for_export(model).cpu().float()
    target = fused.state_dict()
    missing = sorted(set(target) - set(weights))
    if missing:
        raise WarmStartError(f"{onnx_path}: no weights for {', '.join(missing[:4])} "
                             "(was it exported from a different network?)")
    for k, v in target.items():
        if tuple(weights[k].shape) != tuple(v.shape):
            raise WarmStartError(f"{onnx_path}: {k} has shape {tuple(weights[k].shape)}, the "
                                 f"network wants {tuple(v.shape)} (different --widths or "
                                 "--register?)")
    fused.load_state_dict({k: weights[k] for k in target})

    blocks = [m for m in fused.features if isinstance(m, _ConvBlock)]
    sums = [None] * len(blocks)
    sq = [None] * len(blocks)
    count = [0] * len(blocks)

    def hook(i: int):
        def capture(mod: nn.Conv2d, _inp, out: torch.Tensor) -> None:
            z = (out - mod.bias.view(1, -1, 1, 1)).double()
            s, s2 = z.sum(dim=(0, 2, 3)), (z * z).sum(dim=(0, 2, 3))
            sums[i] = s if sums[i] is None else sums[i] + s
            sq[i] = s2 if sq[i] is None else sq[i] + s2
            count[i] += z.shape[0] * z.shape[2] * z.shape[3]
        return capture

    handles = [b.conv.register_forward_hook(hook(i)) for i, b in enumerate(blocks)]
    x = torch.as_tensor(np.asarray(sample_x, dtype=np.float32))
    if x.ndim == 3:
        x = x.unsqueeze(1)
    fused.eval()
    try:
        for i in range(0, len(x), batch):
            fused.embedding(x[i:i + batch])
    finally:
        for h in handles:
            h.remove()

    own = [m for m in model.features if isinstance(m, _ConvBlock)]
    for i, (src, dst) in enumerate(zip(blocks, own, strict=True)):
        mean = sums[i] / count[i]
        var = (sq[i] / count[i] - mean * mean).clamp_min(1e-12)
        bn = dst.bn
        dst.conv.weight.copy_(src.conv.weight)
        bn.running_mean.copy_(mean.float())
        bn.running_var.copy_(var.float())
        bn.weight.copy_(torch.sqrt(var + bn.eps).float())
        bn.bias.copy_((mean + src.conv.bias.double()).float())
    own_state = model.state_dict()
    for k in ("embed.0.weight", "embed.0.bias", "head.weight", "head.bias"):
        own_state[k].copy_(weights[k])
