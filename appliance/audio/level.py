"""How loud the input is, in dBFS (0 dB = a full-scale square wave; digital silence = FLOOR)."""

from __future__ import annotations

import math

import numpy as np

FLOOR_DB = -120.0


def dbfs(mean_square: float) -> float:
    """A mean-square power of float samples in [-1, 1] as dBFS, never below FLOOR_DB."""
    if not mean_square > 0.0:  # also NaN
        return FLOOR_DB
    return max(FLOOR_DB, 10.0 * math.log10(mean_square))


def rms_dbfs(samples: np.ndarray) -> float:
    """The RMS level of ``samples`` in dBFS."""
    x = np.asarray(samples, np.float32)
    return dbfs(float(np.mean(x.astype(np.float64) ** 2))) if x.size else FLOOR_DB
