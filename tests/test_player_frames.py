"""The player, proven frame by frame on what `simulate` recorded of the demo show.

The preview MP4 (the jazz performance, recorded small: tests/conftest.py) is compared with
a reference built here, independently of the player: the source films decoded by PyAV,
each frame taken at the index the show clock asks for, and layered as the show file says
(base crossfade into the ending, overlays added over it at their fade's strength). A frame
that is black, late, early or repeated matches the reference for another moment better than
its own, so these tests see it; where the source films themselves barely change from one
frame to the next, nobody can tell, and neither do the tests.
"""

from __future__ import annotations

import math
from pathlib import Path

import av
import numpy as np
import pytest

from appliance.config import demo_show_dir
from appliance.show.showfile import Show, load_show
from tests.conftest import DEMO_PREVIEW_SIZE

DEMO = demo_show_dir()
W, H = DEMO_PREVIEW_SIZE
# two references at least this far apart (mean absolute difference, 0-255) can be told
# apart through the preview's H.264: codec noise here is ~1-2 on this scale
DISTINCT = 2.5


def decode(path: Path, fps: float, first_s: float = 0.0, last_s: float = math.inf
           ) -> dict[int, np.ndarray]:
    """Frames of ``path`` from ``first_s`` to ``last_s`` by index (pts x fps), at W x H."""
    frames: dict[int, np.ndarray] = {}
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        t0 = float(s.start_time * s.time_base) if s.start_time is not None else 0.0
        if first_s > 2:
            c.seek(int((first_s - 2 + t0) / s.time_base), stream=s)
        for f in c.decode(s):
            i = round((float(f.pts * s.time_base) - t0) * fps)
            if i > last_s * fps:
                break
            if i >= first_s * fps - 1e-6:
                frames[i] = f.reformat(width=W, height=H, format="rgb24").to_ndarray().astype(
                    np.float32)
    return frames


def _index(t: float, fps: float) -> int:
    return math.floor(t * fps + 1e-6)


class Reference:
    """What the screen should show at each show frame, from the events and the sources."""

    def __init__(self, show: Show, events: list[dict], first_s: float, last_s: float) -> None:
        self.show, self.fps = show, show.fps
        self.main_t = next(e["t"] for e in events if e.get("state") == "main")
        self.ending_t = next(e["t"] for e in events if e.get("state") == "ending")
        genre = next(e["genre"] for e in events if e["event"] == "ending")
        self.ending_fade = show.ending_fade_s
        # overlay cues; the one that goes with the ending fades as fast as the ending
        self.overlays = [(e["t"], e["genre"], self.ending_fade if e["t"] == self.ending_t
                          else show.overlay_fade_s) for e in events if e["event"] == "overlay"]
        self.n_main = round(show.main.duration_s * self.fps)
        self.main = decode(show.main.path, self.fps, first_s - self.main_t - 0.2,
                           last_s - self.main_t + 0.2)
        self.ending = decode(show.endings[genre].path, self.fps, 0.0,
                             max(0.0, last_s - self.ending_t) + 0.2)
        self.loops = {g: decode(show.overlays[g].path, self.fps)
                      for _, g, _ in self.overlays if g is not None}

    def base(self, t: float, ending_mix: float | None = None) -> np.ndarray:
        """The films alone at ``t``; ``ending_mix`` overrides how far the ending is in."""
        img = self.main[min(_index(t - self.main_t, self.fps), self.n_main - 1)]
        if ending_mix is not None:  # before the cue: as if its first frame were mixed in
            ending = self.ending[max(0, _index(t - self.ending_t, self.fps))]
            img = (1 - ending_mix) * img + ending_mix * ending
        elif t >= self.ending_t:
            a = min(1.0, (t - self.ending_t) / self.ending_fade)
            img = (1 - a) * img + a * self.ending[_index(t - self.ending_t, self.fps)]
        return img

    def layers(self, t: float) -> list[tuple[float, str | None, float]]:
        """(cue time, genre, strength) of the overlays on screen at ``t``: the newest cue
        and the one it fades from."""
        started = [o for o in self.overlays if o[0] <= t]
        if not started:
            return []
        t0, genre, fade = started[-1]
        m = 1.0 if fade <= 0 else min(1.0, (t - t0) / fade)
        on = [(t0, genre, m)]
        if m < 1.0 and len(started) > 1:
            on.insert(0, (started[-2][0], started[-2][1], 1.0 - m))
        return on

    def overlay(self, t0: float, genre: str, t: float) -> np.ndarray:
        loop = self.loops[genre]
        return loop[_index(t - t0, self.fps) % len(loop)]

    def frame(self, n: int, *, ending_mix: float | None = None,
              overlay_strength: float | None = None) -> np.ndarray:
        """Show frame ``n``; the keywords replace the fade's own mix (to measure it)."""
        t = n / self.fps
        img = self.base(t, ending_mix)
        for t0, genre, s in self.layers(t):
            if genre is not None:
                s = s if overlay_strength is None else overlay_strength
                img = np.minimum(255.0, img + s * self.overlay(t0, genre, t))
        return img


def diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).mean())


def mix_of(out: np.ndarray, at0: np.ndarray, at1: np.ndarray) -> float:
    """How far ``out`` lies from ``at0`` towards ``at1`` (least squares, 0..1), leaving out
    pixels an additive overlay saturates (their response to the mix is not a line)."""
    keep = at1 < 250
    d = (at1 - at0)[keep]
    return float(np.dot((out - at0)[keep], d) / max(1e-9, np.dot(d, d)))


