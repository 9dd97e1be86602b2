"""Turn audio of any rate/layout/sample format into float32 mono at the engine rate.

Both classes wrap libswresample through PyAV's ``av.AudioResampler``; nothing here
does its own filtering. The resampler keeps a short filter history between calls, so
feeding a stream in arbitrary chunks gives the same samples as feeding it whole (up to
the ~16-sample tail that only ``flush()`` releases).
"""

from __future__ import annotations

import av
import numpy as np

_EMPTY = np.zeros(0, dtype=np.float32)


def _frames_to_array(frames: list[av.AudioFrame]) -> np.ndarray:
    """Concatenate resampled frames; planar multichannel frames are averaged to mono."""
    if not frames:
        return _EMPTY
    parts = []
    for f in frames:
        a = f.to_ndarray()
        parts.append(
            a.mean(axis=0, dtype=np.float32) if a.ndim == 2 and a.shape[0] > 1 else a.reshape(-1)
        )
    out = parts[0] if len(parts) == 1 else np.concatenate(parts)
    return out.astype(np.float32, copy=False)


class FrameResampler:
    """Decoded ``av.AudioFrame`` (any format, layout, rate) -> float32 mono at ``rate``.

    libswresample converts the sample format and rate; the downmix is a plain mean of
    the channels, the same as the ALSA path (swresample's own stereo->mono matrix adds
    ~3 dB: a sine at 0.5 on both channels came out at 0.707, which would clip loud
    stereo recordings).
    """

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._resampler: av.AudioResampler | None = None
        self._key: tuple[str, str, int] | None = None

    def process(self, frame: av.AudioFrame) -> np.ndarray:
        key = (frame.format.name, frame.layout.name, frame.sample_rate)
        out = _EMPTY
        if self._resampler is None or key != self._key:
            # libswresample refuses frames whose shape differs from the first one;
            # a mid-stream change (rare: chained OGG) gets a fresh resampler.
            if self._resampler is not None:
                out = self.flush()
            self._resampler = av.AudioResampler(
                format="fltp", layout=frame.layout.name, rate=self.rate
            )
            self._key = key
        frame.pts = None  # we keep our own sample count; avoid pts-driven compensation
        res = _frames_to_array(self._resampler.resample(frame))
        return res if out.size == 0 else np.concatenate([out, res])

    def flush(self) -> np.ndarray:
        """Release the resampler's buffered tail (call once at end of stream)."""
        if self._resampler is None:
            return _EMPTY
        out = _frames_to_array(self._resampler.resample(None))
        self._resampler = None
        self._key = None
        return out


class StreamResampler:
    """Streaming float32 mono resampler, ``in_rate`` -> ``out_rate``, chunk by chunk."""

    def __init__(self, in_rate: int, out_rate: int) -> None:
        if in_rate <= 0 or out_rate <= 0:
            raise ValueError(f"sample rates must be positive (got {in_rate} -> {out_rate})")
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._resampler = (
            None
            if in_rate == out_rate
            else av.AudioResampler(format="flt", layout="mono", rate=out_rate)
        )

    def process(self, x: np.ndarray) -> np.ndarray:
        """Resample one chunk of mono float samples; returns what is ready so far."""
        x = np.ascontiguousarray(x, dtype=np.float32).reshape(-1)
        if self._resampler is None:
            return x.copy()
        if x.size == 0:
            return _EMPTY
        frame = av.AudioFrame.from_ndarray(x.reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = self.in_rate
        return _frames_to_array(self._resampler.resample(frame))

    def flush(self) -> np.ndarray:
        if self._resampler is None:
            return _EMPTY
        out = _frames_to_array(self._resampler.resample(None))
        self._resampler = av.AudioResampler(format="flt", layout="mono", rate=self.out_rate)
        return out
