"""The style network, its training loop and the engine-bundle export (synthetic data)."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from appliance.listen.bundle import BundleError, load_bundle  # noqa: E402
from appliance.listen.frontend import FrontEnd  # noqa: E402
from training.export import export_bundle, session  # noqa: E402
from training.model import count_params, fused_for_export, make_model  # noqa: E402
from training.train import ONSET_FRAMES, Augment, mixup, splice, train  # noqa: E402

torch.set_num_threads(1)

LABELS = ["baroque", "classical", "ragtime", "jazz", "none"]
FE = FrontEnd()
WINDOW_S = 3.0
N_MELS, N_FRAMES = FE.n_mels, FE.frames_for(int(WINDOW_S * FE.sample_rate))


def synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Separable task: each genre lights up its own mel band; ``none`` is flat noise.
    Every window gets a random overall level, as different mics would give."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % len(LABELS)
    x = rng.normal(-9.0, 1.0, (n, N_MELS, N_FRAMES))
    for i, c in enumerate(y):
        if LABELS[c] != "none":
            lo = 8 + 28 * c
            x[i, lo:lo + 16] += 5.0 + rng.normal(0, 0.5, (16, N_FRAMES))
        x[i] += rng.uniform(-4, 4)
    return x.astype(np.float32), y.astype(np.int64)


@pytest.fixture(scope="module")
def trained():
    xt, yt = synthetic(200, 0)
    xv, yv = synthetic(60, 1)
    model, hist = train(xt, yt, xv, yv, labels=LABELS, epochs=6, seed=0, log=lambda s: None)
    return model, hist, xt, xv, yv


@pytest.fixture(scope="module")
def bundle(trained, tmp_path_factory):
    model, _, xt, xv, yv = trained
    out = tmp_path_factory.mktemp("engines") / "style-test"
    metrics = export_bundle(model, out, frontend=FE, labels=LABELS, window_s=WINDOW_S, hop_s=0.5,
                            calib_x=xt[:64], val_x=xv, val_y=yv, name="style", version="test",
                            extra_manifest={"licenses": ["synthetic"], "recipe": "unit test"})
    return out, metrics


@pytest.mark.parametrize("register", [False, True])
def test_param_budget_and_output_shapes(register: bool):
    m = make_model(N_MELS, N_FRAMES, len(LABELS), register=register).eval()
    assert count_params(m) <= 1_000_000
    with torch.no_grad():
        probs, emb = m(torch.randn(3, 1, N_MELS, N_FRAMES))
        logits = m.logits(torch.randn(3, 1, N_MELS, N_FRAMES))
    assert probs.shape == (3, len(LABELS)) and logits.shape == (3, len(LABELS))
    assert emb.shape == (3, 96)
    assert torch.allclose(probs.sum(1), torch.ones(3), atol=1e-5)


@pytest.mark.parametrize("register", [False, True])
def test_gain_invariance(register: bool):
    torch.manual_seed(0)
    m = make_model(N_MELS, N_FRAMES, len(LABELS), register=register)
    # non-trivial BN statistics, so a leak of the absolute level would show
    m.train()
    with torch.no_grad():
        for _ in range(3):
            m.logits(torch.randn(8, 1, N_MELS, N_FRAMES) * 3 - 5)
    m.eval()
    x = torch.randn(4, 1, N_MELS, N_FRAMES) * 2 - 8
    with torch.no_grad():
        p0, e0 = m(x)
        for offset in (-6.0, 3.0, 9.0):     # about -26 dB .. +39 dB
            p1, e1 = m(x + offset)
            assert torch.allclose(p0, p1, atol=1e-5)
            assert torch.allclose(e0, e1, atol=1e-4)


def test_fused_copy_matches_original():
    torch.manual_seed(1)
    m = make_model(N_MELS, N_FRAMES, len(LABELS))
    m.train()
    with torch.no_grad():
        m.logits(torch.randn(8, 1, N_MELS, N_FRAMES))   # move the BN running stats
    m.eval()
    f = fused_for_export(m)
    assert not any(isinstance(x, torch.nn.BatchNorm2d) for x in f.modules())
    x = torch.randn(2, 1, N_MELS, N_FRAMES)
    with torch.no_grad():
        assert torch.allclose(m(x)[0], f(x)[0], atol=1e-5)


def test_augment_is_seeded_and_keeps_shape():
    x = torch.from_numpy(synthetic(10, 3)[0]).unsqueeze(1)
    y = torch.arange(10) % len(LABELS)
    noise = x[y == 4]
    a1 = Augment(noise, torch.Generator().manual_seed(5))(x, y, 4)
    a2 = Augment(noise, torch.Generator().manual_seed(5))(x, y, 4)
    assert a1.shape == x.shape and torch.isfinite(a1).all()
    assert torch.equal(a1, a2)
    assert not torch.allclose(a1, x)


def test_splice_joins_two_windows_and_labels_by_the_later_style_once_it_leads():
    n, t = 400, N_FRAMES
    g = torch.Generator().manual_seed(1)
    yb = torch.arange(n) % len(LABELS)
    xb = yb.view(n, 1, 1, 1).float().expand(n, 1, 2, t).clone()  # frame value = own label
    py = torch.arange(len(LABELS))
    px = (10 + py).view(-1, 1, 1, 1).float().expand(-1, 1, 2, t).clone()  # partner: 10+label
    x, y = splice(xb, yb, px, py, g, 4, p=0.6)
    for i in range(n):
        row = x[i, 0, 0]
        spliced = bool((row >= 10).any())
        if not spliced:
            assert torch.equal(x[i], xb[i]) and y[i] == yb[i]
            continue
        head = int((row >= 10).sum())
        assert (row[:head] >= 10).all() and (row[head:] == yb[i]).all(), "start of A, end of B"
        earlier, own_tail = int(row[0]) - 10, t - head
        assert yb[i] != 4 and earlier != int(yb[i]), "only music is spliced, after another label"
        assert own_tail >= ONSET_FRAMES
        later_leads = earlier == 4 or 2 * own_tail >= t
        assert int(y[i]) == (int(yb[i]) if later_leads else earlier)
    assert 0.3 < float((x[:, 0, 0] >= 10).any(1).float().mean()) < 0.6


def test_mixup_adds_two_music_windows_in_power_and_shares_their_labels():
    n, t, none = 400, N_FRAMES, 4
    g, rng = torch.Generator().manual_seed(2), np.random.default_rng(2)
    yb = torch.arange(n) % len(LABELS)
    xb = torch.zeros(n, 1, 2, t)  # flat: power 1 in both bands
    py = torch.arange(len(LABELS))
    # pool window k: band 0 at level 3 + k, band 1 two nats higher (its mean is 4 + k)
    px = (3.0 + py.float()).view(-1, 1, 1, 1) + torch.tensor([0.0, 2.0]).view(1, 1, 2, 1)
    px = px.expand(-1, 1, 2, t).clone()
    x, target = mixup(xb, yb, px, py, g, rng, len(LABELS), none, p=0.5)
    assert torch.allclose(target.sum(1), torch.ones(n))
    changed = (x != xb).flatten(1).any(1)
    assert 0.32 < float(changed.float().mean()) < 0.48  # p = 0.5 of the 4/5 that are music
    for i in range(n):
        if yb[i] == none:
            assert not changed[i] and target[i, none] == 1, "none is never mixed"
            continue
        assert target[i, none] == 0, "music is only mixed with music"
        if not changed[i]:
            assert target[i, yb[i]] == 1
            continue
        # the partner, brought to the window's mean level, has bands at -1 and +1 nats
        lam = float(target[i, yb[i]]) if target[i, yb[i]] < 1 else None
        if lam is None:  # partner of the same style: the share is not in the target
            continue
        want = torch.log(lam + (1 - lam) * torch.exp(torch.tensor([-1.0, 1.0])))
        assert torch.allclose(x[i, 0, :, 0], want, atol=1e-3)
    same, _ = mixup(xb, yb, px, py, g, rng, len(LABELS), none, p=0.0)
    assert torch.equal(same, xb)


def test_training_learns_and_keeps_history(trained):
    _, hist, *_ = trained
    assert len(hist["train_loss"]) == len(hist["val_acc"]) == 6
    assert max(hist["val_acc"]) >= 0.9
    assert hist["val_acc"][hist["best_epoch"]] == max(hist["val_acc"])


def test_training_is_deterministic_and_respects_time_budget():
    xt, yt = synthetic(40, 4)
    m1, h1 = train(xt, yt, xt, yt, labels=LABELS, epochs=1, seed=7, log=lambda s: None)
    m2, h2 = train(xt, yt, xt, yt, labels=LABELS, epochs=1, seed=7, log=lambda s: None)
    assert h1["train_loss"] == h2["train_loss"]
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    _, h3 = train(xt, yt, xt, yt, labels=LABELS, epochs=50, seed=7, time_budget_s=0.0,
                  log=lambda s: None)
    assert h3["stopped_by_budget"] and len(h3["val_acc"]) == 0


needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(),
                               reason="needs a CUDA GPU: run where one is lent (README)")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_asking_for_a_gpu_that_is_not_there_says_so():
    from training.build import training_device

    assert training_device("auto") == "cpu"
    with pytest.raises(SystemExit, match="sees no CUDA GPU"):
        training_device("cuda")


@needs_gpu
def test_a_gpu_step_matches_the_cpu_step(monkeypatch):
    """Windows, sampling and augmentation stay on the CPU with the same random streams, so the
    first step's loss (taken before any update) differs only by the GPU's arithmetic. Dropout
    is off here: on a GPU it draws its masks from the GPU's own generator."""
    monkeypatch.setattr(torch.nn.Dropout, "forward", lambda self, x: x)
    xt, yt = synthetic(40, 8)
    kw = {"labels": LABELS, "epochs": 1, "seed": 5, "batch_size": 64, "splice_p": 0.5,
          "log": lambda s: None}
    _, cpu = train(xt, yt, xt, yt, **kw)
    model, gpu = train(xt, yt, xt, yt, device="cuda", **kw)
    assert all(p.device.type == "cpu" for p in model.parameters())  # ready for export
    # TF32 convolutions on Ampere and later: about 1e-3 relative
    assert gpu["train_loss"][0] == pytest.approx(cpu["train_loss"][0], rel=5e-3)


