"""Trained model → engine bundle (FP32 ONNX, explicit-Q/DQ INT8 ONNX, test vectors, manifest).

The INT8 file is what TensorRT builds its engine from on the Jetson (TensorRT 8.x-11.x all
take explicit Q/DQ; implicit calibration is gone in 11). TensorRT wants symmetric INT8 with
zero point 0, so activations AND weights are quantised symmetric, weights per channel.
Softmax stays in float: quantised probabilities would be coarse for the smoother downstream.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quant_pre_process,
    quantize_static,
)

from appliance.listen.bundle import write_manifest
from appliance.listen.frontend import FrontEnd
from training.model import count_params, fused_for_export

INPUT = "features"
OUTPUTS = ("probs", "embedding")
FP32_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
VECTORS_FILE = "test_vectors.npz"
OPSET = 17


def _as_nchw(x: np.ndarray) -> np.ndarray:
    """Accept ``[N, n_mels, n_frames]`` (as training holds it) or ``[N, 1, n_mels, n_frames]``."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(f"expected [N,n_mels,n_frames] or [N,1,n_mels,n_frames], got {x.shape}")
    return np.ascontiguousarray(x)


def export_fp32(model: torch.nn.Module, path: Path | str, n_mels: int, n_frames: int) -> None:
    """Export ``model`` (BN folded, eval) to ONNX opset 17 with a dynamic batch axis."""
    m = fused_for_export(model)
    dummy = torch.zeros(1, 1, n_mels, n_frames)
    dyn = {INPUT: {0: "N"}, **{o: {0: "N"} for o in OUTPUTS}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        # dynamo=False: the TorchScript exporter gives plain Conv/Gemm graphs with no
        # onnxscript dependency; the quantiser and TensorRT take them as they are.
        torch.onnx.export(m, (dummy,), str(path), input_names=[INPUT], output_names=list(OUTPUTS),
                          dynamic_axes=dyn, opset_version=OPSET, do_constant_folding=True,
                          dynamo=False)
    onnx.checker.check_model(str(path))


class _WindowReader(CalibrationDataReader):
    """Feeds calibration windows to the quantiser in small batches."""

    def __init__(self, x: np.ndarray, batch: int = 16):
        self._batches = [x[i:i + batch] for i in range(0, len(x), batch)]
        self._i = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._i >= len(self._batches):
            return None
        self._i += 1
        return {INPUT: self._batches[self._i - 1]}

    def rewind(self) -> None:
        self._i = 0


def quantize_int8(fp32_path: Path | str, int8_path: Path | str, calib_x: np.ndarray, *,
                  method: CalibrationMethod = CalibrationMethod.MinMax,
                  weights_8bit: bool = False, float_ops: tuple[str, ...] = (),
                  float_nodes: tuple[str, ...] = ()) -> None:
    """Static QDQ INT8 (symmetric, per-channel weights) calibrated on ``calib_x`` windows.

    Weights use 7 bits (``reduce_range``). On x86 CPUs without VNNI (AVX2 only, this
    machine and many PCs a technician checks a take on), ONNX Runtime's fused int8 kernels add
    pairs of u8 x s8 products in 16 bits, which saturates with full-range weights: genre-1.3,
    quantized without it, agreed with its own FP32 model on 0.41 of dev-real windows (0.99 on
    windows like its training ones), and 0.98 once re-quantized with it. TensorRT and VNNI
    CPUs do not need it; 7-bit weights cost them next to nothing. ``weights_8bit`` lifts the
    guard; ``float_ops``: node types left unquantised besides Softmax (e.g. "Gemm");
    ``float_nodes``: node names left unquantised (e.g. "/features/features.0/conv/Conv")."""
    calib = _as_nchw(calib_x)
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        # skip_symbolic_shape: the graph has static shapes but for N, and sympy is optional
        quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        g = onnx.load(str(pre))
        excluded = [n.name for n in g.graph.node
                    if n.op_type in ("Softmax", *float_ops) or n.name in float_nodes]
        quantize_static(
            str(pre), str(int8_path), _WindowReader(calib),
            quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
            nodes_to_exclude=excluded, calibrate_method=method,
            reduce_range=not weights_8bit,
            extra_options={"ActivationSymmetric": True, "WeightSymmetric": True},
        )
    onnx.checker.check_model(str(int8_path))


def session(path: Path | str, threads: int = 1) -> ort.InferenceSession:
    """A CPU ONNX Runtime session pinned to ``threads`` intra-op threads."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def run_batches(sess: ort.InferenceSession, x: np.ndarray,
                batch: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """``(probs, embedding)`` for all windows of ``x``."""
    x = _as_nchw(x)
    probs, embs = [], []
    for i in range(0, len(x), batch):
        p, e = sess.run(list(OUTPUTS), {INPUT: x[i:i + batch]})
        probs.append(p)
        embs.append(e)
    return np.concatenate(probs), np.concatenate(embs)


def _confusion(y: np.ndarray, pred: np.ndarray, n: int) -> np.ndarray:
    cm = np.zeros((n, n), dtype=np.int64)
    np.add.at(cm, (y, pred), 1)
    return cm


def _class_metrics(y: np.ndarray, pred: np.ndarray, labels: list[str]) -> dict:
    cm = _confusion(y, pred, len(labels))
    per = {lab: (float(cm[i, i] / cm[i].sum()) if cm[i].sum() else None)
           for i, lab in enumerate(labels)}
    return {"accuracy": float((pred == y).mean()) if len(y) else None,
            "per_class_accuracy": per, "confusion": cm.tolist()}


def stressed(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """Windows as an unknown piano, mic and room might give them: each ``[N,1,M,T]`` window
    gets a random smooth EQ curve (+-15 dB), a gain of -30..+10 dB and a tilt. INT8 kernels
    that only hold up on training-like inputs show it here."""
    rng = np.random.default_rng(seed)
    n, _, m, _ = x.shape
    band = np.arange(m)[None, :]
    curve = np.zeros((n, m))
    for _ in range(3):
        c, w = rng.uniform(0, m, (n, 1)), rng.uniform(3, 40, (n, 1))
        curve += rng.uniform(-15, 15, (n, 1)) * np.exp(-0.5 * ((band - c) / w) ** 2)
    curve += rng.uniform(-8, 8, (n, 1)) * (band / m - 0.5) + rng.uniform(-30, 10, (n, 1))
    return (x + (curve * np.log(10) / 10)[:, None, :, None]).astype(np.float32)


def _stressed_agreement(s32: ort.InferenceSession, s8: ort.InferenceSession,
                        val: np.ndarray, n: int = 512) -> float | None:
    if not len(val):
        return None
    x = stressed(val[:n])
    return float((run_batches(s32, x)[0].argmax(1) == run_batches(s8, x)[0].argmax(1)).mean())


def _pick_vectors(y: np.ndarray, n: int) -> np.ndarray:
    """Round-robin over classes so every label shows up in the test vectors."""
    by_class = [list(np.flatnonzero(y == c)) for c in np.unique(y)]
    out: list[int] = []
    while len(out) < min(n, len(y)):
        for idx in by_class:
            if idx and len(out) < n:
                out.append(idx.pop(0))
    return np.array(sorted(out), dtype=np.int64)


def export_bundle(model: torch.nn.Module, out_dir: Path | str, *, frontend: FrontEnd,
                  labels: list[str] | tuple[str, ...], window_s: float, hop_s: float,
                  calib_x: np.ndarray, val_x: np.ndarray, val_y: np.ndarray, name: str,
                  version: str, extra_manifest: dict | None = None,
                  n_test_vectors: int = 16) -> dict:
    """Write a complete engine bundle into ``out_dir`` and return its metrics.

    ``calib_x`` / ``val_x``: log-mel windows ``[N, n_mels, n_frames]``; ``val_y`` int labels.
    Raises RuntimeError if the written models fail the ONNX Runtime sanity check.
    """
    labels = list(labels)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n_frames = frontend.frames_for(int(round(window_s * frontend.sample_rate)))
    n_mels = frontend.n_mels
    val = _as_nchw(val_x)
    val_y = np.asarray(val_y, dtype=np.int64)
    if val.shape[2:] != (n_mels, n_frames):
        raise ValueError(f"val windows are {val.shape[2:]}, front end says {(n_mels, n_frames)}")

    model = model.eval()
    export_fp32(model, out / FP32_FILE, n_mels, n_frames)
    quantize_int8(out / FP32_FILE, out / INT8_FILE, calib_x)

    s32, s8 = session(out / FP32_FILE), session(out / INT8_FILE)
    p32, e32 = run_batches(s32, val)
    p8, e8 = run_batches(s8, val)
    with torch.no_grad():
        pt, _ = model(torch.from_numpy(val[:64]))
    if not np.allclose(pt.numpy(), p32[:64], atol=1e-4):
        raise RuntimeError("FP32 ONNX disagrees with the torch model: the export is broken")

    pred32, pred8 = p32.argmax(1), p8.argmax(1)
    m32 = _class_metrics(val_y, pred32, labels)
    m8 = _class_metrics(val_y, pred8, labels)
    metrics = {
        "n_val_windows": int(len(val_y)),
        "val_accuracy_fp32": m32["accuracy"],
        "val_accuracy_int8": m8["accuracy"],
        "per_class_accuracy_fp32": m32["per_class_accuracy"],
        "per_class_accuracy_int8": m8["per_class_accuracy"],
        "confusion_fp32": m32["confusion"],
        "confusion_int8": m8["confusion"],
        "confusion_axes": "rows = true label, columns = predicted, in label order",
        "int8_fp32_top1_agreement": float((pred32 == pred8).mean()) if len(val_y) else None,
        "int8_fp32_max_abs_prob_diff": float(np.abs(p32 - p8).max()) if len(val_y) else None,
        "int8_fp32_top1_agreement_stressed": _stressed_agreement(s32, s8, val),
        "params": count_params(model),
    }

    pick = _pick_vectors(val_y, n_test_vectors)
    np.savez(out / VECTORS_FILE, features=val[pick], labels=val_y[pick],
             probs_fp32=p32[pick], embedding_fp32=e32[pick],
             probs_int8=p8[pick], embedding_int8=e8[pick])
    metrics["file_bytes"] = {f: (out / f).stat().st_size for f in (FP32_FILE, INT8_FILE)}

    emb_dim = int(e32.shape[1])
    manifest = {
        "name": name,
        "version": version,
        "labels": labels,
        "frontend": frontend.to_dict(),
        "window_s": float(window_s),
        "hop_s": float(hop_s),
        "models": {"fp32": FP32_FILE, "int8": INT8_FILE},
        "inputs": {INPUT: {"shape": ["N", 1, n_mels, n_frames], "dtype": "float32"}},
        "outputs": {"probs": {"shape": ["N", len(labels)], "dtype": "float32"},
                    "embedding": {"shape": ["N", emb_dim], "dtype": "float32"}},
        "test_vectors": {
            "file": VECTORS_FILE,
            "keys": ["features", "labels", "probs_fp32", "embedding_fp32", "probs_int8",
                     "embedding_int8"],
            "note": "FP32 builds should match probs_fp32 to ~1e-4; an INT8 engine (TensorRT or "
                    "ORT) should agree with probs_int8 on top-1 and to a few 1e-2 per prob",
        },
        "quantization": {"format": "QDQ", "activations": "int8 symmetric",
                         "weights": "int8 symmetric per-channel, 7-bit range (reduce_range: "
                                    "no 16-bit saturation on x86 CPUs without VNNI)",
                         "calibration": "MinMax",
                         "n_calibration_windows": int(len(calib_x)), "opset": OPSET},
        "metrics": metrics,
    }
    extra = dict(extra_manifest or {})
    if isinstance(extra.get("metrics"), dict):
        manifest["metrics"] = {**metrics, **extra.pop("metrics")}
    manifest.update(extra)
    write_manifest(out, manifest)

    _sanity_check(out)
    return metrics


def _sanity_check(out: Path) -> None:
    """Reload both written models and replay the test vectors through them."""
    tv = np.load(out / VECTORS_FILE)
    for prec, f, atol in (("fp32", FP32_FILE, 1e-4), ("int8", INT8_FILE, 1e-4)):
        sess = session(out / f)
        names = [o.name for o in sess.get_outputs()]
        if sess.get_inputs()[0].name != INPUT or names != list(OUTPUTS):
            raise RuntimeError(f"{f}: input/outputs are {sess.get_inputs()[0].name}/{names}")
        p, e = run_batches(sess, tv["features"])
        if not (np.allclose(p, tv[f"probs_{prec}"], atol=atol)
                and np.allclose(e, tv[f"embedding_{prec}"], atol=atol * 10)):
            raise RuntimeError(f"{f}: does not reproduce its own test vectors")
        if not np.allclose(p.sum(1), 1.0, atol=1e-4):
            raise RuntimeError(f"{f}: probs do not sum to 1")
