"""Fit the network's last layer again, every class weighted equally (classifier re-training).

Why: genre-2.1's own head named classical on 0.14 of classical *training* windows (baroque
0.83), so the fault is not overfitting; yet a class-balanced linear fit on the same network's
embeddings named classical on 0.43 of dev-real classical windows (0.10 with its own head).
The trained head leans to the styles it learnt first; a convex fit of the last layer alone,
on embeddings of the unaugmented training windows, spreads the decisions over the four
styles again. Everything below the head stays as trained. See docs/experiments/genre-2.md.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


@torch.no_grad()
def embeddings(model: nn.Module, x: np.ndarray, batch: int = 256) -> torch.Tensor:
    """The model's embeddings (eval mode: BatchNorm's running statistics, no dropout) of
    windows ``x`` ``[N, n_mels, n_frames]``."""
    model.eval()
    dev = next(model.parameters()).device
    out = []
    for i in range(0, len(x), batch):
        xb = torch.from_numpy(np.ascontiguousarray(x[i:i + batch], dtype=np.float32))
        xb = xb.unsqueeze(1).to(dev).contiguous(memory_format=torch.channels_last)
        out.append(model.embedding(xb).float().cpu())
    return torch.cat(out)


def _recalls(pred: torch.Tensor, y: torch.Tensor, n: int) -> list[float]:
    return [round(float((pred[y == c] == c).float().mean()), 4) if bool((y == c).any()) else 0.0
            for c in range(n)]


def refit_head(model: nn.Module, x: np.ndarray, y: np.ndarray, *, n_labels: int,
               per_class: int = 4000, seed: int = 0, weight_decay: float = 1e-4,
               log: Callable[[str], None] = print) -> dict:
    """Refit ``model.head`` (in place) on up to ``per_class`` training windows of each label,
    drawn without replacement, the loss weighting every label equally; return what it did
    (windows used, training-window recall per label before and after)."""
    rng = np.random.default_rng(seed)
    y = np.asarray(y, dtype=np.int64)
    idx = np.sort(np.concatenate([
        rng.choice(np.flatnonzero(y == c), size=min(per_class, int((y == c).sum())),
                   replace=False)
        for c in range(n_labels) if (y == c).any()]))
    emb = embeddings(model, x[idx])
    yy = torch.from_numpy(y[idx])
    counts = torch.bincount(yy, minlength=n_labels).clamp(min=1).float()
    weight = (counts.sum() / (n_labels * counts)).to(emb.dtype)

    head: nn.Linear = model.head
    dev = head.weight.device
    w = head.weight.detach().cpu().clone().requires_grad_(True)
    b = head.bias.detach().cpu().clone().requires_grad_(True)
    before = _recalls((emb @ w.T + b).argmax(1), yy, n_labels)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=500, tolerance_grad=1e-6,
                            line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(emb @ w.T + b, yy, weight=weight) + weight_decay * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        after = _recalls((emb @ w.T + b).argmax(1), yy, n_labels)
        head.weight.copy_(w.detach().to(dev))
        head.bias.copy_(b.detach().to(dev))
    log(f"head refit on {len(idx)} training windows: recall per label {before} -> {after}")
    return {"windows": int(len(idx)), "per_class": per_class, "weight_decay": weight_decay,
            "train_recall_before": before, "train_recall_after": after}


__all__ = ["embeddings", "refit_head"]
