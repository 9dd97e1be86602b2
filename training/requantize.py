"""Quantise a bundle's FP32 model again into a new bundle: same network, same listener, a new
INT8 model (mixed precision: named layers left in float).

    python -m training.requantize engines/genre-2.6 --version 2.6.1 --out engines/genre-2.6.1 \\
        --weights-8bit --float-ops Gemm --float-nodes /features/features.0/conv/Conv ...

The calibration windows are the ones ``training.build`` drew for the source bundle (its
``built_by`` rebuilds the same training and val windows from the cache), so the only change
is how the model is quantised. The INT8 figures in the manifest's metrics, the INT8 test
vectors and the quantization section are written anew; everything made from the FP32 model
(anchors, the FP32 metrics and vectors) is kept. The new bundle must then be signed
(``appliance engine sign``); a venue calibration made for the source does not carry over
(it is bound to the manifest's hash), the box says so and plays uncalibrated.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
from pathlib import Path

import numpy as np
from onnxruntime.quantization import CalibrationMethod

from appliance.listen.bundle import MANIFEST, SIGNATURE, load_bundle, write_manifest
from appliance.listen.calibration import manifest_sha256
from training import build
from training.dataset import build_windows
from training.export import (
    _class_metrics,
    _stressed_agreement,
    quantize_int8,
    run_batches,
    session,
)


def source_windows(manifest: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(calibration windows, val windows, val labels) as ``training.build`` made them for the
    bundle whose manifest this is."""
    argv = shlex.split(manifest["built_by"])
    a = build.parse_args(argv[argv.index("training.build") + 1:])
    sampling = {k: v for k, v in (("per_work", a.per_work), ("second_weight", a.second_weight),
                                  ("pianist_share", a.pianist_share)) if v is not None}
    xt, _, _ = build_windows("train", quick=a.quick, seed=a.seed,
                             minutes_per_class=a.minutes_per_class, clip_s=a.clip_s,
                             window_s=a.window_s, workers=a.workers, sampling=sampling)
    val_mpc = a.val_minutes_per_class
    if val_mpc is None and a.minutes_per_class is not None:
        val_mpc = a.minutes_per_class / 3
    xv, yv, _ = build_windows("val", quick=a.quick, seed=a.seed, minutes_per_class=val_mpc,
                              clip_s=a.val_clip_s or a.clip_s, window_s=a.window_s,
                              workers=a.workers,
                              sampling={**sampling, "per_work": a.val_per_work})
    rng = np.random.default_rng(a.seed)  # the draw training.build makes after training
    calib = xt[rng.choice(len(xt), size=min(256, len(xt)), replace=False)]
    return calib, xv, yv


def requantize(src: Path, out: Path, version: str, *, weights_8bit: bool,
               float_ops: tuple[str, ...], float_nodes: tuple[str, ...], argv: list[str]) -> dict:
    b = load_bundle(src)
    m = json.loads((src / MANIFEST).read_text())
    if out.exists():
        raise SystemExit(f"{out} exists; give another --out")
    calib, xv, yv = source_windows(m)
    if len(yv) != m["metrics"]["n_val_windows"]:
        raise SystemExit(f"val windows rebuilt: {len(yv)}, the source bundle had "
                         f"{m['metrics']['n_val_windows']}: not the same val set")
    shutil.copytree(src, out, ignore=shutil.ignore_patterns(SIGNATURE, MANIFEST))
    fp32, int8 = out / b.manifest["models"]["fp32"], out / b.manifest["models"]["int8"]
    quantize_int8(fp32, int8, calib, method=CalibrationMethod.MinMax,
                  weights_8bit=weights_8bit, float_ops=float_ops, float_nodes=float_nodes)
    s32, s8 = session(fp32), session(int8)
    val = xv[:, None].astype(np.float32)
    p32, p8 = run_batches(s32, val)[0], run_batches(s8, val)[0]
    labels = list(b.labels)
    m8 = _class_metrics(yv, p8.argmax(1), labels)
    metrics = dict(m["metrics"])
    metrics.update({
        "val_accuracy_int8": m8["accuracy"],
        "per_class_accuracy_int8": m8["per_class_accuracy"],
        "confusion_int8": m8["confusion"],
        "int8_fp32_top1_agreement": float((p32.argmax(1) == p8.argmax(1)).mean()),
        "int8_fp32_max_abs_prob_diff": float(np.abs(p32 - p8).max()),
        "int8_fp32_top1_agreement_stressed": _stressed_agreement(s32, s8, val),
    })
    metrics["file_bytes"] = {**metrics.get("file_bytes", {}), int8.name: int8.stat().st_size}
    vectors = out / m["test_vectors"]["file"]
    tv = dict(np.load(vectors))
    tv["probs_int8"], tv["embedding_int8"] = run_batches(s8, tv["features"])
    np.savez(vectors, **tv)
    weights = ("int8 symmetric per-channel, full 8-bit range" if weights_8bit else
               m["quantization"]["weights"])
    m.pop("files", None)
    m.update({
        "version": version,
        "metrics": metrics,
        "quantization": {**m["quantization"], "weights": weights,
                         "float_layers": sorted({*float_ops, *float_nodes, "Softmax"}),
                         "requantized_from": {"bundle": src.name,
                                              "manifest_sha256": manifest_sha256(src)},
                         "made_by": "python -m training.requantize " + shlex.join(argv)},
    })
    write_manifest(out, m)
    return metrics


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m training.requantize", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", type=Path)
    ap.add_argument("--version", required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--weights-8bit", action="store_true",
                    help="full-range weights (TensorRT and VNNI CPUs; AVX2-only CPUs then "
                         "fail the INT8 test vectors and run the FP32 model)")
    ap.add_argument("--float-ops", nargs="*", default=[], help="node types left in float")
    ap.add_argument("--float-nodes", nargs="*", default=[], help="node names left in float")
    a = ap.parse_args(argv)
    import sys
    metrics = requantize(a.source, a.out, a.version, weights_8bit=a.weights_8bit,
                         float_ops=tuple(a.float_ops), float_nodes=tuple(a.float_nodes),
                         argv=sys.argv[1:] if argv is None else argv)
    print(json.dumps({k: metrics[k] for k in ("val_accuracy_int8", "int8_fp32_top1_agreement",
                                              "int8_fp32_top1_agreement_stressed")}))
    print(f"wrote {a.out}: sign it (appliance engine sign {a.out} --key KEY)")


if __name__ == "__main__":
    main()
