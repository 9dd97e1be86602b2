"""How an engine's FP32 model is quantised, and how much INT8 then disagrees with it.

    python -m training.experiments.quantize_probe engines/genre-2.6 [--variants ...]

Each variant re-quantises the bundle's own FP32 model with ``training.export.quantize_int8``
(one draw of calibration windows from the cached training windows, shared by all variants)
and is measured against the FP32 model: top-1 agreement on the cached val windows and on
dev-real, the INT8 model's dev-real 4-style window accuracy and per-style recall, and one
window's INT8 time on one thread. docs/experiments/genre-2.md, "INT8 agreement", has the
rule these figures were read by. Writes the variants' models to --out for a bundle to use.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx

from appliance.listen import load_bundle
from appliance.listen.estimate import GENRES, NONE
from training import devreal
from training.evaluate import features, window_starts
from training.export import quantize_int8, run_batches, session

# name -> (8-bit weights, calibration method, keep the Gemm layers in float)
VARIANTS = {"w7-minmax": (False, "MinMax", False), "w8-minmax": (True, "MinMax", False),
            "w7-entropy": (False, "Entropy", False), "w8-entropy": (True, "Entropy", False),
            "w8-minmax-gemm-float": (True, "MinMax", True)}
CACHE = Path(__file__).resolve().parents[1] / "cache" / "windows"


def cached_windows(prefix: str, n: int | None = None) -> np.ndarray:
    """The largest cached window file of ``prefix`` (train/val), or ``n`` windows of it."""
    path = max(CACHE.glob(f"{prefix}-*.npz"), key=lambda p: p.stat().st_size)
    x = np.load(path)["x"]
    if n is None:
        return x
    return x[np.random.default_rng(0).choice(len(x), size=min(n, len(x)), replace=False)]


def devreal_windows(bundle) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for c in devreal.clips():
        a = devreal.render(c)
        starts = window_starts(a, bundle, bundle.hop_s, music=c["genre"] != NONE)
        xs.append(features(a, bundle, starts))
        ys += [bundle.labels.index(c["genre"])] * len(starts)
    return np.concatenate(xs), np.array(ys)


def quantize(fp32: Path, out: Path, calib: np.ndarray, w8: bool, method: str,
             gemm_float: bool, float_nodes: tuple[str, ...] = ()) -> None:
    """``quantize_int8`` with the variant's switches (it takes them as keywords)."""
    from onnxruntime.quantization import CalibrationMethod
    quantize_int8(fp32, out, calib, method=getattr(CalibrationMethod, method),
                  weights_8bit=w8, float_ops=("Gemm",) if gemm_float else (),
                  float_nodes=float_nodes)


def int8_convs(model: Path) -> list[str]:
    """Conv nodes whose weights arrive through a DequantizeLinear (i.e. run in INT8)."""
    g = onnx.load(str(model)).graph
    made_by = {o: n.op_type for n in g.node for o in n.output}
    return [n.name for n in g.node
            if n.op_type == "Conv" and made_by.get(n.input[1]) == "DequantizeLinear"]


def greedy(fp32: Path, calib: np.ndarray, ref: dict, xs: dict, yd: np.ndarray, labels: list,
           out_dir: Path, steps: int = 2) -> None:
    """Round 2: from w8-minmax-gemm-float, one more convolution in float per step, the one
    with the highest dev-real agreement; stop once val >= 0.99 and dev-real >= 0.98."""
    convs = [n.name for n in onnx.load(str(fp32)).graph.node if n.op_type == "Conv"]
    floats: list[str] = []
    for step in range(steps):
        tried = {}
        for c in (c for c in convs if c not in floats):
            model = out_dir / f"greedy-{step + 1}-{convs.index(c)}.onnx"
            quantize(fp32, model, calib, True, "MinMax", True, (*floats, c))
            assert c not in int8_convs(model), f"{c} was quantised anyway"
            tried[c] = measure(model, ref, xs, yd, labels)
            print(json.dumps({"variant": f"w8-gemm-float + float {[*floats, c]}",
                              "model": model.name, "int8_convs": len(int8_convs(model)),
                              **tried[c]}), flush=True)
        best = max(tried, key=lambda c: tried[c]["agreement_dev_real"])
        floats.append(best)
        r = tried[best]
        print(json.dumps({"greedy_step": step + 1, "float": floats,
                          "agreement_val": r["agreement_val"],
                          "agreement_dev_real": r["agreement_dev_real"]}), flush=True)
        if r["agreement_val"] >= 0.99 and r["agreement_dev_real"] >= 0.98:
            break


def seconds_per_window(model: Path, x: np.ndarray, runs: int = 200) -> float:
    """One window ``x[:1]`` (N, 1, mels, frames) at a time on one thread, warmed up."""
    s = session(model, threads=1)
    one = x[:1]
    for _ in range(20):
        s.run(None, {"features": one})
    t0 = time.perf_counter()
    for _ in range(runs):
        s.run(None, {"features": one})
    return (time.perf_counter() - t0) / runs


def measure(model: Path, fp32_pred: dict, xs: dict, y_dev: np.ndarray, labels: list) -> dict:
    s8 = session(model)
    out: dict = {}
    for name, x in xs.items():
        pred = run_batches(s8, x)[0].argmax(1)
        out[f"agreement_{name}"] = round(float((pred == fp32_pred[name]).mean()), 4)
        if name == "dev_real":
            music = y_dev != labels.index(NONE)
            out["dev_real_4style"] = round(float((pred[music] == y_dev[music]).mean()), 4)
            out["recall"] = {g: round(float((pred[y_dev == labels.index(g)]
                                              == labels.index(g)).mean()), 3) for g in GENRES}
    out["ms_per_window"] = round(1000 * seconds_per_window(model, xs["val"]), 3)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m training.experiments.quantize_probe",
                                 description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("engine", type=Path)
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--out", type=Path, default=None, help="keep the variants' INT8 models here")
    ap.add_argument("--greedy", action="store_true",
                    help="round 2: convolutions left in float one at a time (after --variants)")
    a = ap.parse_args(argv)
    b = load_bundle(a.engine)
    labels = list(b.labels)
    fp32 = b.path / b.manifest["models"]["fp32"]
    calib = cached_windows("train", 256)
    xv = cached_windows("val")
    xd, yd = devreal_windows(b)
    xs = {"val": xv[:, None], "dev_real": xd[:, None]}
    s32 = session(fp32)
    ref = {k: run_batches(s32, x)[0].argmax(1) for k, x in xs.items()}
    music = yd != labels.index(NONE)
    print(json.dumps({"variant": "fp32 (the reference)", "dev_real_4style": round(float(
        (ref["dev_real"][music] == yd[music]).mean()), 4), "recall": {g: round(float(
            (ref["dev_real"][yd == labels.index(g)] == labels.index(g)).mean()), 3)
            for g in GENRES}}), flush=True)
    shipped = b.path / b.manifest["models"]["int8"]
    print(json.dumps({"variant": "shipped", "windows": {k: len(x) for k, x in xs.items()},
                      **measure(shipped, ref, xs, yd, labels)}), flush=True)
    out_dir = a.out or Path(tempfile.mkdtemp())
    out_dir.mkdir(parents=True, exist_ok=True)
    for v in a.variants:
        model = out_dir / f"{v}.onnx"
        quantize(fp32, model, calib, *VARIANTS[v])
        print(json.dumps({"variant": v, **measure(model, ref, xs, yd, labels)}), flush=True)
    if a.greedy:
        greedy(fp32, calib, ref, xs, yd, labels, out_dir)


if __name__ == "__main__":
    main()
