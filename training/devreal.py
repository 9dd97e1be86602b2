"""Dev-real: the set engines and smoothing are chosen on, as unlike training as this machine
allows.

* **Works** the engine never trained on: the ``dev`` split of both corpora
  (``training.corpus``), at most ``PER_WORK`` excerpts of a work.
* **Playing**, not scores, where the corpus has it: every dev work that has a human
  performance is heard from it; jazz is only the jazz pianist's own playing (no generated
  jazz). Scores that have no performance are humanised as in training.
* **Pianos** training never used (``training.venue.UNSEEN_TIMBRES``: freepats through
  timidity, a modal piano synthesised in numpy), in **venues** beyond training's rooms and
  mics (``training.venue.venue``: long halls, distant/telephone/boomy mics, compression,
  lossy codecs).
* **No music** of kinds training never saw (``training.venue.VENUE_NONE_KINDS``: crowd,
  HVAC, traffic, coughs, a phone, glasses).

Val stays what it was: works of the val split rendered like training, only ever reported.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict

import numpy as np

from training import corpus
from training.dataset import CACHE, _seed, cache_write, perform_excerpt, sample_works
from training.venue import UNSEEN_TIMBRES, VENUE_NONE_KINDS, make_venue_none, render_unseen, venue

MINUTES_PER_CLASS = 15.0
CLIP_S = 30.0
PER_WORK = 2
NONE_CLIP_S = 20.0
SEED = 4711
CACHE_VERSION = 1


def _pool(genre: str) -> dict[str, list[corpus.Piece]]:
    """Dev pieces of a style by work; a work with a human performance is heard only from it,
    and jazz only from the jazz pianist."""
    works: dict[str, list[corpus.Piece]] = defaultdict(list)
    for p in corpus.pieces():
        if p.split == "dev" and p.genre == genre and not (genre == "jazz" and p.kind == "score"):
            works[p.work].append(p)
    for w, ps in works.items():
        played = [p for p in ps if p.kind == "performance"]
        if played:
            works[w] = played
    return works


def clips(*, minutes_per_class: float = MINUTES_PER_CLASS, clip_s: float = CLIP_S,
          seed: int = SEED, quick: bool = False) -> list[dict]:
    """The dev-real clips (music by style, then no music), each with its unseen piano or
    no-music kind and its own seed. ``quick``: two clips per class."""
    names = [t.name for t in UNSEEN_TIMBRES]
    out: list[dict] = []
    for gi, genre in enumerate(("baroque", "classical", "ragtime", "jazz")):
        rng = np.random.default_rng(_seed(seed, "dev-real", genre))
        pool = _pool(genre)
        played = {w: ps for w, ps in pool.items() if ps[0].kind == "performance"}
        picks = sample_works(played, minutes_per_class * 60.0, clip_s, rng,
                             per_work=PER_WORK, second_weight=0.5)  # human playing first
        rest = {w: ps for w, ps in pool.items() if w not in played}
        picks += sample_works(rest, minutes_per_class * 60.0 - sum(x[2] for x in picks), clip_s,
                              rng, per_work=PER_WORK, second_weight=0.5)
        if quick:
            picks = picks[:2]
        for k, (p, start, length) in enumerate(picks):
            out.append({"set": "dev-real", "genre": genre, "split": "dev",
                        "source": "pianist" if genre == "jazz" else p.kind, "piece": p.rel,
                        "work": p.work, "license": p.license, "tier": p.tier, "start": start,
                        "length": length, "timbre": names[(k + gi) % len(names)],
                        "seed": _seed(seed, "dev-real", p.rel, k)})
    n_none = 2 if quick else int(round(minutes_per_class * 60.0 / NONE_CLIP_S))
    for k in range(n_none):
        kind = VENUE_NONE_KINDS[k % len(VENUE_NONE_KINDS)]
        s = _seed(seed, "dev-real-none", kind, k)
        out.append({"set": "dev-real", "genre": "none", "split": "dev", "source": "none",
                    "piece": f"venue-none:{kind}:{s}", "work": f"venue-none:{kind}:{s}",
                    "kind": kind, "license": "generated", "length": NONE_CLIP_S, "seed": s})
    return out


def _key(clip: dict) -> str:
    return hashlib.sha1(json.dumps([CACHE_VERSION, clip], sort_keys=True).encode()
                        ).hexdigest()[:16]


def render(clip: dict) -> np.ndarray:
    """One dev-real clip at 16 kHz: the excerpt on its unseen piano, then its own venue (or
    the no-music kind, which ``make_venue_none`` already puts through a venue). Cached."""
    path = CACHE / "devreal" / f"{_key(clip)}.npy"
    if path.exists():
        return np.load(path).astype(np.float32)
    if clip["genre"] == "none":
        x = make_venue_none(clip["kind"], clip["length"], clip["seed"])
    else:
        dry = render_unseen(perform_excerpt(clip), clip["timbre"], clip["seed"] + 7)
        x = venue(dry, np.random.default_rng(clip["seed"] + 11))
    x16 = x.astype(np.float16)
    cache_write(path, lambda f: np.save(f, x16))
    return x16.astype(np.float32)


def prerender(cs: list[dict], workers: int) -> None:
    """Fill the cache in ``workers`` processes (every clip has its own seed)."""
    todo = [c for c in cs if not (CACHE / "devreal" / f"{_key(c)}.npy").exists()]
    if workers <= 1 or len(todo) < 2:
        return
    import multiprocessing as mp

    with mp.get_context("fork").Pool(workers) as pool:
        for _ in pool.imap_unordered(render, todo, chunksize=2):
            pass


__all__ = ["clips", "render", "prerender", "MINUTES_PER_CLASS", "CLIP_S", "PER_WORK"]


def main(argv: list[str] | None = None) -> None:
    """``python -m training.devreal ENGINE [ENGINE ...]``: the engines side by side on the
    dev-real clips (INT8, windows as the listener cuts them, no smoothing)."""
    import argparse
    import os

    from appliance.listen.bundle import load_bundle
    from training.evaluate import eval_val

    ap = argparse.ArgumentParser(prog="python -m training.devreal", description=main.__doc__)
    ap.add_argument("engines", nargs="+")
    ap.add_argument("--quick", action="store_true", help="two clips per class")
    ap.add_argument("--json", action="store_true", help="one JSON line per engine")
    a = ap.parse_args(argv)
    cs = clips(quick=a.quick)
    prerender(cs, workers=min(2, os.cpu_count() or 1))
    for path in a.engines:
        b = load_bundle(path)
        r = eval_val(b, cs, lambda _m: None, render=render, name="dev-real")
        row = {"engine": b.label, "windows_4style": round(r["window_accuracy_4style"], 4),
               "clips_4style": round(r["clip_accuracy_4style"], 4),
               "none_rejected": round(r["none_rejected"], 4),
               "music_called_none": round(r["music_called_none"], 4),
               "recall": {k: round(v["recall"], 3) for k, v in r["per_class"].items()},
               "by_style_source": {k: round(v["accuracy"], 3)
                                   for k, v in r["by"]["style / source"].items()}}
        print(json.dumps(row) if a.json else
              f"{b.label}: windows {row['windows_4style']:.3f}  clips {row['clips_4style']:.3f}  "
              f"none rejected {row['none_rejected']:.3f}  music->none "
              f"{row['music_called_none']:.3f}  recall {row['recall']}", flush=True)


if __name__ == "__main__":
    main()
