"""The one build command: render -> windows -> train -> export an engine bundle.

    python -m training.build [--quick] [--out engines/NAME-VERSION] [--name N --version V]
                             [--minutes-per-class M] [--epochs E] [--time-budget S] [--seed S]

``--quick`` runs end to end on a few short clips in a few minutes (CI). The corpus is read from
``../shared/data`` beside the checkout (``TRAINING_DATA`` points elsewhere). Rendered audio and
windows are cached under ``training/cache/``, so a second build with the same settings skips
straight to training.

The shipped engine, genre-2.6, is several of these commands in a row (two continuations, a
weight soup and a head refit): ``training/recipes/genre-2.6.sh``. genre-1.3 (shipped until
2026-12-04; under 2 hours on 2 cores, cold) was built with

    python -m training.build --name genre --version 1.3 --out engines/genre-1.3 \
        --minutes-per-class 200 --clip-s 15 --val-minutes-per-class 8 --val-clip-s 30 \
        --widths 32,64,128,192 --splice 0.25 --epochs 80 --time-budget 2700 \
        --anneal-to-budget --keep last --workers 2
    python -m training.tune_listener engines/genre-1.3 --write   # smoothing, on dev medleys

Many short excerpts (15 s) from as many distinct pieces as the train split has (dev works
held out), a learning-rate schedule that anneals over the time budget, and the last weights
(val only reports). Val is the same 8 min/class of 30 s excerpts as genre-1.0's, so the
numbers compare. genre-1.1 (kept) is the same without ``--splice`` and with a 4500 s budget
(docs/experiments/genre-1.4.md says why genre-1.3 replaced it). genre-1.5 (not kept) was
genre-1.3's recipe at 400 min/class (docs/experiments/genre-1.5.md); genre-1.6, 1.7 and 1.8
(not kept) were genre-1.3's recipe plus ``--mixup 0.5``, ``--register`` and
``--widths 32,64,192,384`` (docs/experiments/); ``--works-fraction`` trains on a share of the
works for learning curves (docs/experiments/works-curve.md).
genre-1.0 (kept for comparison) was genre-1.1's recipe at 100 min/class and a 2040 s budget,
before the dev split existed.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

from appliance.listen.frontend import FrontEnd
from training.dataset import (
    HOP_S,
    LABELS,
    PER_WORK,
    PIANIST_SHARE,
    SECOND_WEIGHT,
    TRAIN_HOP_S,
    VAL_HOP_S,
    WINDOW_S,
    build_windows,
    licenses,
    summarise,
    works_of,
    works_subset,
)
from training.render import TIMBRES


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m training.build", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a few short clips, 2 epochs (CI)")
    ap.add_argument("--name", default=None)
    ap.add_argument("--version", default=None)
    ap.add_argument("--out", type=Path, default=None, help="bundle folder (engines/NAME-VERSION)")
    ap.add_argument("--minutes-per-class", type=float, default=None,
                    help="training audio per class (val gets a third); default 8, quick 0.4")
    ap.add_argument("--clip-s", type=float, default=None, help="seconds per rendered excerpt")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--time-budget", type=float, default=None, help="training seconds at most")
    ap.add_argument("--val-minutes-per-class", type=float, default=None,
                    help="val audio per class (default: a third of --minutes-per-class)")
    ap.add_argument("--val-clip-s", type=float, default=None,
                    help="seconds per val excerpt (default: --clip-s)")
    ap.add_argument("--widths", default=None,
                    help="conv widths, e.g. 32,64,128,192 (default: model.py's)")
    ap.add_argument("--keep", choices=("best", "last"), default="best",
                    help="weights to ship: best val epoch, or the last (val never selects)")
    ap.add_argument("--anneal-to-budget", action="store_true",
                    help="cosine learning-rate schedule over --time-budget, not --epochs")
    ap.add_argument("--window-s", type=float, default=WINDOW_S,
                    help=f"seconds of audio per window (default {WINDOW_S:g})")
    ap.add_argument("--splice", type=float, default=0.0,
                    help="chance that a training music window is spliced after the start of a "
                         "random window of another label (a style change, or music starting "
                         "mid-window); default 0")
    ap.add_argument("--mixup", type=float, default=0.0,
                    help="chance that a training music window is mixed with another music "
                         "window, with soft labels in the same shares (mixup); default 0")
    ap.add_argument("--register", action="store_true",
                    help="give the network each mel band's position as a second input channel")
    ap.add_argument("--band-norm", type=float, default=0.0,
                    help="subtract this share (0-1) of each mel band's mean over the window "
                         "inside the network: a fixed EQ (piano, mic, room) then cancels; "
                         "default 0")
    ap.add_argument("--eq-db", type=float, default=0.0,
                    help="random smooth EQ curves of up to this many dB on training windows; "
                         "default 0")
    ap.add_argument("--per-work", type=int, default=None,
                    help="excerpts one work may give the training plan, at most "
                         "(default: training.dataset.PER_WORK)")
    ap.add_argument("--val-per-work", type=int, default=2,
                    help="the same bound for val (default 2: as many distinct works as "
                         "possible)")
    ap.add_argument("--second-weight", type=float, default=None,
                    help="chamber/orchestral/chorale works get this share of a keyboard "
                         "work's excerpts (default: training.dataset.SECOND_WEIGHT)")
    ap.add_argument("--pianist-share", type=float, default=None,
                    help="share of the jazz class played by the jazz pianist, the rest "
                         "generated (default: training.dataset.PIANIST_SHARE)")
    ap.add_argument("--works-fraction", type=float, default=1.0,
                    help="train on this share of the music works only (nested subsets; "
                         "no-music is kept whole): for learning curves; default 1")
    ap.add_argument("--workers", type=int, default=1, help="rendering processes")
    ap.add_argument("--device", default="auto",
                    help="where the network trains: auto (a CUDA GPU if PyTorch sees one, "
                         "else the CPU), cpu, cuda")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lr", type=float, default=3e-3, help="peak learning rate")
    ap.add_argument("--init-from", type=Path, default=None, metavar="BUNDLE",
                    help="continue from this engine bundle's weights (its model.onnx) instead "
                         "of a fresh network; the network options must match its build")
    ap.add_argument("--refit-head", action="store_true",
                    help="after training, fit the last layer again on the training windows' "
                         "embeddings with every class weighted equally (training.head_refit); "
                         "with --init-from and --epochs 0, on a bundle's network as it is")
    return ap.parse_args(argv)


def training_device(choice: str) -> str:
    """``auto`` → ``cuda`` when PyTorch sees a GPU, else ``cpu``; anything else as given."""
    import torch

    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if choice.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"--device {choice}: PyTorch sees no CUDA GPU on this machine "
                         "(use --device cpu or auto)")
    return choice


def device_name(device: str) -> str:
    import torch

    return torch.cuda.get_device_name(device) if device.startswith("cuda") else "cpu"


def warm_start_source(a: argparse.Namespace) -> dict | None:
    """What ``--init-from`` names (bundle, model hash, the epochs already in it), after
    checking that the network options asked for are the ones it was built with."""
    if a.init_from is None:
        return None
    import hashlib

    man_path = a.init_from / "manifest.json"
    try:
        man = json.loads(man_path.read_text())
    except (OSError, ValueError) as e:
        raise SystemExit(f"--init-from {a.init_from}: cannot read its manifest.json ({e})") from e
    tr = man.get("training", {})
    asked = {"widths": [int(w) for w in a.widths.split(",")] if a.widths else "model.py default",
             "register": a.register, "band_norm": a.band_norm}
    for k, v in asked.items():
        if k in tr and tr[k] != v:
            raise SystemExit(f"--init-from {a.init_from}: it was built with {k}={tr[k]!r}, "
                             f"this build asks for {v!r}")
    model = a.init_from / "model.onnx"
    earlier = tr.get("init_from") if isinstance(tr.get("init_from"), dict) else {}
    return {"bundle": f"{man.get('name')}-{man.get('version')}", "model": str(model),
            "model_sha256": hashlib.sha256(model.read_bytes()).hexdigest(),
            # epochs already in those weights, counting any bundle they were continued from
            "epochs_before": (tr.get("epochs") or 0) + (earlier.get("epochs_before") or 0)}


def main(argv: list[str] | None = None) -> dict:
    a = parse_args(argv)
    if not 0.0 < a.works_fraction <= 1.0:
        raise SystemExit("--works-fraction wants a share above 0 and at most 1")
    from training.export import export_bundle  # torch is imported only when building
    from training.train import train

    t0 = time.monotonic()
    name = a.name or ("quick" if a.quick else "placeholder")
    version = a.version or "0.0"
    out = a.out or Path("engines") / f"{name}-{version}"
    epochs = a.epochs if a.epochs is not None else (2 if a.quick else 30)
    if epochs < 0 or (epochs == 0 and a.init_from is None):
        raise SystemExit("--epochs wants a count of 1 or more (0 only with --init-from)")
    budget = a.time_budget or (60.0 if a.quick else 900.0)
    fe = FrontEnd()

    print(f"[build] rendering and windowing ({'quick' if a.quick else 'full'})", flush=True)
    val_mpc = a.val_minutes_per_class
    if val_mpc is None and a.minutes_per_class is not None:
        val_mpc = a.minutes_per_class / 3
    t_r = time.monotonic()
    sampling = {k: v for k, v in (("per_work", a.per_work), ("second_weight", a.second_weight),
                                  ("pianist_share", a.pianist_share)) if v is not None}
    xt, yt, mt = build_windows("train", quick=a.quick, seed=a.seed,
                               minutes_per_class=a.minutes_per_class, clip_s=a.clip_s,
                               window_s=a.window_s, verbose=True, workers=a.workers,
                               sampling=sampling)
    print(f"[build] train windows in {time.monotonic() - t_r:.0f} s", flush=True)
    if a.works_fraction < 1.0:
        keep = works_subset(mt, a.works_fraction)
        xt, yt, mt = xt[keep], yt[keep], [m for m, k in zip(mt, keep, strict=True) if k]
        works = {g: len({m["work"] for m in mt if m["genre"] == g})
                 for g in LABELS if g != "none"}
        print(f"[build] --works-fraction {a.works_fraction:g}: works kept {works}", flush=True)
    xv, yv, mv = build_windows("val", quick=a.quick, seed=a.seed, minutes_per_class=val_mpc,
                               clip_s=a.val_clip_s or a.clip_s, window_s=a.window_s,
                               verbose=True, workers=a.workers,
                               sampling={**sampling, "per_work": a.val_per_work})
    leak = {m["work"] for m in mt} & (works_of("val") | works_of("dev"))
    if leak:
        raise RuntimeError(f"val/dev works found in training windows: {sorted(leak)[:5]}")
    t_data = time.monotonic() - t0
    print(f"[build] windows: train {xt.shape} {np.bincount(yt, minlength=len(LABELS))}, "
          f"val {xv.shape} {np.bincount(yv, minlength=len(LABELS))} ({t_data:.0f} s)",
          flush=True)

    widths = tuple(int(w) for w in a.widths.split(",")) if a.widths else None
    if widths is not None and len(widths) != 4:
        raise SystemExit("--widths wants four comma-separated integers")
    device = training_device(a.device)
    init = warm_start_source(a)
    print(f"[build] training on {device}", flush=True)
    model, hist = train(xt, yt, xv, yv, labels=LABELS, epochs=epochs, seed=a.seed,
                        time_budget_s=budget, widths=widths, keep=a.keep,
                        lr_follows_budget=a.anneal_to_budget, splice_p=a.splice,
                        mixup_p=a.mixup, register=a.register, band_norm=a.band_norm,
                        eq_db=a.eq_db, device=device, lr=a.lr,
                        init_from=init["model"] if init else None)
    refit = None
    if a.refit_head:
        import torch

        from training.head_refit import refit_head
        from training.train import evaluate

        refit = refit_head(model, xt, yt, n_labels=len(LABELS), seed=a.seed)
        acc, _ = evaluate(model, torch.from_numpy(np.asarray(xv, dtype=np.float32)).unsqueeze(1),
                          torch.from_numpy(np.asarray(yv, dtype=np.int64)))
        refit["val_acc_after"] = round(acc, 4)
        print(f"[build] val accuracy after the head refit {acc:.4f}", flush=True)
    t_train = time.monotonic() - t0 - t_data

    rng = np.random.default_rng(a.seed)
    calib = xt[rng.choice(len(xt), size=min(256, len(xt)), replace=False)]
    extra = {
        "training_data": {
            "train": summarise(mt, TRAIN_HOP_S),
            "val": summarise(mv, VAL_HOP_S),
            "train_hop_s": TRAIN_HOP_S,
            "val_hop_s": VAL_HOP_S,
            "split": "by canonical work over both corpora (training.corpus: one name per "
                     "work across manifests; val if any copy is val; reserved works dropped); "
                     "jazz tunes one split for the pianist's files, charts and horn solos; "
                     "none by disjoint seeds and sentences. A dev slice (salted SHA-1 of the "
                     "work, 15 %) of the train works is never trained on: dev-real is made "
                     "from it",
            "sampling": {"per_work": a.per_work or PER_WORK,
                         "second_weight": (SECOND_WEIGHT if a.second_weight is None
                                           else a.second_weight),
                         "pianist_share": (PIANIST_SHARE if a.pianist_share is None
                                           else a.pianist_share),
                         "val_per_work": a.val_per_work},
            "timbres": [t.name for t in TIMBRES],
            "rendering": "scores humanised with statistics measured on human performances "
                         "(docs/experiments/human-playing.md; one pedal rule for every style), "
                         "human performances and the jazz pianist replayed as played (tempo "
                         "±4 %, touch curve) -> fluidsynth at 22.05-48 kHz -> 16 kHz; "
                         "synthetic room reverb, mic EQ, noise + hum, gain, some clipping",
            "none_kinds": "speech (espeak-ng), applause, room noise, hum, near-silence, "
                          "knocks/page turns",
            "works_fraction": a.works_fraction,
            "quick": bool(a.quick),
            "seed": a.seed,
        },
        "licenses": {"train": licenses(mt), "val": licenses(mv)},
        "training": {"epochs": len(hist.get("val_acc", [])), "best_epoch": hist.get("best_epoch"),
                     "stopped_by_budget": hist.get("stopped_by_budget"),
                     "kept": hist.get("kept"), "params": hist.get("params"),
                     "widths": list(widths) if widths else "model.py default",
                     "lr_schedule": "cosine over the time budget" if a.anneal_to_budget
                     else "cosine over the epochs",
                     "splice": a.splice,
                     "mixup": a.mixup,
                     "register": a.register,
                     "band_norm": a.band_norm,
                     "eq_db": a.eq_db,
                     "lr": a.lr,
                     "init_from": init,
                     "head_refit": refit,
                     "val_acc_per_epoch": [round(v, 4) for v in hist.get("val_acc", [])],
                     "seconds_data": round(t_data, 1), "seconds_train": round(t_train, 1),
                     "host": platform.machine(), "device": device_name(device)},
        "built_by": "python -m training.build " + " ".join(
            sys.argv[1:] if argv is None else argv),
    }
    metrics = export_bundle(model, out, frontend=fe, labels=LABELS, window_s=a.window_s,
                            hop_s=HOP_S, calib_x=calib, val_x=xv, val_y=yv, name=name,
                            version=version, extra_manifest=extra)
    total = time.monotonic() - t0
    print(f"[build] wrote {out} in {total:.0f} s", flush=True)
    print(json.dumps({k: metrics[k] for k in ("val_accuracy_fp32", "val_accuracy_int8",
                                              "per_class_accuracy_int8",
                                              "int8_fp32_top1_agreement") if k in metrics},
                     indent=1), flush=True)
    return metrics


if __name__ == "__main__":
    main()
