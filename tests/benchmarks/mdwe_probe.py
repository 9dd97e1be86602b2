"""Measure, rather than guess, whether the daemon's native parts run under
``MemoryDenyWriteExecute=yes``: each part runs in its own process after
``prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN)`` (Linux >= 6.3; the same rule systemd
enforces), and the table says which ran and which crashed.

    python tests/benchmarks/mdwe_probe.py

Measured 2026-12-03 on the CI machine kind (x86-64, kernel 6.18): ONNX Runtime FP32 and INT8,
PyAV, pygame (dummy driver), libasound with its ctypes callback and PyNaCl run; pygame on
SDL's offscreen driver (Mesa llvmpipe GL, a JIT) dies with SIGSEGV. So the unit leaves
MemoryDenyWriteExecute off. TensorRT and CUDA can only be measured on the Jetson: run this
there (``--part tensorrt``) before turning it on.
"""

from __future__ import annotations

import argparse
import ctypes
import mmap
import os
import subprocess
import sys

PARTS = ("onnxruntime", "pyav", "pygame-dummy", "pygame-offscreen", "alsa", "nacl", "tensorrt")


def _enforce() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(65, 1, 0, 0, 0) != 0:  # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN
        raise SystemExit(f"PR_SET_MDWE not available (errno {ctypes.get_errno()})")
    try:
        mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    except OSError:
        return
    raise SystemExit("a W+X mapping was allowed: MDWE is not enforced")


def _run(part: str) -> None:
    _enforce()
    import numpy as np

    if part == "onnxruntime":
        import onnxruntime as ort

        from appliance.config import default_engine_dir
        for name in ("model.onnx", "model.int8.onnx"):
            s = ort.InferenceSession(str(default_engine_dir() / name),
                                     providers=["CPUExecutionProvider"])
            i = s.get_inputs()[0]
            shape = [d if isinstance(d, int) else 1 for d in i.shape]
            s.run(None, {i.name: np.random.rand(*shape).astype(np.float32)})
    elif part == "pyav":
        import av  # noqa: F401
    elif part.startswith("pygame"):
        os.environ["SDL_VIDEODRIVER"] = part.split("-")[1]
        import pygame

        pygame.display.init()
        pygame.display.set_mode((320, 240))
        pygame.display.flip()
    elif part == "alsa":
        from appliance.audio import alsa  # noqa: F401  (libasound + a ctypes callback)
    elif part == "nacl":
        import nacl.signing

        nacl.signing.SigningKey.generate().sign(b"x")
    elif part == "tensorrt":
        import tensorrt  # noqa: F401  (the Jetson only)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=PARTS)
    args = ap.parse_args()
    if args.part:
        _run(args.part)
        return 0
    for part in PARTS:
        r = subprocess.run([sys.executable, __file__, "--part", part], capture_output=True,
                           text=True)
        if r.returncode == 0:
            verdict = "runs"
        elif r.returncode < 0:
            verdict = f"killed by signal {-r.returncode}"
        else:
            verdict = f"fails: {(r.stderr.strip().splitlines() or ['?'])[-1][:80]}"
        print(f"{part:18s} {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
