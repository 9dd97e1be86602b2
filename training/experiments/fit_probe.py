"""How well engines fit their own training windows, to tell "too small" from "memorises".

    python -m training.experiments.fit_probe engines/genre-1.3 [engines/genre-1.8 ...]
        [--windows 6000] [--minutes-per-class 200] [--clip-s 15] [--precision fp32]

A fixed sample (``--seed``, default 0) of the training windows of a plan (by default the
shipped recipe's 200 min/class of 15 s excerpts, read from the window cache or rendered),
clean: no augmentation, no splicing; for an engine built with ``--works-fraction``, only
the windows of its own works. Each bundle's model scores them in ONNX Runtime, through
the box's own loader and engine. Read the figure next to the same engine's dev accuracy
(``training.tune_listener``): both low and close together means the network is too small
for the task or the windows are as ambiguous as that; a high fit over a low dev figure means
it learns the training works rather than the styles.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from appliance.listen.bundle import load_bundle
from appliance.listen.engine import OnnxEngine
from training.dataset import LABELS, build_windows, works_subset
from training.evaluate import run_engine
from training.metrics import confusion, per_class_table


def fit(engine: OnnxEngine, x: np.ndarray, y: np.ndarray, batch: int = 256) -> dict:
    """Accuracy over all labels and recall per label of ``engine`` on windows ``x``."""
    pred = run_engine(engine, x, batch).argmax(1)
    table = per_class_table(confusion(y, pred, len(LABELS)), LABELS)
    recall = {lab: round(row["recall"], 3) for lab, row in table.items() if row["support"]}
    return {"accuracy": round(float((pred == y).mean()), 4), "recall": recall, "windows": len(y)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m training.experiments.fit_probe",
                                 description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bundles", nargs="+", type=Path)
    ap.add_argument("--windows", type=int, default=6000)
    ap.add_argument("--minutes-per-class", type=float, default=200.0)
    ap.add_argument("--clip-s", type=float, default=15.0)
    ap.add_argument("--precision", choices=("fp32", "int8"), default="fp32")
    ap.add_argument("--seed", type=int, default=0, help="sample seed (the plan's seed is 0)")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)

    xt, yt, mt = build_windows("train", quick=False, seed=0,
                               minutes_per_class=a.minutes_per_class, clip_s=a.clip_s)
    idx = np.sort(np.random.default_rng(a.seed).choice(len(yt), min(a.windows, len(yt)),
                                                       replace=False))
    x, y, meta = np.ascontiguousarray(xt[idx]), yt[idx], [mt[i] for i in idx]
    del xt, mt
    print(f"{len(y)} training windows, per label {np.bincount(y, minlength=len(LABELS))}")
    for path in a.bundles:
        bundle = load_bundle(path)
        engine = OnnxEngine(bundle, precision=a.precision, threads=a.threads)
        # an engine trained on a share of the works (--works-fraction) is scored on those only
        share = bundle.manifest.get("training_data", {}).get("works_fraction", 1.0)
        mine = works_subset(meta, share) if share < 1.0 else np.ones(len(y), dtype=bool)
        r = fit(engine, x[mine], y[mine])
        recall = ", ".join(f"{k} {v:.3f}" for k, v in r["recall"].items())
        print(f"{path}: fit {r['accuracy']:.3f} on {r['windows']} windows ({engine.precision}); "
              f"recall {recall}")


if __name__ == "__main__":
    main()
