"""Training loop for the style network (CPU, deterministic for a given seed; or a GPU).

Augmentation happens on the fly in feature (log-mel) space, per batch:

* gain offset + spectral tilt — a different mic / preamp / room EQ (the model cancels the
  offset itself; the tilt it must learn to ignore);
* optionally (``eq_db``) a random smooth EQ curve across the mel axis — a few peaks and dips
  of random centre, width and gain plus a shelf — as another piano, mic or room would colour
  the sound: the network must not learn the five training pianos' spectra;
* small fractional mel-axis shifts ≈ pitch shift / transposition, and a random
  time-stretch ≈ tempo change (one ``grid_sample`` call does both);
* noise mixing — a random ``none`` window (room tone, chatter) added in the power domain
  at a random level below the music;
* SpecAugment-style time and frequency masks.

Optionally (``splice_p``) some windows are first spliced from two: the start of one window and
the end of another, as the listener hears at a style change or when music starts after room
noise. The label is the later style once it fills half the window, or once it has played
``ONSET_FRAMES`` after no music, so the network learns to name a change rather than to
average over it.

Optionally (``mixup_p``) some music windows are mixed with another music window, in the power
domain at a random share, and learn the shares as soft labels (mixup). The aim is a network
that leans less on what one piece sounds like and more on what its style does.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from training.model import count_params, make_model

NATS_PER_DB = math.log(10.0) / 10.0  # log-mel is ln(power): 10 dB = ln(10) nats
ONSET_FRAMES = 50  # 1 s at the shipped front end's 20 ms hop: music after noise counts as music


def splice(xb: torch.Tensor, yb: torch.Tensor, pool_x: torch.Tensor, pool_y: torch.Tensor,
           gen: torch.Generator, none_label: int | None, p: float
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """With chance ``p``, replace the start of a music window by the start of a random pool
    window, if that one has another label; returns (windows, labels). Windows are
    ``[N, 1, n_mels, n_frames]``."""
    n, _, _, t = xb.shape
    pick = torch.randint(len(pool_x), (n,), generator=gen)
    ya = pool_y[pick]
    use = (torch.rand(n, generator=gen) < p) & (ya != yb)
    if none_label is not None:
        use &= yb != none_label  # the later part is always music
    if not bool(use.any()):
        return xb, yb
    # frames taken from the batch window (its end), at least ONSET_FRAMES, leaving some of A
    tail = torch.randint(ONSET_FRAMES, t - ONSET_FRAMES // 2, (n,), generator=gen)
    later = torch.arange(t).view(1, -1) >= (t - tail).view(-1, 1)
    x = torch.where(later.view(n, 1, 1, t), xb, pool_x[pick])
    after_noise = ya == none_label if none_label is not None else torch.zeros_like(use)
    y = torch.where(after_noise | (2 * tail >= t), yb, ya)
    return torch.where(use.view(n, 1, 1, 1), x, xb), torch.where(use, y, yb)


def mixup(xb: torch.Tensor, yb: torch.Tensor, pool_x: torch.Tensor, pool_y: torch.Tensor,
          gen: torch.Generator, rng: np.random.Generator, n_labels: int,
          none_label: int | None, p: float, alpha: float = 0.4
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """With chance ``p``, mix a music window with a random music window of the pool; returns
    (windows, soft targets ``[N, n_labels]``).

    Both windows are brought to the same mean level, then added in the power domain with
    shares ``lam`` and ``1 - lam`` (``lam ~ Beta(alpha, alpha)``, drawn from ``rng``); the mix
    keeps the first window's level, and its target is the two labels in those shares. ``none``
    windows are never mixed, so no music window is taught to be partly no-music."""
    n = len(xb)
    target = F.one_hot(yb, n_labels).float()
    if p <= 0:
        return xb, target
    music_idx = torch.arange(len(pool_y))
    if none_label is not None:
        music_idx = music_idx[pool_y != none_label]
    pick = music_idx[torch.randint(len(music_idx), (n,), generator=gen)]
    use = torch.rand(n, generator=gen) < p
    if none_label is not None:
        use &= yb != none_label
    lam = torch.from_numpy(rng.beta(alpha, alpha, size=n).astype(np.float32))
    other = pool_x[pick]
    level = xb.mean(dim=(1, 2, 3), keepdim=True) - other.mean(dim=(1, 2, 3), keepdim=True)
    share = lam.view(n, 1, 1, 1).clamp(1e-4, 1 - 1e-4)
    mixed = torch.logaddexp(xb + torch.log(share), other + level + torch.log1p(-share))
    soft = lam.view(n, 1) * target + (1 - lam.view(n, 1)) * F.one_hot(pool_y[pick], n_labels)
    return (torch.where(use.view(n, 1, 1, 1), mixed, xb),
            torch.where(use.view(n, 1), soft, target))


class Augment:
    """Feature-space augmentation of a batch ``[N, 1, n_mels, n_frames]`` of raw log-mel."""

    def __init__(self, noise: torch.Tensor | None, gen: torch.Generator, *,
                 gain_db: float = 20.0, tilt_db: float = 6.0, mel_shift: float = 1.5,
                 stretch: float = 0.15, snr_db: tuple[float, float] = (3.0, 25.0),
                 p_noise: float = 0.5, time_masks: int = 2, time_mask: int = 16,
                 freq_masks: int = 2, freq_mask: int = 12, eq_db: float = 0.0):
        self.noise = noise
        self.eq_db = eq_db
        self.g = gen
        self.gain_db, self.tilt_db = gain_db, tilt_db
        self.mel_shift, self.stretch = mel_shift, stretch
        self.snr_db, self.p_noise = snr_db, p_noise
        self.time_masks, self.time_mask, self.freq_masks, self.freq_mask = (
            time_masks, time_mask, freq_masks, freq_mask)

    def _u(self, n: int, lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, generator=self.g)

    def eq_curves(self, n: int, n_mels: int) -> torch.Tensor:
        """``[n, n_mels]`` random EQ curves in nats: three Gaussian peaks/dips (centre anywhere,
        width 3-40 bands, gain within +-eq_db) and a shelf (+-eq_db/2 above or below a random
        band); a quarter of the curves also cut everything below a random band (a small or
        distant mic losing the bass)."""
        band = torch.arange(n_mels, dtype=torch.float32).view(1, -1)
        curve = torch.zeros(n, n_mels)
        for _ in range(3):
            centre = self._u(n, 0.0, n_mels - 1.0).view(-1, 1)
            width = self._u(n, 3.0, 40.0).view(-1, 1)
            gain = self._u(n, -self.eq_db, self.eq_db).view(-1, 1)
            curve += gain * torch.exp(-0.5 * ((band - centre) / width) ** 2)
        edge = self._u(n, 0.0, n_mels - 1.0).view(-1, 1)
        soft = self._u(n, 2.0, 12.0).view(-1, 1)
        shelf = self._u(n, -self.eq_db / 2, self.eq_db / 2).view(-1, 1)
        curve += shelf * torch.sigmoid((band - edge) / soft)
        cut = (torch.rand(n, generator=self.g) < 0.25).float().view(-1, 1)
        low = self._u(n, 2.0, 20.0).view(-1, 1)
        curve -= cut * 2.0 * self.eq_db * torch.sigmoid((low - band) / 2.0)
        return curve * NATS_PER_DB

    def __call__(self, x: torch.Tensor, y: torch.Tensor, none_label: int | None) -> torch.Tensor:
        n, _, n_mels, n_frames = x.shape
        x = x.clone()
        # pitch (mel shift) and tempo (time stretch) via one affine resampling
        theta = torch.zeros(n, 2, 3)
        theta[:, 0, 0] = torch.exp(self._u(n, -self.stretch, self.stretch))  # time scale
        theta[:, 0, 2] = self._u(n, -1.0, 1.0) * (theta[:, 0, 0] - 1).abs()  # keep in range
        theta[:, 1, 1] = 1.0
        theta[:, 1, 2] = self._u(n, -self.mel_shift, self.mel_shift) * 2.0 / n_mels
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection",
                          align_corners=False)

        # noise mixing, in the power domain, at a random SNR relative to the window's mean
        if self.noise is not None and len(self.noise) and self.p_noise > 0:
            pick = torch.randint(len(self.noise), (n,), generator=self.g)
            nz = self.noise[pick]
            use = torch.rand(n, generator=self.g) < self.p_noise
            if none_label is not None:
                use &= y != none_label
            snr = self._u(n, *self.snr_db) * NATS_PER_DB
            offset = (x.mean(dim=(1, 2, 3)) - nz.mean(dim=(1, 2, 3)) - snr).view(n, 1, 1, 1)
            mixed = torch.logaddexp(x, nz + offset)
            x = torch.where(use.view(n, 1, 1, 1), mixed, x)

        # gain offset and spectral tilt (dB across the mel axis)
        gain = self._u(n, -self.gain_db, self.gain_db) * NATS_PER_DB
        tilt = self._u(n, -self.tilt_db, self.tilt_db) * NATS_PER_DB
        ramp = torch.linspace(-0.5, 0.5, n_mels)
        x = x + gain.view(n, 1, 1, 1) + tilt.view(n, 1, 1, 1) * ramp.view(1, 1, n_mels, 1)
        if self.eq_db > 0:
            x = x + self.eq_curves(n, n_mels).view(n, 1, n_mels, 1)

        # SpecAugment masks, filled with the window's mean (neutral after mean removal)
        fill = x.mean(dim=(2, 3), keepdim=True).expand_as(x)
        t_idx = torch.arange(n_frames).view(1, -1)
        f_idx = torch.arange(n_mels).view(1, -1)
        mask = torch.zeros(n, n_mels, n_frames, dtype=torch.bool)
        for _ in range(self.time_masks):
            w = torch.randint(0, self.time_mask + 1, (n, 1), generator=self.g)
            s = (torch.rand(n, 1, generator=self.g) * (n_frames - w)).long()
            mask |= ((t_idx >= s) & (t_idx < s + w)).view(n, 1, n_frames)
        for _ in range(self.freq_masks):
            w = torch.randint(0, self.freq_mask + 1, (n, 1), generator=self.g)
            s = (torch.rand(n, 1, generator=self.g) * (n_mels - w)).long()
            mask |= ((f_idx >= s) & (f_idx < s + w)).view(n, n_mels, 1)
        return torch.where(mask.unsqueeze(1), fill, x)


def _balanced_indices(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One epoch of indices with every class drawn equally often (as often as the largest)."""
    classes = np.unique(y)
    per = max(int((y == c).sum()) for c in classes)
    idx = np.concatenate([rng.choice(np.flatnonzero(y == c), per, replace=True)
                          for c in classes])
    rng.shuffle(idx)
    return idx


