"""What a venue calibration costs the listener, per window, one thread.

    python tests/benchmarks/bench_calibration.py [BUNDLE] [--seconds 60]

Times ``Calibration.apply`` alone (the largest kind: temperature, bias and an embedding
layer), and the listener's whole hop (front end + engine + calibration) with and without a
calibration on the same audio, the two interleaved hop by hop so load on the machine falls
on both alike. Prints figures for docs/BENCHMARKS.md; asserts nothing.
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
from appliance.listen.calibration import Calibration, manifest_sha256  # noqa: E402
from appliance.listen.engine import open_checked_engine  # noqa: E402
from appliance.listen.listener import Listener  # noqa: E402


def med(xs: list[float], unit: str = "ms", scale: float = 1.0) -> str:
    xs = sorted(x * scale for x in xs)
    return (f"median {statistics.median(xs):7.3f} {unit}, "
            f"p90 {xs[int(0.9 * (len(xs) - 1))]:7.3f} {unit}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle", nargs="?", default=str(default_engine_dir()))
    ap.add_argument("--seconds", type=float, default=60.0)
    args = ap.parse_args()
    b = load_bundle(args.bundle)
    engine, check = open_checked_engine(b, "onnxruntime", threads=1)
    rng = np.random.default_rng(0)
    k = len(b.labels)
    d = int(b.manifest["outputs"]["embedding"]["shape"][-1])
    cal = Calibration(engine=b.label, engine_sha256=manifest_sha256(b.path), labels=b.labels,
                      kind="embedding", scale=1.1, bias=rng.normal(0, 0.5, k),
                      weights=rng.normal(0, 0.1, (k, d)), mean=rng.normal(0, 1, d),
                      inv_std=np.abs(rng.normal(1, 0.2, d)))
    print(f"bundle {b.label} on {check.label}; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores; window {b.window_s} s, hop {b.hop_s} s; embedding {d}")

    p = rng.dirichlet(np.ones(k))
    e = np.abs(rng.normal(0, 1, d)).astype(np.float32)
    apply_ms = []
    for _ in range(3000):
        t0 = time.perf_counter()
        cal.apply(p, e)
        apply_ms.append((time.perf_counter() - t0) * 1000)
    print(f"Calibration.apply alone: {med(apply_ms, 'us', 1000)}")

    sr = b.frontend.sample_rate
    audio = (0.1 * rng.standard_normal(int(args.seconds * sr))).astype(np.float32)
    plain, tuned = Listener(engine), Listener(engine, calibration=cal)
    hop = b.hop_samples
    cost = {"plain": [], "calibrated": []}
    for start in range(0, len(audio) - hop, hop):
        chunk = audio[start:start + hop]
        for name, lis in (("plain", plain), ("calibrated", tuned)):
            t0 = time.perf_counter()
            out = lis.feed(chunk)
            if out:
                cost[name].append((time.perf_counter() - t0) * 1000)
    a, c = statistics.median(cost["plain"]), statistics.median(cost["calibrated"])
    print(f"listener per hop, engine alone:      {med(cost['plain'])}")
    print(f"listener per hop, with calibration:  {med(cost['calibrated'])}")
    print(f"difference of medians: {1000 * (c - a):+.1f} us ({100 * (c - a) / a:+.1f} % of "
          f"the listener's own cost; the hop is {b.hop_s * 1000:.0f} ms)")


if __name__ == "__main__":
    main()
