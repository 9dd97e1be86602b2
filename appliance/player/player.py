"""The player: turns cues into frames. It knows media, not music."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pygame

from appliance.show.cues import PlayFilm, SetOverlay

from .card import unavailable_image
from .compositor import BLENDS
from .decoder import VideoDecoder
from .output import Output

log = logging.getLogger("appliance.player")

_PRELOAD_SLACK_S = 0.5  # a preloaded decoder is reused if the cue starts within this of 0


@dataclass
class _Clip:
    """One video on a layer, from show time ``t0`` (None decoder: black / nothing).

    ``base``: a film on the base layer, which becomes the "unavailable" card when its file
    is bad (``failed`` says why) for ``duration_s`` (None: as long as it is on screen).
    """

    decoder: VideoDecoder | None
    t0: float
    fade_s: float
    blend: str = "add"
    last: np.ndarray | None = field(default=None, repr=False)
    path: Path | None = None
    base: bool = False
    duration_s: float | None = None
    failed: str | None = None

    def mix(self, t: float) -> float:
        """How far this clip has faded in at show time ``t`` (0..1)."""
        if t < self.t0:
            return 0.0
        if self.fade_s <= 0.0:
            return 1.0
        return min(1.0, (t - self.t0) / self.fade_s)

    def carded(self, t: float) -> bool:
        """True while this clip shows the card instead of its film."""
        if not self.base or self.failed is None:
            return False
        return self.duration_s is None or t - self.t0 < self.duration_s

    def close(self) -> None:
        if self.decoder is not None:
            self.decoder.close()
            self.decoder = None


class Player:
    """Composes a base layer (films) and an overlay layer for each show time.

    ``realtime=False``: every frame is exact (waits for the decoder). ``realtime=True``: never
    waits; a frame not decoded in time is replaced by the previous one (``stats["late"]``),
    and show frames the caller skipped are counted in ``stats["dropped"]``.

    Bad media never stop the show. A film (attract, main, ending) that is missing, cannot be
    opened, or stops decoding before its time becomes a calm full-screen card ("This part of
    the film is unavailable") for the rest of the time the show gives it, then black; an
    overlay that is bad is simply left out. Each bad file is logged once
    (``stats["unavailable"]`` counts the frames that showed the card).
    """

    def __init__(
        self, output: Output, size: tuple[int, int], fps: float, *, realtime: bool
    ) -> None:
        self.output = output
        self.size = tuple(size)
        self.fps = fps
        self.realtime = realtime
        self.stats: dict = {"presented": 0, "late": 0, "dropped": 0, "errors": 0,
                            "unavailable": 0}
        self._compositor = output.compositor()  # pygame blits, or SDL's renderer (gpu.py)
        self._base: list[_Clip] = []  # oldest first; at most two matter at once
        self._overlay: list[_Clip] = []
        self._preloaded: dict[tuple[Path, bool], VideoDecoder] = {}
        self._last_t: float | None = None
        self._last_slot: int | None = None
        self._card: np.ndarray | None = None
        self._reported: set[Path] = set()
        # per-frame milliseconds of each stage ("frames": waiting for decoded frames,
        # "composite", "present"), kept only when a benchmark sets it to a dict of lists
        self.timing: dict[str, list[float]] | None = None
        # drawn over the composed frame before it is presented (a preview's HUD, the box's
        # self-test card); None: the film alone
        self.on_top: Callable[[pygame.Surface], None] | None = None

    # -- cues ----------------------------------------------------------------------------

    def preload(self, path: str | Path, *, loop: bool = False) -> None:
        """Open ``path`` now and decode its first frames, so a later cue starts instantly."""
        key = (Path(path), loop)
        if key not in self._preloaded:
            self._preloaded[key] = VideoDecoder(key[0], self.size, start_s=0.0, loop=loop)

    def preroll(self, films: Iterable[tuple[Path, bool]]) -> None:
        """Keep exactly ``films`` ((path, loop) pairs) opened at their start with their
        first frames decoded, so that a cue for any of them cuts without decoding (the
        director names them: the next film, every candidate ending before the decision).
        Prerolled films no longer named are closed. Call it every frame: it opens at most
        one film per call, so a frame never pays for several."""
        wanted = [(Path(p), bool(loop)) for p, loop in films]
        for key in [k for k in self._preloaded if k not in wanted]:
            self._preloaded.pop(key).close()
        for path, loop in wanted:  # one open per frame: opening is the costly part
            if (path, loop) not in self._preloaded:
                self.preload(path, loop=loop)
                break

    @property
    def prerolled(self) -> dict[tuple[Path, bool], VideoDecoder]:
        """The films opened ahead of their cue, by (path, loop)."""
        return dict(self._preloaded)

    def _open(self, path: Path, *, start_s: float, loop: bool
              ) -> tuple[VideoDecoder | None, str | None]:
        """A decoder for ``path`` (the preloaded one if it fits), or None and why not."""
        key = (path, loop)
        pre = self._preloaded.pop(key, None)
        if pre is not None:
            if start_s <= _PRELOAD_SLACK_S and pre.error is None:
                return pre, None
            pre.close()
        dec = VideoDecoder(path, self.size, start_s=start_s, loop=loop)
        if dec.error is not None:
            why = dec.error
            dec.close()
            return None, why
        return dec, None

    def _report(self, clip: _Clip, why: str) -> None:
        """Say once per file that it is bad and what the audience sees instead."""
        self.stats["errors"] += 1
        if clip.path in self._reported:
            return
        self._reported.add(clip.path)
        if not clip.base:
            log.error("overlay %s is unavailable (%s): the film plays without it",
                      clip.path, why)
        elif clip.duration_s is None:
            log.error("film %s is unavailable (%s): showing the 'unavailable' card while it "
                      "should play", clip.path, why)
        else:
            log.error("film %s is unavailable (%s): showing the 'unavailable' card until its "
                      "%.1f s are over", clip.path, why, clip.duration_s)

    def _fail(self, clip: _Clip, why: str) -> None:
        clip.failed = why
        clip.close()
        clip.last = None
        self._report(clip, why)

    def apply(self, cue: PlayFilm | SetOverlay) -> None:
        """Take a cue from the director; it takes effect at ``cue.t``."""
        start_s = 0.0 if self._last_t is None else max(0.0, self._last_t - cue.t)
        if isinstance(cue, PlayFilm):
            path = Path(cue.path)
            dec, why = self._open(path, start_s=start_s, loop=cue.loop)
            clip = _Clip(dec, cue.t, cue.fade_s, path=path, base=True,
                         duration_s=None if cue.loop else cue.duration_s)
            self._base.append(clip)
            if why is not None:
                self._fail(clip, why)
        elif isinstance(cue, SetOverlay):
            blend = cue.blend if cue.blend in BLENDS else "add"
            if blend != cue.blend:
                log.error("unknown blend mode %r, using 'add'", cue.blend)
            dec, why, path = None, None, None
            if cue.path is not None:
                path = Path(cue.path)
                dec, why = self._open(path, start_s=start_s, loop=True)
            clip = _Clip(dec, cue.t, cue.fade_s, blend, path=path)
            self._overlay.append(clip)
            if why is not None:
                self._fail(clip, why)
        else:
            raise TypeError(f"not a cue: {cue!r}")

    # -- frames --------------------------------------------------------------------------

    def _frame(self, clip: _Clip, t: float) -> np.ndarray | None:
        if clip.decoder is None:
            return self._card_image() if clip.carded(t) else None
        dec = clip.decoder
        media_t = max(0.0, t - clip.t0)
        image, fresh = dec.frame_at(media_t, block=not self.realtime)
        if not fresh:
            self.stats["late"] += 1
        if dec.ended and self._broken(clip, dec, media_t):
            self._fail(clip, dec.error or "its frames end early")
            return self._card_image() if clip.carded(t) else None
        if image is None:
            image = clip.last
        clip.last = image
        return image

    @staticmethod
    def _broken(clip: _Clip, dec: VideoDecoder, media_t: float) -> bool:
        """A decoder that ended is broken if it failed, or if the film should still run
        (a truncated file ends without an error, with fewer frames than it claims)."""
        due = math.floor(media_t * dec.fps + 1e-6)
        if due <= dec.current_index + 1:
            return False  # still on its last frame (or the one after): nothing missing yet
        if dec.error is not None:
            return True
        length = clip.duration_s if clip.duration_s is not None else dec.duration
        return dec.loop or media_t < length - 1.5 / dec.fps

    def _card_image(self) -> np.ndarray:
        if self._card is None:
            self._card = unavailable_image(self.size)
        return self._card

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
        clock = time.perf_counter
        t0 = clock()

        # the frames first (this is where a late decoder is waited for), then composing
        base = self._settle(self._base, t)
        if not base:
            base_args = (None, None, 1.0)
        elif len(base) == 1:  # the first film: from black
            base_args = (self._frame(base[0], t), None, base[0].mix(t))
        else:
            old, new = base
            cur, prev = self._frame(new, t), self._frame(old, t)
            if cur is None and new.decoder is not None:  # realtime: not decoded yet
                base_args = (prev, None, 1.0)
            else:
                base_args = (cur, prev, new.mix(t))
        carded = bool(base) and base[-1].carded(t)
        if carded:
            self.stats["unavailable"] += 1
        over = [] if carded else self._settle(self._overlay, t)
        layers = []
        if len(over) == 2:
            old, new = over
            m = new.mix(t)
            layers = [(self._frame(old, t), 1.0 - m, old.blend),
                      (self._frame(new, t), m, new.blend)]
        elif over:
            clip = over[0]
            layers = [(self._frame(clip, t), clip.mix(t), clip.blend)]
        t1 = clock()

        comp.base(*base_args)
        for image, strength, blend in layers:
            comp.overlay(image, strength, blend)
        if self.on_top is not None:
            comp.top(self.on_top)
        t2 = clock()
        self.output.present()
        if self.timing is not None:
            t3 = clock()
            for key, ms in (("frames", t1 - t0), ("composite", t2 - t1), ("present", t3 - t2)):
                self.timing.setdefault(key, []).append(ms * 1000.0)
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