def _lr_at(progress: float, peak: float, warmup: float = 0.1) -> float:
    """Linear warm-up then cosine decay to 1% of ``peak`` over ``progress`` in [0, 1]."""
    p = min(max(progress, 0.0), 1.0)
    if p < warmup:
        return peak * max(p / warmup, 0.02)
    return peak * (0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * (p - warmup) / (1 - warmup))))


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
             batch: int = 256) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) of ``model`` on windows ``x`` ``[N,1,M,T]``, which stay
    where they are; each batch goes to the model's device."""
    model.eval()
    dev = next(model.parameters()).device
    correct, loss = 0, 0.0
    for i in range(0, len(x), batch):
        xb, yb = x[i:i + batch].to(dev), y[i:i + batch].to(dev)
        lg = model.logits(xb.contiguous(memory_format=torch.channels_last))
        correct += int((lg.argmax(1) == yb).sum())
        loss += float(F.cross_entropy(lg, yb, reduction="sum"))
    return correct / max(1, len(x)), loss / max(1, len(x))


def train(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, *,
          labels: list[str] | tuple[str, ...], epochs: int, seed: int = 0,
          time_budget_s: float | None = None, batch_size: int = 64, lr: float = 3e-3,
          weight_decay: float = 1e-2, label_smoothing: float = 0.1, augment: bool = True,
          emb_dim: int = 96, lr_follows_budget: bool = False,
          widths: tuple[int, int, int, int] | None = None, keep: str = "best",
          splice_p: float = 0.0, mixup_p: float = 0.0, register: bool = False,
          band_norm: float = 0.0, eq_db: float = 0.0, device: str = "cpu",
          init_from: Path | str | None = None,
          log: Callable[[str], None] = print) -> tuple[nn.Module, dict]:
    """Train a ``make_model`` network, fresh or from ``init_from`` (a bundle's ``model.onnx``,
    see ``training.warm_start``); return (model, history).

    ``keep="best"`` returns the epoch with the best val accuracy; ``keep="last"`` returns the
    final weights, so val only reports and never selects (the honest choice when val is also
    the number quoted). ``splice_p``: chance that a music window is spliced after another label
    (see ``splice``).

    ``x_*`` float32 ``[N, n_mels, n_frames]`` raw log-mel, ``y_*`` int64 indices into
    ``labels``. Windows labelled ``"none"`` (if that label exists) double as the noise
    bank for noise mixing. ``time_budget_s`` stops training (between batches) once spent;
    the best epoch so far is kept. The learning rate warms up then follows a cosine over
    ``epochs`` (over the time budget instead with ``lr_follows_budget``). Same seed, same
    data, same thread count → the same weights on the CPU. ``device`` (e.g. ``"cuda"``) runs
    the network there; windows, sampling and augmentation stay on the CPU with the same random
    streams, so only the arithmetic moves (a GPU's is not bit-reproducible). The returned
    model is on the CPU. ``history`` has per-epoch lists ``train_loss``,
    ``val_acc``, ``val_loss``, ``seconds`` plus ``best_epoch`` and ``params``.
    """
    t0 = time.monotonic()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    labels = list(labels)
    xt = torch.from_numpy(np.ascontiguousarray(x_train, dtype=np.float32)).unsqueeze(1)
    yt_np = np.asarray(y_train, dtype=np.int64)
    yt = torch.from_numpy(yt_np)
    xv = torch.from_numpy(np.ascontiguousarray(x_val, dtype=np.float32)).unsqueeze(1)
    yv = torch.from_numpy(np.asarray(y_val, dtype=np.int64))
    _, _, n_mels, n_frames = xt.shape

    none_label = labels.index("none") if "none" in labels else None
    noise = xt[yt == none_label] if none_label is not None else None
    aug = Augment(noise, gen, eq_db=eq_db) if augment else None

    if keep not in ("best", "last"):
        raise ValueError(f"keep must be 'best' or 'last', got {keep!r}")
    model = make_model(n_mels, n_frames, len(labels), emb_dim=emb_dim, register=register,
                       band_norm=band_norm,
                       **({"widths": tuple(widths)} if widths else {}))
    if init_from is not None:
        from training.warm_start import load_bundle_weights

        pick = np.random.default_rng(seed + 1).choice(len(xt), size=min(4096, len(xt)),
                                                      replace=False)
        load_bundle_weights(model, init_from, xt[np.sort(pick)])
        log(f"weights from {init_from}")
    model = model.to(device)
    # channels-last convolutions are ~15 % faster on this CPU (oneDNN); the numbers are the same
    model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps_per_epoch = math.ceil(len(_balanced_indices(yt_np, np.random.default_rng(0)))
                                / batch_size)
    total_steps, step = max(1, epochs * steps_per_epoch), 0
    loss_fn = nn.CrossEntropyLoss(label_smoothing=label_smoothing)

    hist: dict = {"train_loss": [], "val_acc": [], "val_loss": [], "seconds": [],
                  "best_epoch": -1, "params": count_params(model), "stopped_by_budget": False}
    best_acc, best_loss, best_state = -1.0, math.inf, copy.deepcopy(model.state_dict())
    for epoch in range(epochs):
        model.train()
        idx = _balanced_indices(yt_np, rng)
        total, seen, out_of_time = 0.0, 0, False
        for i in range(0, len(idx), batch_size):
            if time_budget_s is not None and time.monotonic() - t0 > time_budget_s:
                out_of_time = True
                break
            # with lr_follows_budget, progress = steps done or time spent, whichever is further
            # along, so a run cut short by its budget has still annealed (but then the run
            # depends on wall-clock speed and is no longer bit-reproducible)
            progress = step / total_steps
            if time_budget_s and lr_follows_budget:
                progress = max(progress, (time.monotonic() - t0) / time_budget_s)
            for group in opt.param_groups:
                group["lr"] = _lr_at(progress, lr)
            step += 1
            b = torch.from_numpy(idx[i:i + batch_size])
            xb, yb = xt[b], yt[b]
            if splice_p > 0:
                xb, yb = splice(xb, yb, xt, yt, gen, none_label, splice_p)
            target = None
            if mixup_p > 0:
                xb, target = mixup(xb, yb, xt, yt, gen, rng, len(labels), none_label, mixup_p)
            if aug is not None:
                xb = aug(xb, yb, none_label)
            xb = xb.to(device).contiguous(memory_format=torch.channels_last)
            loss = loss_fn(model.logits(xb), (yb if target is None else target).to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(b)
            seen += len(b)
        if seen == 0:
            hist["stopped_by_budget"] = True
            break
        acc, vloss = evaluate(model, xv, yv)
        hist["train_loss"].append(total / seen)
        hist["val_acc"].append(acc)
        hist["val_loss"].append(vloss)
        hist["seconds"].append(time.monotonic() - t0)
        better = acc > best_acc or (acc == best_acc and vloss < best_loss)
        if better:
            best_acc, best_loss = acc, vloss
            best_state = copy.deepcopy(model.state_dict())
            hist["best_epoch"] = epoch
        log(f"epoch {epoch + 1}/{epochs}  loss {total / seen:.4f}  val_acc {acc:.4f}  "
            f"val_loss {vloss:.4f}  {'*' if better else ' '}  {time.monotonic() - t0:.0f}s"
            + ("  (time budget spent mid-epoch)" if out_of_time else ""))
        if out_of_time:
            hist["stopped_by_budget"] = True
            break
    hist["kept"] = keep
    if keep == "best":
        model.load_state_dict(best_state)
    model = model.cpu().to(memory_format=torch.contiguous_format).eval()
    return model, hist
