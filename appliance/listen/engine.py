"""Genre engines: one interface, chosen at start-up.

On the Jetson the INT8 Q/DQ model is built into a TensorRT plan (cached per device and
TensorRT version) and run with pycuda; everywhere else ONNX Runtime runs the same bundle.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
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

    def infer(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


class OnnxEngine:
    """ONNX Runtime on the CPU. ``precision`` picks the bundle's int8 or fp32 model."""

    backend = "onnxruntime"

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


class TensorRTEngine:
    """TensorRT + pycuda, for the Jetson. Builds the plan from the bundle's Q/DQ INT8 ONNX
    on first use and caches it; never constructed on a machine without an NVIDIA GPU."""

    backend = "tensorrt"

    def __init__(self, bundle: Bundle, *, cache_dir: Path | None = None) -> None:
        import pycuda.driver as cuda  # noqa: F401  (ImportError without libcuda: caller falls back)
        import tensorrt as trt

        self.bundle = bundle
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


def open_engine(bundle: Bundle, backend: str = "auto", *, threads: int = 1) -> Engine:
    """Open the bundle on the requested backend. ``auto`` prefers TensorRT when it and a GPU
    are present and falls back to ONNX Runtime, saying why in the log."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown engine backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend in ("auto", "tensorrt"):
        try:
            return TensorRTEngine(bundle)
        except ImportError as e:
            if backend == "tensorrt":
                raise BundleError(f"TensorRT backend asked for but not usable here: {e}") from e
            log.info("TensorRT not available (%s); using ONNX Runtime", e)
        except BundleError:
            raise
        except Exception as e:  # a GPU/driver failure must not keep the box from listening
            if backend == "tensorrt":
                raise
            log.warning("TensorRT failed (%s); falling back to ONNX Runtime", e)
    return OnnxEngine(bundle, threads=threads)


def check_engine(engine: Engine) -> dict:
    """Run the bundle's own test vectors through ``engine``; report top-1 agreement.

    This is the check a Jetson runs on its own TensorRT build before switching to a bundle.
    """
    path = engine.bundle.path / "test_vectors.npz"
    if not path.is_file():
        raise BundleError(f"{engine.bundle.path}: no test_vectors.npz to check against")
    data = np.load(path)
    x = data["features"].astype(np.float32)
    want_key = "probs_int8" if "probs_int8" in data else "probs_fp32"
    want = data[want_key]
    t0 = time.perf_counter()
    got = np.concatenate([engine.infer(x[i:i + 1])[0] for i in range(len(x))])
    ms = (time.perf_counter() - t0) * 1000 / max(1, len(x))
    agree = float(np.mean(got.argmax(1) == want.argmax(1)))
    return {"vectors": int(len(x)), "top1_agreement": agree,
            "max_abs_diff": float(np.abs(got - want).max()), "ms_per_window": ms,
            "backend": engine.backend, "reference": want_key}
