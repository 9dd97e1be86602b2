"""Listener cost per window, one thread: front end (streaming, as the box runs it, and a full
window, as training computes it) and engine (INT8 and FP32).

    python tests/benchmarks/bench_listener.py [BUNDLE] [--seconds 60]

Prints figures for docs/BENCHMARKS.md; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from appliance.listen import default_engine_dir, load_bundle  # noqa: E402
from appliance.listen.engine import OnnxEngine  # noqa: E402
from appliance.listen.frontend import log_mel  # noqa: E402
from appliance.listen.listener import Listener  # noqa: E402


def med(xs: list[float]) -> str:
    xs = sorted(xs)
    return f"median {statistics.median(xs):6.3f} ms, p90 {xs[int(0.9 * (len(xs) - 1))]:6.3f} ms"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle", nargs="?", default=str(default_engine_dir()))
    ap.add_argument("--seconds", type=float, default=60.0)
    args = ap.parse_args()
    b = load_bundle(args.bundle)
    rng = np.random.default_rng(0)
    sr = b.frontend.sample_rate
    audio = (0.1 * rng.standard_normal(int(args.seconds * sr))).astype(np.float32)
    print(f"bundle {b.label}; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores; window {b.window_s} s, hop {b.hop_s} s")

    full = []
    for start in range(0, len(audio) - b.window_samples, b.hop_samples):
        t0 = time.perf_counter()
        log_mel(audio[start:start + b.window_samples], b.frontend)
        full.append((time.perf_counter() - t0) * 1000)
    print(f"front end, full window (training's path): {med(full)}")

    for precision in [p for p in ("int8", "fp32") if p in b.models]:
        lis = Listener(OnnxEngine(b, precision=precision, threads=1))
        fe_ms, eng_ms = [], []
        hop = b.hop_samples
        for start in range(0, len(audio) - hop, hop):
            t0 = time.perf_counter()
            out = lis.feed(audio[start:start + hop])
            total = (time.perf_counter() - t0) * 1000
            if out:
                eng_ms.append(lis.last_engine_ms)
                fe_ms.append(total - lis.last_engine_ms)
        print(f"listener {precision}: front end (streaming) {med(fe_ms)}; engine {med(eng_ms)}; "
              f"total median {statistics.median(fe_ms) + statistics.median(eng_ms):.3f} ms")


if __name__ == "__main__":
    main()
