"""A video decoded ahead of time on its own thread.

The decoder numbers frames by their presentation time (``index = round(pts_seconds * fps)``),
and keeps counting across loops, so a looping video is simply an endless sequence of
indices: the caller asks for the frame at a media time and never has to think about wrap-around.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

log = logging.getLogger("appliance.player")

_END = object()  # queue sentinel: no more frames will come


@dataclass
class _Frame:
    index: int
    image: np.ndarray


def _has_alpha(pix_fmt: str | None) -> bool:
    if not pix_fmt:
        return False
    try:
        return any(c.is_alpha for c in av.VideoFormat(pix_fmt).components)
    except (ValueError, TypeError):
        return False


def _fit(src: tuple[int, int], dst: tuple[int, int]) -> tuple[int, int]:
    """Largest size with the aspect of ``src`` that fits in ``dst`` (even numbers)."""
    sw, sh = src
    dw, dh = dst
    scale = min(dw / sw, dh / sh)
    return max(2, round(sw * scale)), max(2, round(sh * scale))


class VideoDecoder:
    """Decode ``path`` ahead into a bounded queue, as frames of exactly ``size``.

    Frames are ``(h, w, 3)`` rgb24 arrays, or ``(h, w, 4)`` rgba when the stream carries
    alpha. Media of another size are scaled to fit (aspect kept, letterboxed on black or
    on transparent). A file that cannot be opened or decoded never raises: ``error`` says
    why, and the decoder behaves as a video that ended there (the player decides what the
    audience sees instead, and logs it once).

    ``opened`` (class-wide) counts decoders created and ``converted`` the frames this one
    decoded; ``waits`` counts the times a frame was asked for before it was decoded. The
    preroll test reads them to prove that a cut did no decoding.
    """

    opened = 0
    decode_ms: list[float] | None = None  # a list: every decoder adds each frame's cost (bench)

    def __init__(
        self,
        path: str | Path,
        size: tuple[int, int],
        *,
        start_s: float = 0.0,
        loop: bool = False,
        queue_frames: int = 6,
    ) -> None:
        self.path = Path(path)
        self.size = size
        self.loop = loop
        self.error: str | None = None
        self.fps = 30.0
        self.duration = 0.0
        self.has_alpha = False
        self.ended = False
        self.converted = 0
        self.waits = 0
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, queue_frames))
        self._stop = threading.Event()
        self._current: _Frame | None = None
        self._pending: _Frame | None = None
        self._container = None
        self._thread: threading.Thread | None = None
        VideoDecoder.opened += 1
        try:
            self._container = av.open(str(self.path))
            stream = self._container.streams.video[0]
            stream.thread_type = "AUTO"
            self._stream = stream
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            self.fps = float(rate) if rate else 30.0
            if stream.duration is not None and stream.time_base is not None:
                self.duration = float(stream.duration * stream.time_base)
            elif self._container.duration:
                self.duration = self._container.duration / av.time_base
            self._t0 = (
                float(stream.start_time * stream.time_base)
                if stream.start_time is not None and stream.time_base is not None
                else 0.0
            )
            self.has_alpha = _has_alpha(stream.codec_context.pix_fmt)
        except (av.FFmpegError, OSError, IndexError, ValueError) as exc:
            self._fail(f"cannot open video {self.path}: {exc}", at_open=True)
            return
        self.start_index = max(0, math.floor(start_s * self.fps + 1e-6))
        self._thread = threading.Thread(
            target=self._run, name=f"decode:{self.path.name}", daemon=True
        )
        self._thread.start()

    # -- consumer side -------------------------------------------------------------------

    def frame_at(self, media_t: float, *, block: bool, timeout: float = 10.0):
        """The frame showing at ``media_t`` seconds: ``(image | None, fresh)``.

        ``fresh`` is False when a newer frame was due but not decoded yet (only when
        ``block`` is False); the previous image is returned then. When the video has
        ended (non-looping) the last frame is held.
        """
        target = max(0, math.floor(media_t * self.fps + 1e-6))
        fresh = True
        while self._current is None or self._current.index < target:
            if self._pending is None:
                if self.ended:
                    break
                if self._queue.empty():
                    self.waits += 1
                try:
                    item = self._queue.get(block=block, timeout=timeout if block else None)
                except queue.Empty:
                    if block:
                        log.error("decoding %s stalled for %.0f s", self.path, timeout)
                    fresh = False
                    break
                if item is _END:
                    self.ended = True
                    break
                self._pending = item
            if self._current is not None and self._pending.index > target:
                break  # the next frame belongs to a later time: keep showing this one
            self._current, self._pending = self._pending, None
        return (self._current.image if self._current is not None else None), fresh

    @property
    def current_index(self) -> int:
        """Index of the frame :meth:`frame_at` last returned (-1 before the first)."""
        return self._current.index if self._current is not None else -1

    @property
    def ready(self) -> bool:
        """True once the first frame is decoded and waiting (or the video ended)."""
        return self._current is not None or not self._queue.empty() or self.ended

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            while self._thread.is_alive():
                try:  # unblock a producer waiting on a full queue
                    while True:
                        self._queue.get_nowait()
                except queue.Empty:
                    pass
                self._thread.join(timeout=0.05)
        if self._container is not None:
            try:
                self._container.close()
            except av.FFmpegError:
                pass
            self._container = None

    # -- producer side -------------------------------------------------------------------

    def _fail(self, message: str, *, at_open: bool = False) -> None:
        self.error = message
        if at_open:  # no thread: nothing will come. Otherwise the frames decoded before
            self.ended = True  # the failure are still shown, up to the _END in the queue
        log.debug("%s", message)  # the player says it to people, once per file

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _convert(self, frame: av.VideoFrame) -> np.ndarray:
        self.converted += 1
        fmt = "rgba" if self.has_alpha else "rgb24"
        src = (frame.width, frame.height)
        if src == self.size:
            return frame.to_ndarray(format=fmt)
        fw, fh = _fit(src, self.size)
        image = frame.reformat(width=fw, height=fh, format=fmt).to_ndarray()
        if (fw, fh) == self.size:
            return image
        w, h = self.size
        canvas = np.zeros((h, w, image.shape[2]), np.uint8)
        x, y = (w - fw) // 2, (h - fh) // 2
        canvas[y : y + fh, x : x + fw] = image
        return canvas

    def _index_of(self, frame: av.VideoFrame) -> int:
        if frame.pts is None or frame.time_base is None:
            return -1
        return round((float(frame.pts * frame.time_base) - self._t0) * self.fps)

    def _seek(self, local_index: int) -> None:
        if local_index <= 0:
            self._container.seek(0)
            return
        ts = int((local_index / self.fps + self._t0) / self._stream.time_base)
        self._container.seek(ts, stream=self._stream, backward=True, any_frame=False)

    def _run(self) -> None:
        try:
            self._decode_all()
        except Exception as exc:  # noqa: BLE001 - a bad file must not kill the show
            self._fail(f"error while decoding {self.path}: {exc}")
        self._put(_END)

    def _decode_all(self) -> None:
        n_frames = round(self.duration * self.fps) if self.duration > 0 else 0
        wanted = self.start_index
        offset = 0  # global index of the current pass's local frame 0
        if self.loop and n_frames > 0:
            offset = (wanted // n_frames) * n_frames
        local_wanted = wanted - offset
        if local_wanted > 0:
            self._seek(local_wanted)
        timing = VideoDecoder.decode_ms
        clock = time.perf_counter
        while not self._stop.is_set():
            last_local = -1
            held: av.VideoFrame | None = None  # newest frame before local_wanted
            started = clock()  # decode + convert time per frame, not the time queued
            for frame in self._container.decode(self._stream):
                if self._stop.is_set():
                    return
                local = self._index_of(frame)
                if local < 0:
                    local = last_local + 1
                last_local = max(last_local, local)
                if local < local_wanted:
                    held = frame
                    continue
                if held is not None and local > local_wanted:
                    # the seek target falls between frames: show the earlier one first
                    if not self._put(_Frame(offset + local_wanted, self._convert(held))):
                        return
                held = None
                item = _Frame(offset + local, self._convert(frame))
                if timing is not None:
                    timing.append((clock() - started) * 1000.0)
                if not self._put(item):
                    return
                started = clock()
            if held is not None:  # started past the end: hold the last frame
                if not self._put(_Frame(offset + local_wanted, self._convert(held))):
                    return
            if not self.loop:
                return
            if last_local < 0:
                self._fail(f"{self.path} has no decodable frames")
                return
            offset += last_local + 1
            local_wanted = 0
            self._container.seek(0)