@needs_gpu
def test_training_learns_on_a_gpu():
    xt, yt = synthetic(200, 0)
    xv, yv = synthetic(60, 1)
    torch.cuda.reset_peak_memory_stats()
    model, hist = train(xt, yt, xv, yv, labels=LABELS, epochs=6, seed=0, device="cuda",
                        log=lambda s: None)
    assert torch.cuda.max_memory_allocated() > 0  # the network really ran there
    assert max(hist["val_acc"]) >= 0.9
    with torch.no_grad():  # the returned CPU model is the trained one
        acc = float((model.logits(torch.from_numpy(xv).unsqueeze(1)).argmax(1).numpy()
                     == yv).mean())
    assert acc == pytest.approx(hist["val_acc"][hist["best_epoch"]], abs=0.05)


def test_export_models_load_and_have_the_contract_shapes(bundle):
    out, _ = bundle
    x = np.load(out / "test_vectors.npz")["features"]
    assert x.shape[1:] == (1, N_MELS, N_FRAMES)
    for f in ("model.onnx", "model.int8.onnx"):
        s = session(out / f)
        assert [i.name for i in s.get_inputs()] == ["features"]
        assert [o.name for o in s.get_outputs()] == ["probs", "embedding"]
        for n in (1, 5):   # dynamic batch
            probs, emb = s.run(None, {"features": x[:n]})
            assert probs.shape == (n, len(LABELS)) and emb.shape == (n, 96)
            np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)


