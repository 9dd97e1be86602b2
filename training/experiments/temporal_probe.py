"""Experiment: does a learned head over the last K engine outputs read styles better than the
listener's hand-set smoothing? (not shipped)

    python -m training.experiments.temporal_probe engines/genre-1.3 [--context 32] [--epochs 15]
        [--seed 0]

The head sees the engine's outputs (96-d embedding and log-probabilities) for the last
``--context`` hops and names one of the four styles; ``none`` stays the engine's own, so the
listener's music gate is untouched. A head must never learn from windows the engine trained
on (they are too confident), so it learns from DEV medleys only: the dev works are split in
two folds by work, a head trained on one fold's medleys is scored on the other fold's, and the
bare engine is scored on the same medleys. Both are replayed through the box's Listener for
every smoothing ``tune_listener`` tries, and ``tune_listener.choose`` picks, as it would for a
bundle. It also prints, per reader, the runs of consecutive wrong windows, and for the
engine how often baroque and classical are taken for each other. Results and reasoning:
``docs/experiments/temporal-head.md``. Nothing touches val.

The first run renders and hears 96 medleys (~13 min on 2 cores); the engine's outputs are
cached in ``training/cache/temporal/``, and each run after that (two heads, the engine
scored alongside) takes 2-4 minutes.
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
from unittest import mock

import numpy as np

import training.dataset as dataset
import training.jazz as jazz
from appliance.listen.bundle import load_bundle
from appliance.listen.engine import OnnxEngine
from appliance.listen.listener import Smoothing
from training.dataset import CACHE
from training.evaluate import medley_plan, render_medley
from training.tune_listener import (
    _Recorder,
    _Replay,
    choose,
    hear,
    inside_windows,
    replay_grid,
    replaying,
    steadiest,
    window_accuracy,
)

OUT = CACHE / "temporal"
# Salt of the fold hash: of the first 200 tried, the one whose folds have the most even
# counts of dev works per style (chosen on counts alone, before any result existed).
FOLD_SALT = "fold100"
TRAIN_MEDLEYS = dict(n=40, segments=8, seg_s=(15.0, 60.0))  # more changes per minute
EVAL_MEDLEYS = dict(n=8)                                      # tune_listener's shape
LONG_RUN_S = 4.0


def fold_of(work: str) -> int:
    return int(hashlib.sha1(f"{FOLD_SALT}:{work}".encode()).hexdigest()[:8], 16) % 2


def fold_plans(fold: int, seed: int, n: int, **kw) -> list[dict]:
    """``medley_plan`` over the dev works of one fold only."""
    rows, items = dataset.manifest_rows, jazz.jazz_items

    def fold_rows() -> list[dict]:
        return [r for r in rows() if r["split"] != "dev" or fold_of(r["work"]) == fold]

    def fold_items(split: str) -> list[dict]:
        return [it for it in items(split)
                if fold_of("jazz:" + jazz.norm_title(it["title"])) == fold]

    with mock.patch.object(dataset, "manifest_rows", fold_rows), \
            mock.patch.object(jazz, "jazz_items", fold_items):
        plans = medley_plan(n, seed=seed, split="dev", **kw)
    assert all(fold_of(s["work"]) == fold for m in plans for s in m["segments"])
    return plans


def plans_for(fold: int, kind: str) -> list[dict]:
    if kind == "train":
        return fold_plans(fold, 1000 + fold, **TRAIN_MEDLEYS)
    return fold_plans(fold, 2000 + fold, **EVAL_MEDLEYS)


def record(b) -> dict:
    """Engine outputs (INT8, as the box runs it) per fold and kind: a list of
    (segments, lead-in s, samples, probs [n, labels], embedding [n, D]) per medley."""
    path = OUT / f"outputs-{b.label}.pkl"
    if path.exists():
        with open(path, "rb") as f:
            return pickle.load(f)
    out = {}
    for fold in (0, 1):
        for kind in ("train", "eval"):
            items = []
            for i, m in enumerate(plans_for(fold, kind)):
                x, segs = render_medley(m)
                rec = _Recorder(OnnxEngine(b, precision="int8", threads=1))
                hear(rec, Smoothing(), x)
                items.append((segs, m["lead_s"], len(x),
                              np.stack([o[0][0] for o in rec.outputs]),
                              np.stack([o[1][0] for o in rec.outputs])))
                print(f"fold {fold} {kind} medley {i + 1} heard", flush=True)
            out[(fold, kind)] = items
    OUT.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(out, f)
    return out


def contexts(probs: np.ndarray, emb: np.ndarray, k: int) -> np.ndarray:
    """(n, k, D + labels): the last k outputs at every hop, the first one repeated before
    the start (the lead-in is room noise, as after boot)."""
    f = np.concatenate([emb, np.log(probs + 1e-6)], 1).astype(np.float32)
    pad = np.concatenate([np.repeat(f[:1], k - 1, 0), f])
    return np.lib.stride_tricks.sliding_window_view(pad, (k, f.shape[1]))[:, 0]


def targets(segs: list[dict], n: int, labels: list[str], hop_s: float) -> np.ndarray:
    """The style playing at the end of each window (-1 outside the music)."""
    y = np.full(n, -1)
    t = (np.arange(n) + 1) * hop_s
    for s in segs:
        y[(t > s["t0"]) & (t <= s["t1"])] = labels.index(s["genre"])
    return y


def train_head(items: list, k: int, epochs: int, seed: int, labels: list[str], hop_s: float):
    import torch
    from torch import nn

    torch.manual_seed(seed)
    xs, ys = [], []
    for segs, _, _, probs, emb in items:
        c, y = contexts(probs, emb, k), targets(segs, len(probs), labels, hop_s)
        xs.append(c[y >= 0])
        ys.append(y[y >= 0])
    x, y = torch.tensor(np.concatenate(xs)), torch.tensor(np.concatenate(ys))
    net = nn.Sequential(nn.LayerNorm(x.shape[2]), nn.Dropout(0.2), nn.Linear(x.shape[2], 24),
                        nn.ReLU(), nn.Flatten(), nn.Dropout(0.2), nn.Linear(k * 24, 32),
                        nn.ReLU(), nn.Linear(32, 4))
    opt = torch.optim.AdamW(net.parameters(), 2e-3, weight_decay=1e-2)
    for _ in range(epochs):
        net.train()
        perm = torch.randperm(len(x))
        for i in range(0, len(x), 256):
            j = perm[i:i + 256]
            loss = nn.functional.cross_entropy(net(x[j]), y[j])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()

    def apply(probs: np.ndarray, emb: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            s = torch.softmax(net(torch.tensor(contexts(probs, emb, k))), 1).numpy()
        p_none = probs[:, 4:5]
        return np.concatenate([s * (1 - p_none), p_none], 1).astype(np.float32)
    return apply


def wrong_runs(heard: list, labels: list[str], hop_s: float, window_s: float) -> dict:
    """Maximal runs of consecutive wrong windows inside segments, per 10 min of scored
    windows: all of them, and those of 4 s or more (the ones a smoothing that changes within
    3 s cannot absorb), so cleaner stretches and fewer long runs can be told apart."""
    lengths, n = [], 0
    for _, segs, _, outputs in heard:
        for seg, called in inside_windows(outputs, segs, hop_s, window_s):
            n += len(called)
            run = 0
            for wrong in list(called != labels.index(seg["genre"])) + [False]:
                if wrong:
                    run += 1
                elif run:
                    lengths.append(run * hop_s)
                    run = 0
    per_10min = n * hop_s / 600
    return {"runs_per_10min": len(lengths) / per_10min,
            "long_runs_per_10min": sum(r >= LONG_RUN_S for r in lengths) / per_10min}


def baroque_classical(b, heard: list, labels: list[str], hop_s: float) -> str:
    """How often baroque and classical windows are called each other, and the share of the
    spurious changes under the bundle's own smoothing that swap the two."""
    calls = {g: [] for g in ("baroque", "classical")}
    swaps = changes = 0
    bc = {"baroque", "classical"}
    for x, segs, _, outputs in heard:
        for seg, called in inside_windows(outputs, segs, hop_s, b.window_s):
            if seg["genre"] in calls:
                calls[seg["genre"]] += list(called)
        with replaying():
            stream = hear(_Replay(b, outputs), Smoothing.from_manifest(b.manifest), x)
        for seg in segs:
            named = [g for t, g in stream if seg["t0"] < t <= seg["t1"]]
            k = named.index(seg["genre"]) if seg["genre"] in named else len(named)
            for a, c in zip(named[k:], named[k + 1:], strict=False):
                changes += a != c
                swaps += a != c and {a, c} == bc
    b_as_c = np.mean(np.array(calls["baroque"]) == labels.index("classical"))
    c_as_b = np.mean(np.array(calls["classical"]) == labels.index("baroque"))
    return (f"baroque windows called classical {b_as_c:.3f}, classical called baroque "
            f"{c_as_b:.3f}; with the bundle's smoothing {swaps} of {changes} spurious "
            "changes swap the two")


