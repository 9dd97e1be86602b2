"""Genre engines: one interface, chosen at start-up.

On the Jetson the INT8 Q/DQ model is built into a TensorRT plan (cached per device and
TensorRT version) and run with pycuda; everywhere else ONNX Runtime runs the same bundle.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from appliance.listen.bundle import Bundle, BundleError

log = logging.getLogger("appliance.listen")

BACKENDS = ("auto", "tensorrt", "onnxruntime")


class Engine(Protocol):
    """``infer`` takes features ``[N,1,n_mels,n_frames]`` float32 and returns
    ``(probs [N, labels], embedding [N, D])``."""

    bundle: Bundle
    backend: str
    precision: str

    def infer(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


class OnnxEngine:
    """ONNX Runtime on the CPU. ``precision`` picks the bundle's int8 or fp32 model."""

    backend = "onnxruntime"
    why_not_faster = ""

    def __init__(self, bundle: Bundle, *, precision: str = "int8", threads: int = 1) -> None:
        import onnxruntime as ort

        if precision not in bundle.models:
            precision = next(iter(bundle.models))
        self.bundle = bundle
        self.precision = precision
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, threads)
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        path = bundle.model_path(precision)
        try:
            self._session = ort.InferenceSession(str(path), opts,
                                                 providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types
            raise BundleError(f"{path}: ONNX Runtime cannot load this model ({e})") from e
        inp = self._session.get_inputs()[0]
        self._input = inp.name
        self._outputs = ["probs", "embedding"]
        _check_input_shape(bundle, path, inp.shape)
        _check_outputs(bundle, path, {o.name: o.shape for o in self._session.get_outputs()})

    def infer(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        probs, emb = self._session.run(self._outputs, {self._input: features})
        return probs, emb


def _check_input_shape(bundle: Bundle, path: Path, shape: list) -> None:
    """Refuse a model whose fixed window size is not the one the manifest's front end and
    window produce (e.g. ``window_s`` edited without re-exporting): otherwise the first
    window would fail deep inside the runtime. Axes left free (a name in ONNX Runtime, -1
    in TensorRT) fit any window."""
    want = (1, bundle.frontend.n_mels, bundle.n_frames)
    for axis, got, exp in zip(("channels", "mel bands", "frames"), shape[1:], want, strict=False):
        if isinstance(got, int) and got >= 0 and got != exp:
            raise BundleError(
                f"{path}: the model takes windows of {got} {axis}, but the manifest "
                f"(window_s {bundle.window_s:g} s, front end {bundle.frontend.n_mels} mel bands) "
                f"gives {exp}: the manifest does not belong to this model")


def _check_outputs(bundle: Bundle, path: Path, outputs: dict[str, list]) -> None:
    """The listener reads "probs" (one per label) and "embedding"; refuse a model without."""
    for name in ("probs", "embedding"):
        if name not in outputs:
            raise BundleError(f"{path}: the model has no output {name!r} "
                              f"(it has {', '.join(outputs) or 'none'})")
    width = outputs["probs"][-1] if outputs["probs"] else None
    if isinstance(width, int) and width >= 0 and width != len(bundle.labels):
        raise BundleError(f"{path}: the model gives {width} probabilities, but the manifest "
                          f"names {len(bundle.labels)} labels")


class TensorRTEngine:
    """TensorRT + pycuda, for the Jetson. Builds the plan from the bundle's Q/DQ INT8 ONNX
    on first use and caches it; never constructed on a machine without an NVIDIA GPU."""

    backend = "tensorrt"
    why_not_faster = ""

    def __init__(self, bundle: Bundle, *, cache_dir: Path | None = None) -> None:
        import pycuda.driver as cuda  # noqa: F401  (ImportError without libcuda: caller falls back)
        import tensorrt as trt

        self.bundle = bundle
        self.precision = "int8" if "int8" in bundle.models else "fp32"
        self._trt = trt
        self._cuda = cuda
        cuda.init()
        self._ctx = cuda.Device(0).retain_primary_context()
        self._ctx.push()
        try:
            self._logger = trt.Logger(trt.Logger.WARNING)
            plan = self._plan(cache_dir or _default_plan_cache())
            self._runtime = trt.Runtime(self._logger)
            self._engine = self._runtime.deserialize_cuda_engine(plan)
            if self._engine is None:
                raise BundleError(f"{bundle.path}: TensorRT could not load the cached plan")
            # a cached plan is keyed by the ONNX bytes, not the manifest: check it too
            _check_input_shape(bundle, self._onnx_path, self._input_shape())
            self._context = self._engine.create_execution_context()
            self._stream = cuda.Stream()
            self._alloc(1)
        finally:
            self._ctx.pop()

    def _plan(self, cache_dir: Path) -> bytes:
        trt = self._trt
        onnx_path = self._onnx_path = self.bundle.model_path(
            "int8" if "int8" in self.bundle.models else "fp32")
        onnx_bytes = onnx_path.read_bytes()
        dev = self._cuda.Device(0).name()
        key = hashlib.sha256(onnx_bytes + trt.__version__.encode() + dev.encode()).hexdigest()
        plan_path = cache_dir / f"{key[:32]}.plan"
        if plan_path.is_file():
            return plan_path.read_bytes()
        log.info("building TensorRT plan for %s on %s (TensorRT %s); this takes a minute",
                 self.bundle.label, dev, trt.__version__)
        builder = trt.Builder(self._logger)
        flags = 0
        if hasattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH"):
            flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
        network = builder.create_network(flags)
        parser = trt.OnnxParser(network, self._logger)
        if not parser.parse(onnx_bytes):
            errs = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise BundleError(f"{onnx_path}: TensorRT cannot parse the model: {errs}")
        _check_input_shape(self.bundle, onnx_path, [int(d) for d in network.get_input(0).shape])
        config = builder.create_builder_config()
        if hasattr(config, "set_memory_pool_limit"):
            config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 256 << 20)
        # Q/DQ models are explicitly quantized; TensorRT 8.x-10.x still want the flag set.
        if hasattr(trt.BuilderFlag, "INT8"):
            config.set_flag(trt.BuilderFlag.INT8)
        if builder.platform_has_fast_fp16:
            config.set_flag(trt.BuilderFlag.FP16)
        shape = (1, 1, self.bundle.frontend.n_mels, self.bundle.n_frames)
        profile = builder.create_optimization_profile()
        profile.set_shape(network.get_input(0).name, shape, shape, (8, *shape[1:]))
        config.add_optimization_profile(profile)
        plan = builder.build_serialized_network(network, config)
        if plan is None:
            raise BundleError(f"{onnx_path}: TensorRT failed to build an engine")
        plan = bytes(plan)
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = plan_path.with_suffix(".tmp")
        tmp.write_bytes(plan)
        os.replace(tmp, plan_path)  # atomic: a crash never leaves half a plan behind
        return plan

    def _input_shape(self) -> list[int]:
        eng, trt = self._engine, self._trt
        if hasattr(eng, "num_io_tensors"):  # TensorRT >= 8.5
            name = next(n for n in map(eng.get_tensor_name, range(eng.num_io_tensors))
                        if eng.get_tensor_mode(n) == trt.TensorIOMode.INPUT)
            return [int(d) for d in eng.get_tensor_shape(name)]
        i = next(i for i in range(eng.num_bindings) if eng.binding_is_input(i))
        return [int(d) for d in eng.get_binding_shape(i)]

    def _alloc(self, batch: int) -> None:
        cuda, trt, eng = self._cuda, self._trt, self._engine
        self._batch = batch
        self._host: dict[str, np.ndarray] = {}
        self._dev: dict[str, object] = {}
        m, f = self.bundle.frontend.n_mels, self.bundle.n_frames
        self._new_api = hasattr(eng, "num_io_tensors")  # TensorRT >= 8.5
        names = ([eng.get_tensor_name(i) for i in range(eng.num_io_tensors)] if self._new_api
                 else [eng.get_binding_name(i) for i in range(eng.num_bindings)])
        self._names = names
        for i, name in enumerate(names):
            is_input = (eng.get_tensor_mode(name) == trt.TensorIOMode.INPUT if self._new_api
                        else eng.binding_is_input(i))
            if is_input:
                self._input = name
                if self._new_api:
                    self._context.set_input_shape(name, (batch, 1, m, f))
                else:
                    self._context.set_binding_shape(i, (batch, 1, m, f))
        for i, name in enumerate(names):
            shape = tuple(self._context.get_tensor_shape(name) if self._new_api
                          else self._context.get_binding_shape(i))
            host = cuda.pagelocked_empty(shape, np.float32)
            self._host[name] = host
            self._dev[name] = cuda.mem_alloc(host.nbytes)
            if self._new_api:
                self._context.set_tensor_address(name, int(self._dev[name]))

    def infer(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cuda = self._cuda
        self._ctx.push()
        try:
            if features.shape[0] != self._batch:
                self._alloc(features.shape[0])
            np.copyto(self._host[self._input], features)
            cuda.memcpy_htod_async(self._dev[self._input], self._host[self._input], self._stream)
            if self._new_api:
                self._context.execute_async_v3(self._stream.handle)
            else:
                self._context.execute_async_v2([int(self._dev[n]) for n in self._names],
                                               self._stream.handle)
            for name in ("probs", "embedding"):
                cuda.memcpy_dtoh_async(self._host[name], self._dev[name], self._stream)
            self._stream.synchronize()
            return self._host["probs"].copy(), self._host["embedding"].copy()
        finally:
            self._ctx.pop()


def _default_plan_cache() -> Path:
    return Path(os.environ.get("APPLIANCE_PLAN_CACHE", "/var/lib/appliance/plans"))


BACKEND_NAMES = {"tensorrt": "TensorRT", "onnxruntime": "ONNX Runtime"}


def backend_label(engine: Engine) -> str:
    """What runs, in words: "TensorRT INT8", "ONNX Runtime INT8", "ONNX Runtime FP32"."""
    return f"{BACKEND_NAMES.get(engine.backend, engine.backend)} {engine.precision.upper()}"


def open_engine(bundle: Bundle, backend: str = "auto", *, threads: int = 1,
                precision: str = "int8") -> Engine:
    """Open the bundle on the requested backend. ``auto`` prefers TensorRT when it and a GPU
    are present and falls back to ONNX Runtime, saying why in the log (and in the engine's
    ``why_not_faster``). ``precision`` picks ONNX Runtime's model; TensorRT always builds from
    the bundle's INT8 Q/DQ model."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown engine backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    why = ""
    if backend in ("auto", "tensorrt"):
        try:
            return TensorRTEngine(bundle)
        except ImportError as e:
            if backend == "tensorrt":
                raise BundleError(f"TensorRT backend asked for but not usable here: {e}") from e
            log.info("TensorRT not available (%s); using ONNX Runtime", e)
            why = f"TensorRT not available ({e})"
        except BundleError:
            raise
        except Exception as e:  # a GPU/driver failure must not keep the box from listening
            if backend == "tensorrt":
                raise
            log.warning("TensorRT failed (%s); falling back to ONNX Runtime", e)
            why = f"TensorRT failed ({e})"
    engine = OnnxEngine(bundle, threads=threads, precision=precision)
    if engine.precision != precision:
        why = "; ".join(x for x in (why, f"the bundle has no {precision.upper()} model") if x)
    engine.why_not_faster = why
    return engine


# How far a device's probabilities may lie from the bundle's reference, per precision.
FP32_TOLERANCE = 1e-4
"""FP32 is the same arithmetic everywhere but for summation order: measured here (x86 AVX2,
ONNX Runtime 1.32) every shipped bundle's FP32 model reproduced probs_fp32 to 3e-7. 1e-4 (the
manifest's own promise) leaves 300x room for another CPU's order and still catches any change
to a weight."""
INT8_TOLERANCE_FLOOR = 0.01
INT8_TOLERANCE_NO_FP32 = 0.05
"""Used only when a bundle carries no FP32 reference: the manifest's "a few 1e-2"."""


def int8_tolerance(probs_int8: np.ndarray, probs_fp32: np.ndarray | None) -> float:
    """Twice the bundle's own quantization error, never below 0.01.

    Two correct INT8 builds of one Q/DQ model (ONNX Runtime here, TensorRT on the Jetson) each
    lie within about the reference's distance of FP32, so by the triangle inequality within
    twice that of each other. Measured on this CPU (x86 AVX2, no VNNI): the 7-bit-weight
    export ran through ONNX Runtime's fused and reference kernels differs by at most 8e-4;
    the older full-range exports (genre-1.0 to 1.8) saturate in the fused kernels and miss
    their own probs_int8 by 0.12-0.30, against tolerances of 0.03-0.13 from this rule. So the
    rule passes every correct build seen and refuses every saturated one."""
    if probs_fp32 is None:
        return INT8_TOLERANCE_NO_FP32
    return max(INT8_TOLERANCE_FLOOR, 2.0 * float(np.abs(probs_int8 - probs_fp32).max()))


def check_engine(engine: Engine) -> dict:
    """Run the bundle's own test vectors through ``engine`` and judge them.

    This is the check a box runs on its own build (TensorRT on the Jetson) before it switches
    to a bundle: ``passed`` when every probability lies within ``tolerance`` of the reference
    for the engine's precision and top-1 agrees on every vector. A vector whose reference top
    two lie within 2 x tolerance of each other is a tie that two correct builds may break
    differently; there the device may name either (counted in ``ties``).
    """
    path = engine.bundle.path / "test_vectors.npz"
    if not path.is_file():
        raise BundleError(f"{engine.bundle.path}: no test_vectors.npz to check against")
    try:
        data = np.load(path)
        x = data["features"].astype(np.float32)
        fp32 = data["probs_fp32"] if "probs_fp32" in data else None
        int8 = data["probs_int8"] if "probs_int8" in data else None
    except (OSError, ValueError, KeyError) as e:
        raise BundleError(f"{path}: cannot read the test vectors ({e})") from e
    precision = getattr(engine, "precision", "int8")
    if precision == "int8" and int8 is not None:
        want, want_key, tol = int8, "probs_int8", int8_tolerance(int8, fp32)
    elif fp32 is not None:
        want, want_key, tol = fp32, "probs_fp32", FP32_TOLERANCE
        if precision == "int8":  # an INT8 build with only an FP32 reference
            tol = INT8_TOLERANCE_NO_FP32
    else:
        raise BundleError(f"{path}: holds neither probs_fp32 nor probs_int8")
    t0 = time.perf_counter()
    got = np.concatenate([engine.infer(x[i:i + 1])[0] for i in range(len(x))])
    ms = (time.perf_counter() - t0) * 1000 / max(1, len(x))
    if got.shape != want.shape:
        raise BundleError(f"{path}: the model gives probabilities of shape {got.shape[1:]}, "
                          f"the vectors hold {want.shape[1:]}")
    diff = np.abs(got - want)
    diff = np.where(np.isfinite(diff), diff, np.inf)
    same = got.argmax(1) == want.argmax(1)
    ordered = np.sort(want, axis=1)
    tie = (ordered[:, -1] - ordered[:, -2]) <= 2 * tol
    # on a tie the device may name any label within 2 x tol of the reference's best
    near_best = want[np.arange(len(want)), got.argmax(1)] >= ordered[:, -1] - 2 * tol
    agree = same | (tie & near_best)
    worst = float(diff.max()) if diff.size else 0.0
    return {"vectors": int(len(x)), "top1_agreement": float(np.mean(same)),
            "disagreeing": int(np.sum(~agree)), "ties": int(np.sum(tie & ~same)),
            "max_abs_diff": worst, "tolerance": tol,
            "passed": bool(len(x) > 0 and agree.all() and worst <= tol),
            "ms_per_window": ms, "backend": engine.backend, "precision": precision,
            "reference": want_key}


def describe_check(result: dict) -> str:
    """One line for people: why a device check passed or failed."""
    words = (f"top-1 agreed on {result['vectors'] - result['disagreeing']} of "
             f"{result['vectors']} test vectors, largest probability difference "
             f"{result['max_abs_diff']:.2g} (allowed {result['tolerance']:.2g})")
    return ("passed: " if result["passed"] else "failed: ") + words


@dataclass
class DeviceCheck:
    """Which backend and precision a bundle runs at on this device, and why not faster."""

    backend: str
    precision: str
    label: str
    result: dict
    not_faster: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"backend": self.backend, "precision": self.precision, "label": self.label,
                "not_faster": self.not_faster, **{k: self.result[k] for k in (
                    "vectors", "top1_agreement", "disagreeing", "ties", "max_abs_diff",
                    "tolerance", "reference")}}


def candidates(backend: str) -> list[tuple[str, str]]:
    """(backend, precision) pairs to try, fastest first, for a configured backend."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown engine backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    trt = [("tensorrt", "int8")]
    ort = [("onnxruntime", "int8"), ("onnxruntime", "fp32")]
    return {"auto": trt + ort, "tensorrt": trt, "onnxruntime": ort}[backend]


def open_checked_engine(bundle: Bundle, backend: str = "auto", *,
                        threads: int = 1) -> tuple[Engine, DeviceCheck]:
    """The fastest engine for ``bundle`` on this device that passes the bundle's own test
    vectors: TensorRT INT8, else ONNX Runtime INT8, else ONNX Runtime FP32 (as ``backend``
    allows). Each is opened with :func:`open_engine`, the daemon's own call. Raises
    BundleError with every attempt's reason when none passes."""
    tried: list[dict] = []
    for be, prec in candidates(backend):
        if be == "tensorrt" and prec not in bundle.models:
            prec = "fp32"  # TensorRT builds from whichever ONNX model the bundle has
        name = f"{BACKEND_NAMES[be]} {prec.upper()}"
        if prec not in bundle.models:
            tried.append({"backend": name, "reason": f"the bundle has no {prec.upper()} model",
                          "detail": ""})
            continue
        try:
            engine = open_engine(bundle, be, threads=threads, precision=prec)
            result = check_engine(engine)
        except Exception as e:  # a runtime or driver failure: try the next backend
            unavailable = isinstance(e, ImportError) or "not usable here" in str(e)
            tried.append({"backend": name, "detail": str(e) or type(e).__name__,
                          "reason": "not available here" if unavailable else "could not open"})
            continue
        if result["passed"]:
            return engine, DeviceCheck(be, prec, name, result, tried)
        tried.append({"backend": name, "reason": "failed its test vectors here",
                      "detail": describe_check(result)})
    raise BundleError(f"{bundle.path}: no backend on this device reproduces the bundle's "
                      "test vectors — " + "; ".join(
                          f"{t['backend']}: {t['reason']}" + (f" ({t['detail']})"
                                                              if t["detail"] else "")
                          for t in tried))


def why_not_faster(not_faster: list[dict]) -> str:
    """"TensorRT INT8: not available here; ONNX Runtime INT8: failed its test vectors here"."""
    return "; ".join(f"{t['backend']}: {t['reason']}" for t in not_faster)
