"""Where composed frames go: the Jetson console (KMS), a desktop window, or nowhere.

Every output can also record what it presents into an MP4 (a preview of a show, or proof
in a test that the right frames were shown).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pygame

log = logging.getLogger("appliance.player")

SPECS = ("kms", "window", "offscreen", "auto")
_PREVIEW_MAX = (1280, 720)


def preview_size(size: tuple[int, int], cap: tuple[int, int] = _PREVIEW_MAX) -> tuple[int, int]:
    """``size`` scaled down (aspect kept, even numbers) to fit ``cap``."""
    w, h = size
    scale = min(1.0, cap[0] / w, cap[1] / h)
    return max(2, int(w * scale) // 2 * 2), max(2, int(h * scale) // 2 * 2)


class Recorder:
    """Writes frames to an H.264 MP4 on a background thread (no frame is ever skipped)."""

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int]) -> None:
        self.path = Path(path)
        self.size = size
        self.frames = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._container = av.open(str(self.path), "w")
        rate = Fraction(fps).limit_denominator(1001)
        self._stream = self._container.add_stream("libx264", rate=rate)
        self._stream.width, self._stream.height = size
        self._stream.pix_fmt = "yuv420p"
        self._stream.options = {"preset": "veryfast", "crf": "23"}  # previews must beat real time
        self._stream.codec_context.time_base = 1 / rate
        self._queue: queue.Queue = queue.Queue(maxsize=8)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="record", daemon=True)
        self._thread.start()

    def write(self, frame: av.VideoFrame) -> None:
        """Queue a frame (any size/format: it is converted on the writer thread)."""
        frame.pts = self.frames
        self.frames += 1
        self._queue.put(frame)

    def _run(self) -> None:
        w, h = self.size
        while True:
            frame = self._queue.get()
            if frame is None:
                break
            if self._error is not None:
                continue
            try:
                pts = frame.pts
                out = frame.reformat(width=w, height=h, format="yuv420p")
                out.pts = pts
                out.time_base = self._stream.codec_context.time_base
                self._container.mux(self._stream.encode(out))
            except Exception as exc:  # noqa: BLE001 - a full disk must not stop the show
                self._error = exc
                log.error("recording to %s failed: %s", self.path, exc)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        try:
            if self._error is None:
                self._container.mux(self._stream.encode(None))
        finally:
            self._container.close()


def _grab(surface: pygame.Surface) -> av.VideoFrame:
    """Copy a surface into a VideoFrame (one memcpy for 32-bit surfaces)."""
    w, h = surface.get_size()
    if surface.get_bytesize() == 4:
        masks = surface.get_masks()
        fmt = {
            (0xFF0000, 0xFF00, 0xFF): "bgra",
            (0xFF, 0xFF00, 0xFF0000): "rgba",
        }.get(tuple(masks[:3]))
        if fmt is not None:
            view = surface.get_view("1")
            try:
                rows = np.frombuffer(view, np.uint8).reshape(h, surface.get_pitch())
                frame = av.VideoFrame.from_ndarray(
                    np.ascontiguousarray(rows[:, : w * 4]).reshape(h, w, 4), format=fmt
                )
            finally:
                del view
            return frame
    data = np.frombuffer(pygame.image.tobytes(surface, "RGB"), np.uint8).reshape(h, w, 3)
    return av.VideoFrame.from_ndarray(data, format="rgb24")


class Output:
    """A display target. Compose into ``surface``, then call ``present()``."""

    kind = "none"

    def __init__(
        self,
        size: tuple[int, int],
        fps: float,
        *,
        record: str | Path | None = None,
        record_size: tuple[int, int] | None = None,
    ) -> None:
        self.size = size
        self.fps = fps
        self.presented = 0
        self.first_frame_presented = False
        self.on_first_frame: Callable[[], None] | None = None  # e.g. send READY=1
        self.recorder = (
            Recorder(record, fps, record_size or preview_size(size)) if record else None
        )
        self.surface: pygame.Surface = pygame.Surface(size)

    def _show(self) -> None:
        """Put ``surface`` on screen (nothing for headless outputs)."""

    def keys(self) -> list[str]:
        """Names of the keys pressed since the last call (``"t"``, ``"f1"``); none here."""
        return []

    compositor_name = "software"

    def compositor(self):
        """What composes frames for this output: pygame blits into ``surface`` here; the
        GPU output (appliance.player.gpu) composes with SDL's renderer instead."""
        from .compositor import Compositor

        return Compositor(self.surface)

    def _picture(self) -> pygame.Surface:
        """The frame as presented, for the recording."""
        return self.surface

    def present(self) -> None:
        """Show the composed ``surface`` (and record it, before the flip)."""
        if self.recorder is not None:
            self.recorder.write(_grab(self._picture()))
        self._show()
        self.presented += 1
        if not self.first_frame_presented:
            self.first_frame_presented = True
            if self.on_first_frame is not None:
                self.on_first_frame()

    def close(self) -> None:
        if self.recorder is not None:
            self.recorder.close()
            self.recorder = None


