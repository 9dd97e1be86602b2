"""Would the show start by itself? Dev-real's no-music through the box's own Listener.

    python -m training.experiments.false_starts engines/genre-1.3.1 engines/genre-2.6

Window accuracy on no-music says how often the engine alone names a style; what a gallery
sees is the listener's music gate (smoothing, hysteresis, the level floor) and the show's
own rule for leaving the attract loop. Each no-music kind of dev-real (crowd, HVAC, traffic,
coughs, phone, glasses: kinds training never saw) is played as one stream, its clips back to
back, through each bundle's Listener (its own smoothing) into the box's Director running the
demo show; the report gives the share of time the gate says "music" and how many times the
Director left the attract loop for the film. A film that starts runs its length, so noise
during it starts nothing more, as on the box.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from appliance.config import demo_show_dir
from appliance.listen import Listener, load_bundle
from appliance.listen.engine import OnnxEngine
from appliance.show.director import MAIN, Director
from appliance.show.showfile import load_show_or_raise
from training import devreal


def false_starts(bundle_dir: Path, streams: dict[str, np.ndarray]) -> dict:
    """Per no-music kind: seconds heard, share of estimates with music present, and how many
    times the demo show's Director started its film."""
    bundle = load_bundle(bundle_dir)
    show, _ = load_show_or_raise(demo_show_dir())
    out: dict[str, dict] = {}
    for kind, audio in streams.items():
        listener, director = Listener(OnnxEngine(bundle)), Director(show)
        flags, starts = [], 0
        hop = bundle.hop_samples * 8
        for i in range(0, len(audio), hop):
            for e in listener.feed(audio[i:i + hop]):
                flags.append(e.music_present)
                director.hear(e)
                director.advance(e.t)
                starts += sum(ev.get("event") == "state" and ev.get("state") == MAIN
                              for ev in director.drain_events())
        out[kind] = {"seconds": round(len(audio) / listener.fe.sample_rate, 1),
                     "music_share": round(float(np.mean(flags)) if flags else 0.0, 3),
                     "false_starts": starts}
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m training.experiments.false_starts",
                                 description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("engines", nargs="+", type=Path)
    a = ap.parse_args(argv)
    by_kind: dict[str, list[np.ndarray]] = {}
    for clip in devreal.clips():
        if clip["genre"] == "none":
            by_kind.setdefault(clip["kind"], []).append(devreal.render(clip))
    streams = {k: np.concatenate(v) for k, v in sorted(by_kind.items())}
    for eng in a.engines:
        res = false_starts(eng, streams)
        total = sum(r["false_starts"] for r in res.values())
        hours = sum(r["seconds"] for r in res.values()) / 3600
        print(json.dumps({"engine": eng.name, "false_starts": total,
                          "per_hour": round(total / hours, 1), "kinds": res}))


if __name__ == "__main__":
    main()
