"""The listener's first seconds: what the engine hears before a whole window has been heard.

    python -m training.experiments.warm_up engines/genre-1.3.1 engines/genre-2.6

Compares three answers (docs/experiments/genre-2.md, "the listener's first seconds"):
``silence`` fills the unheard part of the window with digital silence and starts the moving
average from the first estimate; ``wait`` keeps the music gate shut until a whole window has
been heard; ``tile`` fills the unheard part with what has been heard so far, repeated, judges
the level on the heard part only, and starts the average from "no music". Each is measured
on dev-real: films the demo show starts on the no-music streams (``false_starts``), no-music
clips that open the gate in their first 5 s from a fresh listener, and on music clips from a
fresh listener, how soon a style is named and whether the first one named is right.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from unittest import mock

import numpy as np

import appliance.listen.listener as listener_module
from appliance.listen import load_bundle
from appliance.listen.engine import OnnxEngine
from appliance.listen.estimate import NONE
from training import devreal
from training.experiments import false_starts as probe

GATE_S = 5.0  # a no-music clip "opens the gate at start" if music is called this early


class Silence(listener_module.Listener):
    """The unheard part of the window is digital silence; the average starts at the first
    estimate (the listener before 2026-12-04)."""

    def _window(self) -> np.ndarray:
        return self._mel

    def _window_level_db(self) -> float:
        return 10 * math.log10(float(self._energy.mean()) + 1e-12)

    def _first_average(self, p: np.ndarray) -> np.ndarray:
        return p


class Wait(Silence):
    """As ``Silence``, but no music until a whole window has been heard."""

    def _may_start_music(self) -> bool:
        return self._frames_seen >= self._n_frames


class Tile(listener_module.Listener):
    """The box's listener since 2026-12-04: the heard part repeated to fill the window, its
    level alone, and the average starting from "no music"."""


VARIANTS = {"silence": Silence, "wait": Wait, "tile": Tile}


def from_boot(listener_class, bundle, clip_audio: np.ndarray) -> list:
    """One clip heard by a fresh listener, as at boot."""
    listener = listener_class(OnnxEngine(bundle))
    out = []
    for i in range(0, len(clip_audio), bundle.hop_samples * 8):
        out += listener.feed(clip_audio[i:i + bundle.hop_samples * 8])
    return out


def measure(bundle_dir: Path, variant: str, streams: dict, music: list, none: list) -> dict:
    cls = VARIANTS[variant]
    bundle = load_bundle(bundle_dir)
    with mock.patch.object(probe, "Listener", cls):
        starts = probe.false_starts(bundle_dir, streams)
    opened = sum(any(e.music_present and e.t <= GATE_S for e in from_boot(cls, bundle, a))
                 for a in none)
    firsts, right = [], 0
    for genre, a in music:
        named = next((e for e in from_boot(cls, bundle, a) if e.genre != NONE), None)
        firsts.append(named.t if named else float("inf"))
        right += bool(named and named.genre == genre)
    return {"engine": bundle_dir.name, "variant": variant,
            "false_starts": sum(r["false_starts"] for r in starts.values()),
            "none_clips_open_at_start": f"{opened}/{len(none)}",
            "first_style_median_s": float(np.median(firsts)),
            "first_style_max_s": float(np.max(firsts)),
            "first_style_right": round(right / len(music), 3)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m training.experiments.warm_up",
                                 description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("engines", nargs="+", type=Path)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    a = ap.parse_args(argv)
    by_kind: dict[str, list[np.ndarray]] = {}
    music, none = [], []
    for clip in devreal.clips():
        audio = devreal.render(clip)
        if clip["genre"] == "none":
            by_kind.setdefault(clip["kind"], []).append(audio)
            none.append(audio)
        else:
            music.append((clip["genre"], audio))
    streams = {k: np.concatenate(v) for k, v in sorted(by_kind.items())}
    for eng in a.engines:
        for v in a.variants:
            print(json.dumps(measure(eng, v, streams, music, none)), flush=True)


if __name__ == "__main__":
    main()
