"""Per-window cost of an engine bundle on ONE CPU core, next to a large peer model.

    python -m training.bench_engine engines/<name>-<version> [--runs 300] [--no-peer]

Prints: front-end (log_mel) time per window, ONNX Runtime FP32 and INT8 latency per
window (batch 1, intra_op_num_threads=1), parameter count and file sizes; then the same
input through a PANNs-Cnn14-sized CNN (about 80 M parameters, random weights, FP32) built
in a temporary folder, for scale. Needs numpy, onnx and onnxruntime only (no torch).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

# one core means one core: keep BLAS (the mel matmul) from fanning out over the others
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from appliance.listen.bundle import load_bundle  # noqa: E402
from appliance.listen.frontend import log_mel  # noqa: E402


def _session(path: Path | str) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def time_ms(fn, runs: int, warmup: int = 10) -> tuple[float, float]:
    """(median, 90th percentile) milliseconds per call of ``fn``."""
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t) * 1000.0)
    return float(np.median(ts)), float(np.percentile(ts, 90))


def cnn14_like(n_classes: int = 527, seed: int = 0) -> onnx.ModelProto:
    """A PANNs-Cnn14-shaped FP32 network (BN folded): 6 double-conv blocks 64..2048 channels,
    2x2 average pooling, frequency mean, time max+mean, two dense layers. Random weights:
    only its cost matters here."""
    rng = np.random.default_rng(seed)
    inits, nodes = [], []
    cur, c_in = "features", 1

    def weight(name: str, shape: tuple[int, ...]) -> str:
        fan_in = int(np.prod(shape[1:]))
        w = rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(2.0 / fan_in))
        inits.append(numpy_helper.from_array(w, name))
        return name

    def bias(name: str, n: int) -> str:
        inits.append(numpy_helper.from_array(np.zeros(n, np.float32), name))
        return name

    for b, (c_out, pool) in enumerate([(64, 2), (128, 2), (256, 2), (512, 2), (1024, 2),
                                       (2048, 1)]):
        for j in range(2):
            w = weight(f"b{b}c{j}.w", (c_out, c_in, 3, 3))
            nodes.append(helper.make_node("Conv", [cur, w, bias(f"b{b}c{j}.b", c_out)],
                                          [f"b{b}c{j}"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]))
            nodes.append(helper.make_node("Relu", [f"b{b}c{j}"], [f"b{b}r{j}"]))
            cur, c_in = f"b{b}r{j}", c_out
        if pool > 1:
            nodes.append(helper.make_node("AveragePool", [cur], [f"b{b}p"],
                                          kernel_shape=[pool, pool], strides=[pool, pool]))
            cur = f"b{b}p"
    nodes += [
        helper.make_node("ReduceMean", [cur], ["fmean"], axes=[2], keepdims=0),
        helper.make_node("ReduceMax", ["fmean"], ["tmax"], axes=[2], keepdims=0),
        helper.make_node("ReduceMean", ["fmean"], ["tmean"], axes=[2], keepdims=0),
        helper.make_node("Add", ["tmax", "tmean"], ["pooled"]),
        helper.make_node("Gemm", ["pooled", weight("fc1.w", (2048, 2048)), bias("fc1.b", 2048)],
                         ["fc1"], transB=1),
        helper.make_node("Relu", ["fc1"], ["fc1r"]),
        helper.make_node("Gemm", ["fc1r", weight("fc2.w", (n_classes, 2048)),
                                  bias("fc2.b", n_classes)], ["logits"], transB=1),
        helper.make_node("Sigmoid", ["logits"], ["probs"]),
    ]
    graph = helper.make_graph(
        nodes, "cnn14_like",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 1, "M", "T"])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", n_classes])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def bench(bundle_dir: Path | str, runs: int = 300, peer: bool = True) -> dict:
    """Measure and print; returns the numbers as a dict."""
    b = load_bundle(bundle_dir)
    res: dict = {"bundle": b.label, "n_mels": b.frontend.n_mels, "n_frames": b.n_frames}
    audio = (np.random.default_rng(0).standard_normal(b.window_samples) * 0.1).astype(np.float32)
    res["frontend_ms"] = time_ms(lambda: log_mel(audio, b.frontend), max(20, runs // 5))
    x = log_mel(audio, b.frontend)[None, None]
    vec = b.path / b.manifest.get("test_vectors", {}).get("file", "test_vectors.npz")
    if vec.is_file():
        x = np.load(vec)["features"][:1]
    for prec, fname in b.models.items():
        s = _session(b.path / fname)
        name = s.get_inputs()[0].name
        res[f"{prec}_ms"] = time_ms(lambda s=s, name=name: s.run(None, {name: x}), runs)
        res[f"{prec}_bytes"] = (b.path / fname).stat().st_size
    res["params"] = b.manifest.get("metrics", {}).get("params")

    print(f"bundle {b.label}: input [1,1,{b.frontend.n_mels},{b.n_frames}], "
          f"params {res['params']}, ONNX Runtime {ort.__version__}, 1 thread")
    print(f"  front end log_mel      {res['frontend_ms'][0]:7.3f} ms/window "
          f"(p90 {res['frontend_ms'][1]:.3f})")
    for prec in b.models:
        med, p90 = res[f"{prec}_ms"]
        print(f"  {prec:5s} engine           {med:7.3f} ms/window (p90 {p90:.3f})  "
              f"{res[f'{prec}_bytes'] / 1024:8.1f} KiB")
        print(f"  front end + {prec:5s}      {res['frontend_ms'][0] + med:7.3f} ms/window")
    if peer:
        with tempfile.TemporaryDirectory() as tmp:
            m = cnn14_like()
            n_params = sum(int(np.prod(i.dims)) for i in m.graph.initializer)
            path = Path(tmp) / "cnn14_like.onnx"
            onnx.save(m, str(path))
            del m
            s = _session(path)
            res["peer_params"] = n_params
            res["peer_bytes"] = path.stat().st_size
            res["peer_fp32_ms"] = time_ms(lambda: s.run(None, {"features": x}),
                                          max(5, runs // 30), warmup=2)
        med, p90 = res["peer_fp32_ms"]
        print(f"  peer Cnn14-sized FP32  {med:7.3f} ms/window (p90 {p90:.3f})  "
              f"{n_params / 1e6:.1f} M params, {res['peer_bytes'] / 2**20:.0f} MiB")
    return res


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle", type=Path)
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--no-peer", action="store_true", help="skip the Cnn14-sized comparison")
    a = ap.parse_args(argv)
    bench(a.bundle, runs=a.runs, peer=not a.no_peer)


if __name__ == "__main__":
    main()
