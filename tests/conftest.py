"""Shared test fixtures: real files, real models, made small."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
LABELS = ["baroque", "classical", "ragtime", "jazz", "none"]

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")


def make_band_bundle(folder: Path, *, window_s: float = 1.0, hop_s: float = 0.5) -> Path:
    """A real ONNX bundle whose 'genre' is decided by where the energy sits in the spectrum:
    the mean log-mel of five equal mel bands, through a softmax (band k → label k).

    Small and fully understood, so listener/simulate tests can predict its answers from the
    audio they synthesise: a tone in band k is label k.
    """
    import onnx
    from onnx import TensorProto, helper

    from appliance.listen.bundle import write_manifest
    from appliance.listen.frontend import FrontEnd

    fe = FrontEnd()
    n_frames = fe.frames_for(int(round(window_s * fe.sample_rate)))
    m = fe.n_mels
    # averaging matrix: mel bins → 5 bands
    w = np.zeros((m, 5), np.float32)
    edges = np.linspace(0, m, 6).astype(int)
    for k in range(5):
        w[edges[k]:edges[k + 1], k] = 1.0 / (edges[k + 1] - edges[k])
    nodes = [
        helper.make_node("ReduceMean", ["features", "axes_t"], ["per_mel"], keepdims=0),
        helper.make_node("MatMul", ["per_mel", "band_w"], ["bands"]),
        helper.make_node("Mul", ["bands", "temp"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
        helper.make_node("Identity", ["bands"], ["embedding"]),
    ]
    graph = helper.make_graph(
        nodes, "bands",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 1, m, n_frames])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 5]),
         helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", 5])],
        initializer=[
            helper.make_tensor("axes_t", TensorProto.INT64, [2], [1, 3]),
            helper.make_tensor("band_w", TensorProto.FLOAT, [m, 5], w.flatten().tolist()),
            helper.make_tensor("temp", TensorProto.FLOAT, [], [2.0]),
        ])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model, folder / "model.onnx")
    rng = np.random.default_rng(0)
    feats = rng.normal(-5, 2, size=(4, 1, m, n_frames)).astype(np.float32)
    import onnxruntime as ort

    sess = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    probs, emb = sess.run(["probs", "embedding"], {"features": feats})
    np.savez(folder / "test_vectors.npz", features=feats, probs_fp32=probs, embedding_fp32=emb)
    write_manifest(folder, {
        "name": "bands-test", "version": "1", "labels": LABELS,
        "frontend": fe.to_dict(), "window_s": window_s, "hop_s": hop_s,
        "models": {"fp32": "model.onnx"},
        "listener": {"tau_s": 0.5},
    })
    return folder


def band_tone_hz(k: int) -> float:
    """A frequency whose energy lands in the middle of the test bundle's band k."""
    from appliance.listen.frontend import FrontEnd, _mel_to_hz, _hz_to_mel

    fe = FrontEnd()
    lo, hi = _hz_to_mel(np.array([fe.fmin, fe.fmax]))
    mels = np.linspace(lo, hi, fe.n_mels + 2)[1:-1]
    centre = mels[int((k + 0.5) * fe.n_mels / 5)]
    return float(_mel_to_hz(np.array([centre]))[0])


@pytest.fixture(scope="session")
def band_bundle(tmp_path_factory) -> Path:
    return make_band_bundle(tmp_path_factory.mktemp("bundle") / "bands-1")
