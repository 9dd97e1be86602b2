"""Give an engine bundle its anchors: ordinary playing that a venue calibration must not
unlearn (see ``appliance.listen.calibration``).

    python -m training.anchors engines/genre-X [--per-class 300] [--recipe-from BUNDLE]

Windows of TRAIN works rendered as training renders them (never val or dev works: val must
stay an honest measure of what calibration costs ordinary playing, and dev-real is made from
dev) are taken from the build's window cache, ``--per-class`` of each label spread over as
many works as there are, and run through the bundle's FP32 model; the engine's probabilities,
its embeddings and the true labels go into ``anchors.npz`` and the manifest is rewritten to
list it. The bundle must be signed again afterwards (``appliance engine sign``).
"""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

import numpy as np

from appliance.listen.bundle import load_bundle, write_manifest
from appliance.listen.calibration import ANCHORS


def pick(meta: list[dict], y: np.ndarray, per_class: int, seed: int = 0) -> np.ndarray:
    """``per_class`` window indices per label, round-robin over works so that each work gives
    as few windows as the count allows."""
    rng = np.random.default_rng(seed)
    out: list[int] = []
    for c in np.unique(y):
        by_work: dict[str, list[int]] = {}
        for i in np.flatnonzero(y == c):
            by_work.setdefault(str(meta[i].get("work", i)), []).append(int(i))
        queues = [rng.permutation(v).tolist() for _k, v in sorted(by_work.items())]
        rng.shuffle(queues)
        got: list[int] = []
        while len(got) < per_class and any(queues):
            for q in queues:
                if q and len(got) < per_class:
                    got.append(q.pop())
        out += got
    return np.array(sorted(out), dtype=np.int64)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m training.anchors", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bundle", type=Path)
    ap.add_argument("--per-class", type=int, default=300)
    ap.add_argument("--recipe-from", type=Path, default=None,
                    help="take the training windows of this bundle's build (default: the "
                         "bundle's own)")
    a = ap.parse_args(argv)
    from training.build import parse_args as build_args
    from training.dataset import build_windows, works_of
    from training.export import run_batches, session

    b = load_bundle(a.bundle)
    recipe = load_bundle(a.recipe_from) if a.recipe_from else b
    cmd = recipe.manifest.get("built_by", "")
    if not cmd.startswith("python -m training.build"):
        raise SystemExit(f"{recipe.path}: its manifest does not say how it was built")
    r = build_args(shlex.split(cmd)[3:])
    sampling = {k: v for k, v in (("per_work", r.per_work), ("second_weight", r.second_weight),
                                  ("pianist_share", r.pianist_share)) if v is not None}
    x, y, meta = build_windows("train", quick=r.quick, seed=r.seed,
                               minutes_per_class=r.minutes_per_class, clip_s=r.clip_s,
                               window_s=r.window_s, verbose=False, workers=1,
                               sampling=sampling)
    idx = pick(meta, y, a.per_class)
    leak = {meta[i]["work"] for i in idx} & (works_of("val") | works_of("dev"))
    if leak:
        raise SystemExit(f"val/dev works among the anchors: {sorted(leak)[:5]}")
    probs, emb = run_batches(session(b.model_path("fp32")), x[idx])
    np.savez(a.bundle / ANCHORS, probs=probs.astype(np.float32), emb=emb.astype(np.float32),
             y=y[idx].astype(np.int16))
    man = {k: v for k, v in b.manifest.items() if k not in ("format", "files")}
    man["anchors"] = {"windows": int(len(idx)), "per_class": a.per_class,
                      "works": len({meta[i]["work"] for i in idx}),
                      "from": f"train windows of {recipe.label}'s build (FP32 outputs)"}
    write_manifest(a.bundle, man)
    acc = float((probs.argmax(1) == y[idx]).mean())
    print(json.dumps({"bundle": str(a.bundle), **man["anchors"], "engine_accuracy": acc}))
    print(f"now sign it again: appliance engine sign {a.bundle} --key KEY")


if __name__ == "__main__":
    main()
