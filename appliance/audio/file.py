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

MIN_RATE = 8000  # below this a recording cannot carry a piano's sound (a phone line is 8 kHz)
MAX_CHANNELS = 32


def _plain_av_error(e: BaseException) -> str:
    """FFmpeg's "[Errno 1094995529] Invalid data found when processing input: 'x'" → words."""
    msg = getattr(e, "strerror", None) or str(e)
    if "Invalid data" in msg or "End of file" in msg:
        return "not an audio file that can be read (empty, cut short, or another kind of file)"
    return msg


def _stream_problem(rate: int, channels: int) -> str | None:
    if rate <= 0:
        return "not an audio file that can be read (no sample rate in it)"
    if rate < MIN_RATE:
        return f"sample rate {rate} Hz is too low to hear a piano (at least {MIN_RATE} Hz)"
    if not 1 <= channels <= MAX_CHANNELS:
        return f"{channels} channels; 1 to {MAX_CHANNELS} can be mixed down"
    return None


def check_audio_file(path: str | os.PathLike, min_s: float = 0.0) -> str | None:
    """What is wrong with an audio file, in words, or None. Decodes it all once, so a file
    cut short (its header promises more than it holds) or damaged part-way is found too."""
    path = os.fspath(path)
    if not os.path.exists(path):
        return "not found"
    if os.path.isdir(path):
        return "a folder, not an audio file"
    if os.path.getsize(path) == 0:
        return "empty (0 bytes)"
    try:
        container = av.open(path, mode="r")
    except (av.error.FFmpegError, OSError, ValueError) as e:
        return _plain_av_error(e)
    with container:
        if not container.streams.audio:
            return "has no audio in it"
        stream = container.streams.audio[0]
        rate = stream.rate or 0
        wrong = _stream_problem(rate, stream.channels or 0)
        if wrong:
            return wrong
        declared = None
        if stream.duration is not None and stream.time_base is not None:
            declared = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            declared = container.duration / 1e6
        decoded = 0
        try:
            for frame in container.decode(stream):
                decoded += frame.samples
        except (av.error.FFmpegError, ValueError) as e:
            return f"damaged after {decoded / rate:.1f} s ({_plain_av_error(e)})"
    got = decoded / rate
    if declared is not None and declared > 0.5 and got < 0.9 * declared:
        return f"cut short: its header says {declared:.1f} s, only {got:.1f} s is there"
    if got < min_s:
        return f"too short: {got:.2f} s of audio, at least {min_s:g} s is needed"
    return None


class NoInputSource:
    """The daemon's file source when the file cannot be used: silence paced in real time,
    with ``status`` saying why (the same as a vanished mic; the film plays on)."""

    ended = False

    def __init__(self, rate: int, reason: str) -> None:
        self.rate = rate
        self.status = f"no input: {reason}"
        self.last_progress = time.monotonic()
        self._stop = False

    def read(self, n: int) -> np.ndarray:
        time.sleep(n / self.rate)
        self.last_progress = time.monotonic()
        return np.zeros(n, np.float32)

    def close(self) -> None:
        self._stop = True


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
            raise ValueError(f"{self.path}: {_plain_av_error(e)}") from e
        if not self._container.streams.audio:
            self._container.close()
            raise ValueError(f"{self.path}: has no audio in it")
        self._stream = self._container.streams.audio[0]
        wrong = _stream_problem(self._stream.rate or 0, self._stream.channels or 0)
        if wrong:
            self._container.close()
            raise ValueError(f"{self.path}: {wrong}")
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