def score(b, heard: list, labels: list[str], hop_s: float) -> dict:
    acc = [window_accuracy(o, s, labels, hop_s, b.window_s) for _, s, _, o in heard]
    right, n, seg_right, n_segs = (sum(c) for c in zip(*acc, strict=True))
    rows = replay_grid(b, heard)
    _, best = choose(rows)
    return {"windows": right / n, "segments": f"{seg_right}/{n_segs}", **best,
            "steadiest": steadiest(rows),
            **wrong_runs(heard, labels, hop_s, b.window_s)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("engine")
    ap.add_argument("--context", type=int, default=32, help="hops the head sees")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    b = load_bundle(a.engine)
    labels, hop_s = list(b.labels), b.hop_s
    if labels != ["baroque", "classical", "ragtime", "jazz", "none"]:
        raise SystemExit("the probe expects the four styles then none")
    outputs = record(b)
    for test in (0, 1):
        head = train_head(outputs[(1 - test, "train")], a.context, a.epochs, a.seed, labels,
                          hop_s)
        bare, headed = [], []

        def as_outputs(probs: np.ndarray, emb: np.ndarray) -> list:
            return [(p[None], e[None]) for p, e in zip(probs, emb, strict=True)]

        for m, (segs, lead, n, probs, emb) in zip(plans_for(test, "eval"),
                                                   outputs[(test, "eval")], strict=True):
            x, _ = render_medley(m)
            assert len(x) == n, "the cached medley changed since the engine heard it"
            bare.append((x, segs, lead, as_outputs(probs, emb)))
            headed.append((x, segs, lead, as_outputs(head(probs, emb), emb)))
        for name, heard in (("engine", bare), (f"head K={a.context}", headed)):
            r = score(b, heard, labels, hop_s)
            rule = (f"evidence {r['switch_evidence']}/{r['evidence_cap']}"
                    if r["switch_evidence"] else f"margin {r['switch_margin']}")
            print(f"test fold {test} {name:>10}: windows {r['windows']:.3f}, segments "
                  f"{r['segments']}, median {r['median_s']:.2f} s, p95 {r['p95_s']:.1f} s, "
                  f"first {r['first_max_s']:.1f} s, spurious {r['spurious_per_10min']:.1f}"
                  f"/10 min (tau {r['tau_s']}, {rule}); fewest spurious with median <= "
                  + ", ".join(f"{c:g} s: {v:.1f}" for c, v in r["steadiest"].items())
                  + f"; wrong runs {r['runs_per_10min']:.1f}/10 min, of 4 s or more "
                  f"{r['long_runs_per_10min']:.1f}", flush=True)
        print(f"test fold {test} engine: {baroque_classical(b, bare, labels, hop_s)}")


if __name__ == "__main__":
    main()
