"""Continuing a build from a bundle's folded weights (training.warm_start)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from training.export import INPUT, export_fp32  # noqa: E402
from training.model import make_model  # noqa: E402
from training.train import train  # noqa: E402
from training.warm_start import WarmStartError, load_bundle_weights  # noqa: E402

torch.set_num_threads(1)
N_MELS, N_FRAMES, LABELS = 64, 48, 5
WIDTHS = (8, 16, 16, 24)


def windows(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(-9.0, 2.0, (n, N_MELS, N_FRAMES))
    x[: n // 2, 10:20] += 4.0          # two kinds of window, so the statistics are not trivial
    return x.astype(np.float32)


def trained_source(seed: int = 0) -> torch.nn.Module:
    """A network whose BatchNorms hold learned, non-default scales and running statistics."""
    torch.manual_seed(seed)
    m = make_model(N_MELS, N_FRAMES, LABELS, widths=WIDTHS)
    opt = torch.optim.SGD(m.parameters(), lr=0.05)
    x = torch.from_numpy(windows(64, seed)).unsqueeze(1)
    y = torch.arange(64) % LABELS
    m.train()
    for _ in range(5):
        loss = torch.nn.functional.cross_entropy(m.logits(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return m.eval()


def test_a_warm_started_network_computes_what_the_bundle_computed(tmp_path):
    src = trained_source()
    path = tmp_path / "model.onnx"
    export_fp32(src, path, N_MELS, N_FRAMES)
    torch.manual_seed(123)                         # a different fresh network
    dst = make_model(N_MELS, N_FRAMES, LABELS, widths=WIDTHS)
    sample = windows(200, 7)
    x = torch.from_numpy(windows(32, 9)).unsqueeze(1)
    with torch.no_grad():
        before = dst.eval()(x)[0]
    load_bundle_weights(dst, path, sample)
    with torch.no_grad():
        probs, emb = dst.eval()(x)
        want_probs, want_emb = src(x)
    assert not torch.allclose(before, want_probs, atol=1e-3)
    np.testing.assert_allclose(probs.numpy(), want_probs.numpy(), atol=1e-4)
    np.testing.assert_allclose(emb.numpy(), want_emb.numpy(), rtol=1e-4, atol=1e-4)
    ort_probs = ort.InferenceSession(str(path)).run(None, {INPUT: x.numpy()})[0]
    np.testing.assert_allclose(probs.numpy(), ort_probs, atol=1e-4)

    # in train mode the BatchNorms use the batch's own statistics; on the windows that set
    # them, those are the statistics stored, so the network still computes the same thing
    s = torch.from_numpy(sample).unsqueeze(1)
    with torch.no_grad():
        dst.train()
        e_train = dst.embedding(s)
        dst.eval()
        e_eval = dst.embedding(s)
    np.testing.assert_allclose(e_train.numpy(), e_eval.numpy(), rtol=1e-3, atol=1e-3)


def test_a_bundle_of_another_shape_is_refused_by_name(tmp_path):
    path = tmp_path / "model.onnx"
    export_fp32(trained_source(), path, N_MELS, N_FRAMES)
    other = make_model(N_MELS, N_FRAMES, LABELS, widths=(8, 16, 32, 24))
    with pytest.raises(WarmStartError, match=r"features\.2\.conv\.weight"):
        load_bundle_weights(other, path, windows(16, 1))


def test_training_continues_from_the_bundle(tmp_path):
    """One short epoch at a tiny learning rate from the bundle keeps the bundle's embedding; the
    same epoch from scratch does not."""
    src = trained_source()
    path = tmp_path / "model.onnx"
    export_fp32(src, path, N_MELS, N_FRAMES)
    xt, yt = windows(40, 3), (np.arange(40) % LABELS).astype(np.int64)
    xv = windows(20, 4)
    kw = dict(labels=["a", "b", "c", "d", "none"], epochs=1, widths=WIDTHS, augment=False,
              lr=1e-6, keep="last", log=lambda _s: None)
    x = torch.from_numpy(xv).unsqueeze(1)
    with torch.no_grad():
        want = src(x)[1].numpy()
    warm, _ = train(xt, yt, xv, yt[:20], init_from=path, **kw)
    cold, _ = train(xt, yt, xv, yt[:20], **kw)
    with torch.no_grad():
        got_warm, got_cold = warm(x)[1].numpy(), cold(x)[1].numpy()
    warm_err, cold_err = np.abs(got_warm - want).mean(), np.abs(got_cold - want).mean()
    assert warm_err < 0.05 * cold_err, (warm_err, cold_err)
