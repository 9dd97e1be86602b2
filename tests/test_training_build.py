"""The one build command, end to end and cold: ``python -m training.build --quick``.

Runs in a subprocess with ``TRAINING_CACHE`` pointed at an empty temporary folder, so nothing
rendered or windowed by an earlier build is reused (the cache path is read at import time).
Checks the bundle it writes the way a device would: the manifest hashes verify on load, both
models are there, and the INT8 model agrees with the FP32 one on the bundle's own test vectors.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from appliance.listen.bundle import load_bundle  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
COLD_LIMIT_S = 240  # ~10-60 s on 2 cores; generous for a busy CI box


def _session(path: Path) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def quick_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    tmp = tmp_path_factory.mktemp("quick-build")
    out = tmp / "engines" / "quick-0.0"
    env = dict(os.environ, TRAINING_CACHE=str(tmp / "cache"), OMP_NUM_THREADS="2")
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "training.build", "--quick", "--out", str(out)],
                       cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=COLD_LIMIT_S)
    wall = time.monotonic() - t0
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert (tmp / "cache" / "audio").is_dir(), "the build did not use TRAINING_CACHE"
    return out, wall


def test_cold_quick_build_is_quick(quick_bundle: tuple[Path, float]) -> None:
    _, wall = quick_bundle
    assert wall < COLD_LIMIT_S


def test_bundle_loads_and_verifies(quick_bundle: tuple[Path, float]) -> None:
    out, _ = quick_bundle
    b = load_bundle(out, verify=True)
    assert b.labels == ("baroque", "classical", "ragtime", "jazz", "none")
    assert set(b.models) == {"fp32", "int8"}
    for precision in ("fp32", "int8"):
        assert b.model_path(precision).is_file()
    m = json.loads((out / "manifest.json").read_text())
    assert m["built_by"].startswith("python -m training.build")
    assert "--quick" in m["built_by"]


def test_int8_agrees_with_fp32_on_test_vectors(quick_bundle: tuple[Path, float]) -> None:
    out, _ = quick_bundle
    b = load_bundle(out, verify=True)
    tv = np.load(out / b.manifest["test_vectors"]["file"])
    x = tv["features"].astype(np.float32)
    if x.ndim == 3:
        x = x[:, None]
    probs = {}
    for precision in ("fp32", "int8"):
        s = _session(b.model_path(precision))
        probs[precision] = s.run(["probs"], {s.get_inputs()[0].name: x})[0]
    # FP32 ONNX reproduces the recorded outputs; INT8 picks the same class
    np.testing.assert_allclose(probs["fp32"], tv["probs_fp32"], atol=1e-4)
    assert probs["int8"].shape == probs["fp32"].shape
    np.testing.assert_allclose(probs["int8"], tv["probs_int8"], atol=1e-4)  # deterministic
    np.testing.assert_allclose(probs["int8"].sum(1), 1.0, atol=1e-3)
    # a 2-epoch network is nearly undecided (top-two margins of 0.000-0.02), so top-1 is
    # judged as the box judges it (check_engine): only where FP32's top two lie further
    # apart than twice INT8's largest difference; the differences themselves must be small
    diff = float(np.abs(probs["int8"] - probs["fp32"]).max())
    assert diff < 0.05, f"INT8 lies {diff:.3f} from FP32"
    top2 = np.sort(probs["fp32"], axis=1)[:, -2:]
    decided = top2[:, 1] - top2[:, 0] > 2 * diff
    same = probs["int8"].argmax(1) == probs["fp32"].argmax(1)
    assert same[decided].all(), f"INT8 names another class on {int((~same[decided]).sum())}"


@pytest.mark.parametrize("share", ["0", "1.5"])
def test_a_works_fraction_outside_0_to_1_is_refused_before_any_rendering(share: str,
                                                                          tmp_path: Path) -> None:
    from training import build

    with pytest.raises(SystemExit, match="--works-fraction"):
        build.main(["--works-fraction", share, "--out", str(tmp_path / "never")])
    assert not (tmp_path / "never").exists()


def test_requantize_makes_a_new_bundle_and_leaves_the_source_alone(
        quick_bundle: tuple[Path, float]) -> None:
    """training.requantize (how genre-2.6.1 was made from genre-2.6): the same FP32 network,
    a new INT8 model with the Gemms in float, the source's calibration and val windows rebuilt
    from its ``built_by`` (here from the quick build's own cache), INT8 vectors that the new
    model passes, and the source bundle unchanged."""
    from appliance.listen.engine import OnnxEngine, check_engine

    src, _ = quick_bundle
    before = (src / "manifest.json").read_bytes()
    out = src.parent / "quick-0.0.1"
    env = dict(os.environ, TRAINING_CACHE=str(src.parents[1] / "cache"), OMP_NUM_THREADS="2")
    r = subprocess.run([sys.executable, "-m", "training.requantize", str(src), "--version",
                        "0.0.1", "--out", str(out), "--weights-8bit", "--float-ops", "Gemm"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=COLD_LIMIT_S)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert (src / "manifest.json").read_bytes() == before
    b = load_bundle(out, verify=True)
    m = b.manifest
    assert m["version"] == "0.0.1" and m["quantization"]["requantized_from"]["bundle"] == src.name
    assert "Gemm" in m["quantization"]["float_layers"]
    assert (out / "model.onnx").read_bytes() == (src / "model.onnx").read_bytes()
    assert (out / "model.int8.onnx").read_bytes() != (src / "model.int8.onnx").read_bytes()
    assert check_engine(OnnxEngine(b, precision="int8"))["passed"]
    again = subprocess.run([sys.executable, "-m", "training.requantize", str(src), "--version",
                            "0.0.1", "--out", str(out)], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=COLD_LIMIT_S)
    assert again.returncode != 0 and "exists" in again.stderr  # never over an existing bundle
