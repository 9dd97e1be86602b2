"""The feature front end: audio → log-mel spectrogram.

This is the ONE feature function of the project. The listener on the box and the training
recipe both import ``log_mel``; nothing else computes features, so the two can never
disagree. Parameters travel in the engine bundle's manifest (``FrontEnd.from_manifest``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np


@dataclass(frozen=True)
class FrontEnd:
    """Front-end parameters. Frames are not centred: a window of N samples gives
    ``1 + (N - n_fft) // hop_length`` frames, so streaming and offline agree exactly."""

    sample_rate: int = 16000
    n_fft: int = 2048
    hop_length: int = 320
    n_mels: int = 128
    fmin: float = 30.0
    fmax: float = 8000.0
    log_floor: float = 1e-6

    def frames_for(self, n_samples: int) -> int:
        return 1 + (n_samples - self.n_fft) // self.hop_length

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> FrontEnd:
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)


# Slaney's mel scale (librosa's default): linear below 1 kHz, logarithmic above
_F_SP = 200.0 / 3
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = np.log(6.4) / 27.0


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    f = np.asarray(f, dtype=np.float64)
    high = f >= _MIN_LOG_HZ
    return np.where(high, _MIN_LOG_MEL + np.log(np.maximum(f, 1e-9) / _MIN_LOG_HZ) / _LOGSTEP,
                    f / _F_SP)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    high = m >= _MIN_LOG_MEL
    return np.where(high, _MIN_LOG_HZ * np.exp(_LOGSTEP * (m - _MIN_LOG_MEL)), _F_SP * m)


@lru_cache(maxsize=8)
def mel_filterbank(fe: FrontEnd) -> np.ndarray:
    """Triangular, area-normalised (Slaney) filters, shape (n_mels, n_fft // 2 + 1)."""
    fft_freqs = np.linspace(0.0, fe.sample_rate / 2, fe.n_fft // 2 + 1)
    mel_pts = np.linspace(_hz_to_mel(np.array([fe.fmin]))[0],
                          _hz_to_mel(np.array([fe.fmax]))[0], fe.n_mels + 2)
    hz_pts = _mel_to_hz(mel_pts)
    widths = np.diff(hz_pts)
    ramps = hz_pts[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (hz_pts[2:] - hz_pts[:-2]))[:, None]
    weights = weights.astype(np.float32)
    weights.setflags(write=False)
    return weights


@lru_cache(maxsize=8)
def _window(n_fft: int) -> np.ndarray:
    # periodic Hann, the usual choice for spectral analysis
    w = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)
    w.setflags(write=False)
    return w


def log_mel(audio: np.ndarray, fe: FrontEnd) -> np.ndarray:
    """Log-mel power spectrogram of mono ``audio`` at ``fe.sample_rate``.

    Returns float32 ``(n_mels, n_frames)`` of ``ln(mel_power + log_floor)``.
    """
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"log_mel wants mono audio (1-D), got shape {x.shape}")
    n_frames = fe.frames_for(len(x))
    if n_frames < 1:
        raise ValueError(f"need at least n_fft={fe.n_fft} samples, got {len(x)}")
    frames = np.lib.stride_tricks.as_strided(
        x, shape=(n_frames, fe.n_fft), strides=(x.strides[0] * fe.hop_length, x.strides[0]),
        writeable=False)
    spec = np.fft.rfft(frames * _window(fe.n_fft), axis=1)
    power = (spec.real ** 2 + spec.imag ** 2).astype(np.float32)
    mel = mel_filterbank(fe) @ power.T
    return np.log(mel + np.float32(fe.log_floor)).astype(np.float32)