def letterbox(src: tuple[int, int], dst: tuple[int, int]) -> pygame.Rect:
    """Where a picture of size ``src`` goes on a screen of size ``dst``: as large as fits
    with its aspect kept, centred (black bars fill the rest)."""
    sw, sh = src
    dw, dh = dst
    scale = min(dw / sw, dh / sh)
    w, h = min(dw, round(sw * scale)), min(dh, round(sh * scale))
    return pygame.Rect((dw - w) // 2, (dh - h) // 2, w, h)


def select_video_driver(kind: str) -> None:
    """Point SDL at the driver for output ``kind`` (``kms``, ``window``, ``offscreen``), before
    its display is opened; shared by the software and the GPU outputs."""
    if kind == "kms":
        os.environ["SDL_VIDEODRIVER"] = "kmsdrm"
    elif kind == "window":
        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise RuntimeError("no DISPLAY or WAYLAND_DISPLAY")
        if os.environ.get("SDL_VIDEODRIVER") in ("dummy", "offscreen", "kmsdrm"):
            del os.environ["SDL_VIDEODRIVER"]
    elif kind == "offscreen":
        if os.environ.get("SDL_VIDEODRIVER") != "offscreen":
            os.environ["SDL_VIDEODRIVER"] = "dummy"
    else:
        raise ValueError(f"unknown output {kind!r}")


def connector_status(drm: Path) -> dict[str, str]:
    """Display connectors under ``drm`` (/sys/class/drm): ``HDMI-A-1`` -> ``connected``."""
    out = {}
    try:
        entries = sorted(drm.iterdir())
    except OSError:
        return out
    for entry in entries:
        try:
            out[entry.name.split("-", 1)[-1]] = (entry / "status").read_text().strip()
        except OSError:
            continue
    return out


class DisplayOutput(Output):
    """An SDL display: ``kms`` (console, fullscreen), ``window`` or ``offscreen`` (dummy).

    On ``kms`` the screen keeps its own (preferred) mode and the show is letterboxed into
    it, the cursor is hidden, and the connectors in ``drm`` (/sys/class/drm) are watched:
    when the screen goes (a projector unplugged) the show keeps running without presenting,
    and when one is connected again the display is opened anew and the picture comes back.
    ``drm`` may be given for any kind (tests point it at a stand-in folder)."""

    CHECK_EVERY_S = 2.0

    def __init__(
        self,
        kind: str,
        size: tuple[int, int],
        fps: float,
        *,
        record: str | Path | None = None,
        record_size: tuple[int, int] | None = None,
        drm: Path | None = None,
    ) -> None:
        self.kind = kind
        select_video_driver(kind)
        if kind == "kms":
            drm = drm or Path("/sys/class/drm")
        self._size = tuple(size)
        self._open_display()
        super().__init__(size, fps, record=record, record_size=record_size)
        # compose straight into the display surface when it has the right size and is not
        # a real screen (one that went may be opened anew, under the compositor's feet)
        if self._display.get_size() == tuple(size) and drm is None and kind == "offscreen":
            self.surface = self._display
        else:
            self.surface = pygame.Surface(size, 0, self._display)
        self._headless = os.environ.get("SDL_VIDEODRIVER") == "dummy"
        self._drm = drm
        self.lost = False  # True while the screen is gone; the show goes on regardless
        self._next_check = 0.0
        if kind == "kms":
            connected = [n for n, st in connector_status(drm).items() if st == "connected"]
            log.info("output: kms on %s, screen %dx%d (its own mode), show %dx%d%s",
                     ", ".join(connected) or "no connected screen",
                     *self._display.get_size(), *size,
                     "" if self._display.get_size() == tuple(size) else " letterboxed")

    def _open_display(self) -> None:
        pygame.display.quit()
        try:
            pygame.display.init()
            if self.kind == "kms":  # (0, 0): the screen's current mode, which KMS sets to
                self._display = pygame.display.set_mode((0, 0), pygame.FULLSCREEN)  # preferred
            else:
                self._display = pygame.display.set_mode(self._size, 0)
        except pygame.error as exc:
            pygame.display.quit()
            raise RuntimeError(str(exc)) from exc
        pygame.display.set_caption("appliance")
        if self.kind == "kms":
            pygame.mouse.set_visible(False)
        self._box = letterbox(self._size, self._display.get_size())

    def _watch(self) -> None:
        """Every CHECK_EVERY_S: has the screen gone, or come back?"""
        now = time.monotonic()
        if now < self._next_check or (self._drm is None and not self.lost):
            return
        self._next_check = now + self.CHECK_EVERY_S
        if self._drm is None:  # nothing to watch: after a failure, simply try again
            if self.surface is self._display:  # composed in place: the same display
                self.lost = False
                return
            connected = [self.kind]
        else:
            connected = [n for n, st in connector_status(self._drm).items()
                         if st == "connected"]
        if not connected and not self.lost:
            self.lost = True
            log.error("output: the screen is gone (no connector connected); the show goes on "
                      "and the picture comes back when a screen does")
        elif connected and self.lost:
            try:
                self._open_display()
            except RuntimeError as exc:
                log.warning("output: %s is connected but cannot be opened yet: %s",
                            connected[0], exc)
                return
            self.lost = False
            log.info("output: the screen is back on %s (%dx%d)", connected[0],
                     *self._display.get_size())

    def _show(self) -> None:
        self._watch()
        if self.lost:
            return
        try:
            if self.surface is not self._display:
                if self._box.size == self.surface.get_size():
                    self._display.blit(self.surface, self._box)
                else:
                    pygame.transform.scale(self.surface, self._box.size,
                                           self._display.subsurface(self._box))
            if not self._headless:
                pygame.event.pump()  # keep the window/console responsive
                pygame.display.flip()
        except pygame.error as exc:  # the display went away under us
            self.lost = True
            self._next_check = 0.0
            log.error("output: presenting failed (%s); the show goes on", exc)

    def keys(self) -> list[str]:
        """Keys pressed on a keyboard plugged into the box (KMS: SDL reads them through
        evdev, which needs the ``input`` group), or typed into the window."""
        if not pygame.display.get_init():
            return []
        # every event is taken, so the queue never fills up and drops a key press
        return [pygame.key.name(e.key) for e in pygame.event.get() if e.type == pygame.KEYDOWN]

    def close(self) -> None:
        super().close()
        pygame.display.quit()


COMPOSITORS = ("software", "gpu", "auto")


def open_output(
    spec: str,
    size: tuple[int, int],
    fps: float,
    *,
    record: str | None = None,
    record_size: tuple[int, int] | None = None,
    compositor: str = "software",
) -> Output:
    """Open ``spec`` ("kms" | "window" | "offscreen" | "auto").

    "auto" tries kms, then window, then offscreen, logging which one was chosen and why.
    ``record="x.mp4"`` also writes every presented frame to that MP4 at ``record_size``
    (default: ``size`` capped at 1280x720). ``compositor``: "software" (pygame blits, the
    reference), "gpu" (SDL's renderer: the GPU where there is one, else SDL's software
    renderer) or "auto" (the GPU if SDL offers an accelerated renderer, else software).
    """
    if spec not in SPECS:
        raise ValueError(f"unknown output {spec!r}; expected one of {', '.join(SPECS)}")
    if compositor not in COMPOSITORS:
        raise ValueError(f"unknown compositor {compositor!r}; expected one of "
                         f"{', '.join(COMPOSITORS)}")
    kinds = ["kms", "window", "offscreen"] if spec == "auto" else [spec]
    reasons = []
    for kind in kinds:
        try:
            out = _open_kind(kind, size, fps, record, record_size, compositor, reasons)
        except RuntimeError as exc:
            if spec != "auto":
                raise
            reasons.append(f"{kind}: {exc}")
            continue
        if spec == "auto" or compositor != "software":
            why = f" ({'; '.join(reasons)})" if reasons else ""
            log.info("output: using %s, %s compositor%s", kind, out.compositor_name, why)
        return out
    raise RuntimeError("no output could be opened: " + "; ".join(reasons))


def _open_kind(kind: str, size: tuple[int, int], fps: float, record: str | None,
               record_size: tuple[int, int] | None, compositor: str,
               reasons: list[str]) -> Output:
    if compositor != "software":
        from .gpu import RendererOutput

        try:
            return RendererOutput(kind, size, fps, accelerated=1 if compositor == "auto" else -1,
                                  record=record, record_size=record_size)
        except RuntimeError as exc:
            if compositor == "gpu":
                raise
            reasons.append(f"{kind} gpu: {exc}")
    return DisplayOutput(kind, size, fps, record=record, record_size=record_size)