def test_int8_is_real_qdq_and_agrees_with_fp32(bundle):
    onnx = pytest.importorskip("onnx")
    out, metrics = bundle
    ops = {n.op_type for n in onnx.load(str(out / "model.int8.onnx")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    tv = np.load(out / "test_vectors.npz")
    p32 = session(out / "model.onnx").run(["probs"], {"features": tv["features"]})[0]
    p8 = session(out / "model.int8.onnx").run(["probs"], {"features": tv["features"]})[0]
    assert (p32.argmax(1) == p8.argmax(1)).mean() >= 0.99
    np.testing.assert_allclose(p32, tv["probs_fp32"], atol=1e-4)
    assert metrics["int8_fp32_top1_agreement"] >= 0.99
    assert metrics["val_accuracy_int8"] >= 0.9


def test_manifest_content(bundle):
    out, metrics = bundle
    b = load_bundle(out)
    assert b.labels == tuple(LABELS) and b.frontend == FE and b.n_frames == N_FRAMES
    assert b.models == {"fp32": "model.onnx", "int8": "model.int8.onnx"}
    m = b.manifest
    assert m["inputs"]["features"]["shape"] == ["N", 1, N_MELS, N_FRAMES]
    assert set(m["outputs"]) == {"probs", "embedding"}
    assert m["licenses"] == ["synthetic"] and m["recipe"] == "unit test"
    assert m["metrics"]["params"] == metrics["params"] <= 1_000_000
    cm = np.array(m["metrics"]["confusion_int8"])
    assert cm.shape == (5, 5) and cm.sum() == 60
    assert set(m["metrics"]["per_class_accuracy_fp32"]) == set(LABELS)
    assert set(m["files"]) == {"model.onnx", "model.int8.onnx", "test_vectors.npz"}


def test_corrupted_int8_model_is_refused(bundle, tmp_path):
    out, _ = bundle
    bad = tmp_path / "bad"
    bad.mkdir()
    for p in out.iterdir():
        (bad / p.name).write_bytes(p.read_bytes())
    load_bundle(bad)                        # intact copy loads
    blob = bytearray((bad / "model.int8.onnx").read_bytes())
    blob[len(blob) // 2] ^= 0x01
    (bad / "model.int8.onnx").write_bytes(bytes(blob))
    with pytest.raises(BundleError, match="model.int8.onnx"):
        load_bundle(bad)
    # and a manifest that no longer lists a model's hash is refused too
    m = json.loads((bad / "manifest.json").read_text())
    del m["files"]["model.int8.onnx"]
    (bad / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(BundleError):
        load_bundle(bad)
