"""The player: turns cues into frames. It knows media, not music."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pygame

from appliance.show.cues import PlayFilm, SetOverlay

from .compositor import BLENDS, Compositor
from .decoder import VideoDecoder
from .output import Output

log = logging.getLogger("appliance.player")

_PRELOAD_SLACK_S = 0.5  # a preloaded decoder is reused if the cue starts within this of 0


@dataclass
class _Clip:
    """One video on a layer, from show time ``t0`` (None decoder: black / nothing)."""

    decoder: VideoDecoder | None
    t0: float
    fade_s: float
    blend: str = "add"
    last: np.ndarray | None = field(default=None, repr=False)

    def mix(self, t: float) -> float:
        """How far this clip has faded in at show time ``t`` (0..1)."""
        if t < self.t0:
            return 0.0
        if self.fade_s <= 0.0:
            return 1.0
        return min(1.0, (t - self.t0) / self.fade_s)

    def close(self) -> None:
        if self.decoder is not None:
            self.decoder.close()
            self.decoder = None


class Player:
    """Composes a base layer (films) and an overlay layer for each show time.

    ``realtime=False``: every frame is exact (waits for the decoder). ``realtime=True``: never
    waits; a frame not decoded in time is replaced by the previous one (``stats["late"]``),
    and show frames the caller skipped are counted in ``stats["dropped"]``.
    """

    def __init__(
        self, output: Output, size: tuple[int, int], fps: float, *, realtime: bool
    ) -> None:
        self.output = output
        self.size = tuple(size)
        self.fps = fps
        self.realtime = realtime
        self.stats: dict = {"presented": 0, "late": 0, "dropped": 0, "errors": 0}
        self._compositor = Compositor(output.surface)
        self._base: list[_Clip] = []  # oldest first; at most two matter at once
        self._overlay: list[_Clip] = []
        self._preloaded: dict[tuple[Path, bool], VideoDecoder] = {}
        self._last_t: float | None = None
        self._last_slot: int | None = None
        # drawn over the composed frame before it is presented (a preview's HUD, the box's
        # self-test card); None: the film alone
        self.on_top: Callable[[pygame.Surface], None] | None = None

    # -- cues ----------------------------------------------------------------------------

    def preload(self, path: str | Path, *, loop: bool = False) -> None:
        """Open ``path`` now and decode its first frames, so a later cue starts instantly."""
        key = (Path(path), loop)
        if key not in self._preloaded:
            self._preloaded[key] = self._open(Path(path), start_s=0.0, loop=loop)

    def _open(self, path: Path, *, start_s: float, loop: bool) -> VideoDecoder | None:
        key = (path, loop)
        pre = self._preloaded.pop(key, None)
        if pre is not None:
            if start_s <= _PRELOAD_SLACK_S and pre.error is None:
                return pre
            pre.close()
        dec = VideoDecoder(path, self.size, start_s=start_s, loop=loop)
        if dec.error is not None:
            self.stats["errors"] += 1
            dec.close()
            return None
        return dec

    def apply(self, cue: PlayFilm | SetOverlay) -> None:
        """Take a cue from the director; it takes effect at ``cue.t``."""
        start_s = 0.0 if self._last_t is None else max(0.0, self._last_t - cue.t)
        if isinstance(cue, PlayFilm):
            dec = self._open(Path(cue.path), start_s=start_s, loop=cue.loop)
            self._base.append(_Clip(dec, cue.t, cue.fade_s))
        elif isinstance(cue, SetOverlay):
            blend = cue.blend if cue.blend in BLENDS else "add"
            if blend != cue.blend:
                log.error("unknown blend mode %r, using 'add'", cue.blend)
            dec = None
            if cue.path is not None:
                dec = self._open(Path(cue.path), start_s=start_s, loop=True)
            self._overlay.append(_Clip(dec, cue.t, cue.fade_s, blend))
        else:
            raise TypeError(f"not a cue: {cue!r}")

    # -- frames --------------------------------------------------------------------------

    def _frame(self, clip: _Clip, t: float) -> np.ndarray | None:
        if clip.decoder is None:
            return None
        image, fresh = clip.decoder.frame_at(max(0.0, t - clip.t0), block=not self.realtime)
        if not fresh:
            self.stats["late"] += 1
        if image is None:
            image = clip.last
        clip.last = image
        return image

    @staticmethod
    def _settle(layer: list[_Clip], t: float) -> list[_Clip]:
        """The clips that still show at ``t``: the newest started one and the one it fades from."""
        started = [c for c in layer if c.t0 <= t]
        if not started:
            return []
        newest = started[-1]
        keep_from = len(started) - 1
        waiting = newest.decoder is not None and newest.last is None  # no frame yet
        if (newest.mix(t) < 1.0 or waiting) and len(started) > 1:
            keep_from -= 1
        for clip in started[:keep_from]:
            clip.close()
            layer.remove(clip)
        return started[keep_from:]

    def present(self, t: float) -> None:
        """Compose the frame for show time ``t`` and present it."""
        slot = math.floor(t * self.fps + 1e-6)
        if self._last_slot is not None and slot > self._last_slot + 1:
            self.stats["dropped"] += slot - self._last_slot - 1
        self._last_slot = slot
        self._last_t = t
        comp = self._compositor

        base = self._settle(self._base, t)
        if not base:
            comp.base(None, None, 1.0)
        elif len(base) == 1:
            comp.base(self._frame(base[0], t), None, base[0].mix(t))  # first film: from black
        else:
            old, new = base
            cur, prev = self._frame(new, t), self._frame(old, t)
            if cur is None and new.decoder is not None:  # realtime: not decoded yet
                comp.base(prev, None, 1.0)
            else:
                comp.base(cur, prev, new.mix(t))

        over = self._settle(self._overlay, t)
        if len(over) == 2:
            old, new = over
            m = new.mix(t)
            comp.overlay(self._frame(old, t), 1.0 - m, old.blend)
            comp.overlay(self._frame(new, t), m, new.blend)
        elif over:
            clip = over[0]
            comp.overlay(self._frame(clip, t), clip.mix(t), clip.blend)

        if self.on_top is not None:
            self.on_top(self.output.surface)
        self.output.present()
        self.stats["presented"] += 1

    def close(self) -> None:
        for clip in self._base + self._overlay:
            clip.close()
        self._base.clear()
        self._overlay.clear()
        for dec in self._preloaded.values():
            if dec is not None:
                dec.close()
        self._preloaded.clear()
        self.output.close()
