"""Audio file source: anything FFmpeg decodes, as float32 mono at the engine rate.

Used for simulation (``realtime=False``: as fast as the caller reads) and as a stand-in
for the stage mic (``realtime=True``: each ``read`` returns when its samples would
have been heard, like a live input).
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Iterator

import av
import numpy as np

from .resample import FrameResampler

log = logging.getLogger("appliance.audio")

# If a realtime consumer falls this far behind the wall clock, stop trying to catch up
# (a live mic would have overrun too); the clock restarts from "now".
_MAX_LAG_S = 2.0


class FileSource:
    """``AudioSource`` over a decoded file; zeros and ``ended=True`` past its end."""

    def __init__(self, path: str, rate: int, *, realtime: bool = False) -> None:
        if rate <= 0:
            raise ValueError(f"output sample rate must be positive, got {rate}")
        self.path = os.fspath(path)
        self.rate = rate
        self.realtime = realtime
        self.ended = False
        self.status = "ok"
        self.last_progress = time.monotonic()
        if not os.path.exists(self.path):
            raise FileNotFoundError(f"audio file not found: {self.path}")
        if os.path.isdir(self.path):
            raise ValueError(f"audio path is a directory, not a file: {self.path}")
        try:
            self._container = av.open(self.path, mode="r")
        except (av.error.FFmpegError, OSError) as e:
            raise ValueError(f"cannot read audio file {self.path}: {e}") from e
        if not self._container.streams.audio:
            self._container.close()
            raise ValueError(f"no audio stream in {self.path}")
        self._stream = self._container.streams.audio[0]
        self._resampler = FrameResampler(rate)
        self._frames: Iterator[av.AudioFrame] | None = self._container.decode(self._stream)
        self._pending: deque[np.ndarray] = deque()
        self._pending_len = 0
        self._clock_start: float | None = None
        self._emitted = 0  # samples handed out since the clock started

    def _decode_more(self) -> bool:
        """Decode until something is pending; False once the file is exhausted."""
        while self._frames is not None:
            try:
                frame = next(self._frames)
            except StopIteration:
                self._finish(self._resampler.flush())
                return self._pending_len > 0
            except av.error.FFmpegError as e:
                log.warning("decode error in %s, treating as end of file: %s", self.path, e)
                self._finish(self._resampler.flush())
                return self._pending_len > 0
            out = self._resampler.process(frame)
            if out.size:
                self._pending.append(out)
                self._pending_len += out.size
                return True
        return False

    def _finish(self, tail: np.ndarray) -> None:
        if tail.size:
            self._pending.append(tail)
            self._pending_len += tail.size
        self._frames = None
        self._container.close()

    def _take(self, n: int) -> np.ndarray:
        out = np.zeros(n, dtype=np.float32)
        filled = 0
        while filled < n:
            if not self._pending and not self._decode_more():
                if not self.ended:
                    self.ended = True
                    self.status = f"no input: reached the end of {os.path.basename(self.path)}"
                    log.info("audio file ended: %s", self.path)
                break
            head = self._pending[0]
            k = min(n - filled, head.size)
            out[filled : filled + k] = head[:k]
            filled += k
            if k == head.size:
                self._pending.popleft()
            else:
                self._pending[0] = head[k:]
            self._pending_len -= k
        return out

    def read(self, n: int) -> np.ndarray:
        """Exactly ``n`` float32 samples in [-1, 1]; blocks in realtime mode."""
        if n < 0:
            raise ValueError(f"cannot read a negative number of samples ({n})")
        out = self._take(n)
        np.clip(out, -1.0, 1.0, out=out)
        if self.realtime:
            self._pace(n)
        self.last_progress = time.monotonic()
        return out

    def _pace(self, n: int) -> None:
        now = time.monotonic()
        if self._clock_start is None:
            self._clock_start = now
            self._emitted = 0
        due = self._clock_start + (self._emitted + n) / self.rate
        if now - due > _MAX_LAG_S:
            self._clock_start = now - n / self.rate  # give up the backlog, keep pacing
            self._emitted = 0
            due = now
        self._emitted += n
        if due > now:
            time.sleep(due - now)

    def close(self) -> None:
        if self._frames is not None:
            self._frames = None
            self._container.close()
        self._pending.clear()
        self._pending_len = 0

    def __repr__(self) -> str:
        return f"FileSource({self.path!r}, rate={self.rate}, realtime={self.realtime})"