def fitted_ramp(ts: list[float], mixes: list[float], full_from: float) -> tuple[float, float]:
    """(start, end) in show time of the straight line through the fade's inner points.

    The mixes are first scaled so that their plateau (from ``full_from`` on) is 1: the
    preview's H.264 softens bright detail, which reads as a few percent less than full."""
    plateau = float(np.median([m for t, m in zip(ts, mixes, strict=True) if t >= full_from]))
    assert 0.85 < plateau < 1.15, plateau
    mixes = [m / plateau for m in mixes]
    inner = [(t, m) for t, m in zip(ts, mixes, strict=True) if 0.1 <= m <= 0.9]
    assert len(inner) >= 4, inner
    slope, icpt = np.polyfit([t for t, _ in inner], [m for _, m in inner], 1)
    return -icpt / slope, (1 - icpt) / slope


@pytest.fixture(scope="module")
def demo(demo_jazz_preview):
    stats, events, preview = demo_jazz_preview
    show, _ = load_show(DEMO)
    assert show.fps == 30 and stats["dropped"] == 0 and stats["ending"] == "jazz"
    return show, events, preview


def test_every_frame_around_the_ending_is_the_right_one(demo):
    """±1 s around the `ending` event: no black frame, no repeated frame beyond what the
    sources contain, every frame the one its show time asks for."""
    show, events, preview = demo
    fps = show.fps
    cue = next(e["t"] for e in events if e["event"] == "ending")
    lo, hi = _index(cue - 1.0, fps), _index(cue + 1.0, fps)
    ref = Reference(show, events, (lo - 3) / fps, (hi + 3) / fps)
    out = decode(preview, fps, (lo - 1) / fps, hi / fps)
    assert set(range(lo - 1, hi + 1)) <= set(out), "the preview lacks frames around the ending"
    checked = 0
    for n in range(lo, hi + 1):
        want = ref.frame(n)
        # not black (nor dimmed) where the films are not
        assert out[n].mean() > 0.8 * want.mean() - 2, (n, out[n].mean(), want.mean())
        # repeated only where the sources repeat
        if diff(out[n], out[n - 1]) < 0.5:
            assert diff(ref.frame(n - 1), want) < 1.0, f"frame {n} repeats frame {n - 1}"
        # the frame for this moment, not the one before or after
        mine = diff(out[n], want)
        for k in (-2, -1, 1, 2):
            other = ref.frame(n + k)
            if diff(other, want) >= DISTINCT:
                checked += 1
                assert mine < diff(out[n], other), (
                    f"frame {n} ({n / fps:.3f} s) looks like frame {n + k}: "
                    f"{mine:.2f} from its own, {diff(out[n], other):.2f} from that one")
    assert checked > (hi - lo)  # most frames were distinguishable from their neighbours


def test_the_ending_starts_on_its_cue_and_fades_for_fade_s(demo):
    show, events, preview = demo
    fps = show.fps
    cue = next(e["t"] for e in events if e.get("state") == "ending")
    lo, hi = _index(cue - 0.3, fps), _index(cue + show.ending_fade_s + 0.3, fps)
    ref = Reference(show, events, lo / fps, hi / fps)
    out = decode(preview, fps, lo / fps, hi / fps)
    ns = list(range(lo, hi + 1))
    mixes = [mix_of(out[n], ref.frame(n, ending_mix=0.0), ref.frame(n, ending_mix=1.0))
             for n in ns]
    first = next(n for n, m in zip(ns, mixes, strict=True) if m > 0.5 / (show.ending_fade_s * fps))
    assert abs(first - cue * fps) <= 1, (first, cue * fps)  # the first ending frame
    start, end = fitted_ramp([n / fps for n in ns], mixes, cue + show.ending_fade_s + 1 / fps)
    assert abs(start - cue) <= 1 / fps, start
    assert abs((end - start) - show.ending_fade_s) <= 1 / fps, (start, end)


def test_an_overlay_lands_on_its_cue_and_fades_for_fade_s(demo):
    show, events, preview = demo
    fps = show.fps
    cue, genre = next((e["t"], e["genre"]) for e in events if e["event"] == "overlay")
    assert genre is not None
    lo, hi = _index(cue - 0.3, fps), _index(cue + show.overlay_fade_s + 0.3, fps)
    ref = Reference(show, events, lo / fps, hi / fps)
    out = decode(preview, fps, lo / fps, hi / fps)
    ns = list(range(lo, hi + 1))
    def strength(n: int) -> float:
        without = ref.frame(n, overlay_strength=0.0)
        if n / fps < cue:  # not due yet: would its first frame be seen?
            first_frame = ref.overlay(cue, genre, cue)
            return mix_of(out[n], without, np.minimum(255.0, without + first_frame))
        return mix_of(out[n], without, ref.frame(n, overlay_strength=1.0))

    strengths = [strength(n) for n in ns]
    first = next(n for n, s in zip(ns, strengths, strict=True)
                 if s > 0.5 / (show.overlay_fade_s * fps))
    assert 0 <= first / fps - cue <= 1 / fps + 1e-9, (first, cue)  # within one frame period
    start, end = fitted_ramp([n / fps for n in ns], strengths,
                             cue + show.overlay_fade_s + 1 / fps)
    assert abs(start - cue) <= 1 / fps, start
    assert abs((end - start) - show.overlay_fade_s) <= 1 / fps, (start, end)
