"""The class-balanced refit of the last layer (training.head_refit)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from training.head_refit import refit_head  # noqa: E402
from training.model import make_model  # noqa: E402

torch.set_num_threads(1)
N_MELS, N_FRAMES, LABELS = 32, 24, 3
WIDTHS = (8, 8, 16, 16)


def windows(per_class: tuple[int, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noise windows; each label lifts its own band of mel rows, so a network, even an
    untrained one, embeds the labels apart."""
    rng = np.random.default_rng(seed)
    x, y = [], []
    for c, n in enumerate(per_class):
        w = rng.normal(-9.0, 1.0, (n, N_MELS, N_FRAMES))
        w[:, c * 10:c * 10 + 10] += 5.0
        x.append(w)
        y += [c] * n
    return np.concatenate(x).astype(np.float32), np.array(y, dtype=np.int64)


def recalls(model, x: np.ndarray, y: np.ndarray) -> list[float]:
    with torch.no_grad():
        pred = model.eval().logits(torch.from_numpy(x).unsqueeze(1)).argmax(1).numpy()
    return [float((pred[y == c] == c).mean()) for c in range(LABELS)]


def test_a_head_leaning_to_one_label_is_refitted_to_name_them_all_and_nothing_else_moves():
    torch.manual_seed(0)
    model = make_model(N_MELS, N_FRAMES, LABELS, widths=WIDTHS).eval()
    with torch.no_grad():
        model.head.bias.copy_(torch.tensor([30.0, 0.0, 0.0]))  # says label 0 whatever it hears
    # label 0 has most of the windows, as baroque had most of genre-2's keyboard works
    xt, yt = windows((300, 40, 40), seed=1)
    xv, yv = windows((50, 50, 50), seed=2)
    assert recalls(model, xv, yv)[1:] == [0.0, 0.0]
    below = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("head.")}

    info = refit_head(model, xt, yt, n_labels=LABELS, per_class=200, log=lambda _s: None)

    assert min(recalls(model, xv, yv)) >= 0.9, recalls(model, xv, yv)
    assert info["windows"] == 200 + 40 + 40          # every label, capped per label
    assert info["train_recall_before"][1:] == [0.0, 0.0]
    assert min(info["train_recall_after"]) >= 0.9
    for k, v in model.state_dict().items():
        if not k.startswith("head."):
            assert torch.equal(v, below[k]), k
