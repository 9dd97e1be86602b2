"""Measure an engine bundle on the validation split and write the model report.

    python -m training.evaluate ENGINE_DIR [--quick] [--out docs/] [--peer]

Everything here only *measures*: no threshold, smoothing constant or model choice is tuned on
what it sees. Windows are made the way the listener makes them (the bundle's window, hop and
front-end parameters, ``log_mel``), and run through ``OnnxEngine`` INT8 on one thread.

1. Val windows (the bundle's own val plan, rebuilt from the manifest's ``built_by``): accuracy
   overall and per class, precision/recall, confusion matrix, 30 s clip accuracy (majority of
   windows), no-music rejection, INT8 vs FP32 agreement.
2. Robustness: clean (dry) renders of val clips with noise (room + hum + babble) at fixed SNRs
   and with synthetic rooms of fixed RT60 (``training.render``'s own functions).
3. Calibration: ECE (15 bins) and a reliability diagram.
4. Responsiveness: medleys of val pieces (one piano, one room, style change every 40–60 s,
   3 s of room noise first) through the box's own ``Listener`` with the bundle's smoothing.
5. Cost: ``training.bench_engine.bench`` (front end + INT8 engine per window, one thread).

Writes ``OUT/MODEL.md``, ``OUT/model/*.png`` and ``OUT/model/metrics.json``; prints the JSON
summary on stdout. This module renders and runs; the targets, conditions and pure figures are
``training.metrics``, the report's words, tables and plots ``training.report``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shlex
import sys
import time
from dataclasses import asdict
from pathlib import Path

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import numpy as np  # noqa: E402

from appliance.listen.bundle import Bundle, load_bundle  # noqa: E402
from appliance.listen.engine import OnnxEngine  # noqa: E402
from appliance.listen.estimate import GENRES, NONE  # noqa: E402
from appliance.listen.frontend import log_mel  # noqa: E402
from appliance.listen.listener import Listener, Smoothing  # noqa: E402
from training.metrics import (  # noqa: E402
    DETUNE_CENTS,
    HOLD_S,
    LEAD_S,
    ROBUST_HOP_S,
    RT60S,
    SNRS_DB,
    SPEEDS,
    TRANSPOSE_SEMITONES,
    change_delays,
    confusion,
    ece,
    first_named,
    pct,
    per_class_table,
    spurious_changes,
)
from training.report import plots, summary, weaknesses, write_markdown  # noqa: E402

# --------------------------------------------------------------------------- val plan


def build_settings(manifest: dict) -> dict:
    """How the bundle's val windows were planned, from the manifest's ``built_by`` (the
    same defaults as ``training.build`` / ``training.dataset.build_windows``)."""
    cmd = manifest.get("built_by", "python -m training.build")
    argv = shlex.split(cmd)
    argv = argv[argv.index("training.build") + 1:] if "training.build" in argv else []
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--quick", action="store_true")
    for opt in ("--minutes-per-class", "--clip-s", "--val-minutes-per-class", "--val-clip-s"):
        ap.add_argument(opt, type=float, default=None)
    ap.add_argument("--seed", type=int, default=0)
    a, _ = ap.parse_known_args(argv)
    td = manifest.get("training_data", {})
    quick = bool(a.quick or td.get("quick", False))
    seed = int(td.get("seed", a.seed))
    mpc = a.val_minutes_per_class
    if mpc is None and a.minutes_per_class is not None:
        mpc = a.minutes_per_class / 3
    clip_s = a.val_clip_s or a.clip_s
    if quick:
        mpc, clip_s = mpc or 0.2, clip_s or 12.0
    else:
        mpc, clip_s = mpc or 8.0 / 3, clip_s or 30.0
    return {"minutes_per_class": mpc, "clip_s": clip_s, "seed": seed, "quick": quick,
            "train_minutes_per_class": a.minutes_per_class, "train_clip_s": a.clip_s,
            "built_by": cmd}


def val_clips(settings: dict, *, quick: bool) -> list[dict]:
    from training.dataset import LABELS, plan

    clips = plan("val", minutes_per_class=settings["minutes_per_class"],
                 clip_s=settings["clip_s"], seed=settings["seed"])
    if quick:  # two clips per class
        clips = [c for g in LABELS for c in [c for c in clips if c["genre"] == g][:2]]
    return clips


def clip_groups(clips: list[dict], target_s: float = 30.0) -> list[list[int]]:
    """Indices of val clips forming the "30 s clips" of the clip metric. Clips of 30 s or
    more stand alone; shorter ones are joined, same class and same work first (then other
    works of the class), until a group holds about ``target_s`` seconds."""
    longest = max((float(c["length"]) for c in clips), default=target_s)
    n = max(1, int(np.ceil(target_s / longest - 1e-9)))
    if n == 1:
        return [[i] for i in range(len(clips))]
    groups: list[list[int]] = []
    for g in dict.fromkeys(c["genre"] for c in clips):
        by_work: dict[str, list[int]] = {}
        for i, c in enumerate(clips):
            if c["genre"] == g:
                by_work.setdefault(c["work"], []).append(i)
        mine: list[list[int]] = []
        left: list[int] = []
        for idx in by_work.values():
            full = len(idx) - len(idx) % n
            mine += [idx[k:k + n] for k in range(0, full, n)]
            left += idx[full:]
        full = len(left) - len(left) % n
        mine += [left[k:k + n] for k in range(0, full, n)]
        if len(left) % n:  # the rest joins this class's last clip (or stands alone)
            if mine:
                mine[-1] += left[full:]
            else:
                mine.append(left[full:])
        groups += mine
    return groups


def check_no_leak(clips: list[dict]) -> int:
    """Works of these clips/segments that the training split may also use (must be 0)."""
    from training.dataset import works_of

    return len({c["work"] for c in clips} & works_of("train"))


# --------------------------------------------------------------------------- windows


def window_starts(x: np.ndarray, b: Bundle, hop_s: float, *, music: bool) -> list[int]:
    """Window starts as the training recipe keeps them: music windows more than 20 dB below
    the clip's median window level (gaps, release tails) are skipped."""
    win = b.window_samples
    hop = int(round(hop_s * b.frontend.sample_rate))
    starts = list(range(0, max(1, len(x) - win + 1), hop))
    if not music:
        return starts
    rms = np.array([np.sqrt(np.mean(x[s:s + win] ** 2)) + 1e-9 for s in starts])
    ref = float(np.median(rms))
    return [s for s, r in zip(starts, rms, strict=True) if 20 * np.log10(r / ref) >= -20]


def features(x: np.ndarray, b: Bundle, starts: list[int]) -> np.ndarray:
    win = b.window_samples
    if len(x) < win:
        x = np.concatenate([x, np.zeros(win - len(x), np.float32)])
    return np.stack([log_mel(x[s:s + win], b.frontend) for s in starts]).astype(np.float32)


def window_levels_db(x: np.ndarray, b: Bundle, starts: list[int]) -> np.ndarray:
    """Window level as the listener's silence gate sees it (mean square of its frames)."""
    n = b.n_frames * b.frontend.hop_length
    return np.array([10 * np.log10(float(np.mean(x[s:s + n].astype(np.float64) ** 2)) + 1e-12)
                     for s in starts])


def run_engine(engine: OnnxEngine, feats: np.ndarray, batch: int = 32) -> np.ndarray:
    out = [engine.infer(feats[i:i + batch, None])[0] for i in range(0, len(feats), batch)]
    return np.concatenate(out).astype(np.float64)


# --------------------------------------------------------------------------- dry renders


def _cache_dir() -> Path:
    from training.dataset import CACHE

    return CACHE / "eval"


def _key(d: object) -> str:
    return hashlib.sha1(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]


def render_dry(clip: dict, *, transpose: int = 0, speed: float = 1.0) -> np.ndarray:
    """The planned val clip without the stage-mic treatment (dry piano at 16 kHz), cached.
    ``transpose`` (semitones) and ``speed`` (playing-speed factor on top of the humanised
    tempo) change the performance before rendering; the defaults give the val clip itself."""
    from training.dataset import cache_write
    from training.render import render_clip, timbre

    change = {"transpose": transpose, "speed": speed} if (transpose, speed) != (0, 1.0) else None
    key = ["dry", 1, dict(clip)] + ([change] if change else [])
    path = _cache_dir() / f"dry-{_key(key)}.npy"
    if path.exists():
        return np.load(path).astype(np.float32)
    perf = segment_performance(clip)
    if change:
        perf = changed_performance(perf, transpose, speed)
    x = render_clip(perf, timbre(clip["timbre"]), clip["seed"] + 7, augment=False)
    cache_write(path, lambda f: np.save(f, x.astype(np.float32)))
    return x


def segment_performance(seg: dict):
    """The performance behind a planned clip or medley segment: a piece excerpt of either
    corpus (``training.dataset.perform_excerpt``) or a generated jazz performance."""
    from training import jazz
    from training.dataset import perform_excerpt

    if seg["source"] in ("score", "performance", "pianist"):
        return perform_excerpt(seg)
    perf, _ = jazz.jazz_performance(seg["item"], seg["seed"], length_s=seg["length"],
                                    split=seg["split"])
    return perf


def changed_performance(perf, transpose: int, speed: float):
    """The same performance in another key (kept on the 88 keys) and/or faster or slower."""
    from dataclasses import replace

    notes = [replace(n, pitch=min(108, max(21, n.pitch + transpose)), start=n.start / speed,
                     end=n.end / speed) for n in perf.notes]
    return replace(perf, notes=notes, pedal=[(t / speed, v) for t, v in perf.pedal])


def detuned(dry: np.ndarray, cents: float) -> np.ndarray:
    """The whole recording ``cents`` sharp (flat if negative), as from a piano tuned away
    from A440: replayed faster by 2^(cents/1200), which also speeds it by under 3 %."""
    from training.render import RATE, resample

    return resample(dry, int(round(RATE * 2 ** (cents / 1200))), RATE)


def prerender_dry(clips: list[dict], workers: int) -> None:
    """Fill the dry-render cache in ``workers`` processes (each clip has its own seed, so the
    audio does not depend on the worker count)."""
    if workers <= 1 or len(clips) < 2:
        return
    import multiprocessing as mp

    with mp.get_context("fork").Pool(workers) as pool:
        for _ in pool.imap_unordered(_render_dry_only, clips):
            pass


def _render_dry_only(clip: dict) -> None:
    render_dry(clip)


def _norm(x: np.ndarray) -> np.ndarray:
    return (x / (np.sqrt(np.mean(x.astype(np.float64) ** 2)) + 1e-9)).astype(np.float32)


def babble(seconds: float, seed: int, voices: int = 4) -> np.ndarray:
    """Several espeak-ng talkers at once (val sentences only), unit RMS."""
    from training.dataset import cache_write
    from training.nomusic import speech

    path = _cache_dir() / f"babble-{_key(['babble', seconds, seed, voices])}.npy"
    if path.exists():
        return np.load(path)
    x = sum(speech(seconds, np.random.default_rng(seed + i), split="val")
            for i in range(voices))
    x = _norm(np.asarray(x, np.float32))
    cache_write(path, lambda f: np.save(f, x))
    return x


def with_noise(dry: np.ndarray, snr_db: float, seed: int, bed: np.ndarray) -> np.ndarray:
    """Dry music + (room rumble/murmur + mains hum + babble) at ``snr_db``, at -25 dBFS."""
    from training.nomusic import room
    from training.render import RATE, hum

    rng = np.random.default_rng(seed)
    n = len(dry)
    off = int(rng.integers(0, max(1, len(bed) - n)))
    b = np.resize(bed[off:], n)
    # one sample spare: int(n / RATE * RATE) can round down to n - 1
    noise = _norm(room((n + 1) / RATE, rng)[:n]) + 0.5 * _norm(hum(n, rng)) + _norm(b)
    y = _norm(dry) + _norm(noise) * 10 ** (-snr_db / 20)
    return np.clip(_norm(y) * 10 ** (-25 / 20), -1, 1).astype(np.float32)


def with_reverb(dry: np.ndarray, rt60: float, seed: int) -> np.ndarray:
    """Dry music through a synthetic room of ``rt60`` s (0: dry), at -25 dBFS."""
    from training.render import _fft_filter, room_ir

    y = dry if rt60 <= 0 else _fft_filter(dry, room_ir(np.random.default_rng(seed), rt60=rt60),
                                          None)
    return np.clip(_norm(y) * 10 ** (-25 / 20), -1, 1).astype(np.float32)


# --------------------------------------------------------------------------- medleys


def medley_plan(n_medleys: int, seed: int, *, segments: int = 5, seg_s: tuple = (40.0, 60.0),
                lead_s: float = LEAD_S, split: str = "val", venue: bool = False) -> list[dict]:
    """Medleys of one split's works only (VAL for measuring; DEV for choosing smoothing):
    each a random order of the four styles (plus one more, no style twice in a row), one
    piano, segments of ``seg_s`` seconds. Jazz segments are the jazz pianist's playing where
    the split has it. ``venue``: an unseen piano and an unseen venue (dev-real,
    ``training.venue``) instead of a training timbre and the training stage mic."""
    from training import corpus, jazz
    from training.render import TIMBRES

    pools: dict[str, list] = {g: [] for g in GENRES}
    for p in corpus.pieces():
        if p.split == split and p.genre in pools and not (p.genre == "jazz" and
                                                          p.kind == "score"):
            pools[p.genre].append(p)
    if not pools["jazz"]:
        pools["jazz"] = [it for it in jazz.jazz_items(split) if it["kind"] == "solo"] or \
            jazz.jazz_items(split)
    rng = np.random.default_rng(seed)
    for g in pools:
        pools[g] = [pools[g][i] for i in rng.permutation(len(pools[g]))]
    used = dict.fromkeys(pools, 0)
    if venue:
        from training.venue import UNSEEN_TIMBRES
        timbres = [str(t) if isinstance(t, str) else t.name for t in UNSEEN_TIMBRES]
    else:
        timbres = [t.name for t in TIMBRES]
    out = []
    for m in range(n_medleys):
        order = list(rng.permutation(list(GENRES)))
        while len(order) < segments:
            order.append(str(rng.choice([g for g in GENRES if g != order[-1]])))
        order = order[:segments]
        tb = timbres[m % len(timbres)]
        segs = []
        for g in order:
            src = pools[g][used[g] % len(pools[g])]
            used[g] += 1
            length = float(rng.uniform(*seg_s))
            s = int(rng.integers(0, 2**31 - 1))
            if isinstance(src, dict):  # a generated jazz item
                segs.append({"genre": g, "source": "jazz", "item": src, "title": src["title"],
                             "work": corpus.jazz_key(src["title"]), "split": split,
                             "length": length, "seed": s})
            else:
                length = min(length, src.duration_s)
                start = float(rng.uniform(0.0, max(0.0, src.duration_s - length)))
                segs.append({"genre": g, "source": src.kind if g != "jazz" else "pianist",
                             "piece": src.rel, "work": src.work, "split": src.split,
                             "start": round(start, 2), "length": length, "seed": s})
        out.append({"timbre": tb, "lead_s": lead_s, "seed": int(rng.integers(0, 2**31 - 1)),
                    "segments": segs} | ({"venue": True} if venue else {}))
    return out


def render_medley(m: dict) -> tuple[np.ndarray, list[dict]]:
    """One medley: dry segments back to back after ``lead_s`` of nothing, then one stage-mic
    treatment over the whole (one room, one mic, one noise bed; for a dev-real medley the
    unseen venue of ``training.venue``). Returns audio and segments with their times
    [t0, t1]."""
    from training.dataset import cache_write
    from training.render import RATE, render_clip, stage_mic, timbre

    path = _cache_dir() / f"medley-{_key(['medley', 2, m])}.npz"
    if path.exists():
        z = np.load(path)
        return z["x"], json.loads(str(z["segs"]))
    parts = [np.zeros(int(m["lead_s"] * RATE), np.float32)]
    t = m["lead_s"]
    segs = []
    for s in m["segments"]:
        perf = segment_performance(s)
        if m.get("venue"):
            from training.venue import render_unseen
            x = render_unseen(perf, m["timbre"], s["seed"] + 7)
        else:
            x = render_clip(perf, timbre(m["timbre"]), s["seed"] + 7, augment=False)
        x = x[: int(s["length"] * RATE)]
        parts.append(x)
        segs.append({"genre": s["genre"], "t0": t, "t1": t + len(x) / RATE,
                     "work": s["work"]})
        t += len(x) / RATE
    whole = np.concatenate(parts)
    rng = np.random.default_rng(m["seed"])
    if m.get("venue"):
        from training.venue import venue
        x = venue(whole, rng)
    else:
        x = stage_mic(whole, rng)
    cache_write(path, lambda f: np.savez(f, x=x, segs=json.dumps(segs)))
    return x, segs


def listen(b: Bundle, x: np.ndarray) -> tuple[list[tuple[float, str]], list[float]]:
    """The box's own Listener (bundle smoothing, ONNX Runtime INT8, one thread), fed one hop
    at a time as ``appliance simulate`` feeds it."""
    lis = Listener(OnnxEngine(b, precision="int8", threads=1))
    hop = b.hop_samples
    stream, cost = [], []
    for i in range(0, len(x), hop):
        for e in lis.feed(x[i:i + hop]):
            stream.append((e.t, e.genre))
            cost.append(lis.last_cost_ms)
    return stream, cost


# --------------------------------------------------------------------------- evaluation


def eval_val(b: Bundle, clips: list[dict], log, render=None, name: str = "val") -> dict:
    """Windows of ``clips`` (rendered by ``render``, default the training renderer) through
    the INT8 engine alone: accuracy, confusion, clips by majority, no-music, calibration, and
    accuracy by timbre, by source and by style x source (e.g. the jazz pianist vs generated
    jazz)."""
    from training.dataset import render_planned

    render = render or render_planned

    labels = list(b.labels)
    e8 = OnnxEngine(b, precision="int8", threads=1)
    e32 = OnnxEngine(b, precision="fp32", threads=1) if "fp32" in b.models else None
    ys, p8, p32, levels, clip_id, timbre_of, kind_of = [], [], [], [], [], [], []
    style_source = []
    for i, c in enumerate(clips):
        x = render(c)
        starts = window_starts(x, b, b.hop_s, music=c["genre"] != NONE)
        f = features(x, b, starts)
        p8.append(run_engine(e8, f))
        if e32 is not None:
            p32.append(run_engine(e32, f))
        levels.append(window_levels_db(x, b, starts))
        ys += [labels.index(c["genre"])] * len(starts)
        clip_id += [i] * len(starts)
        timbre_of += [c.get("timbre") or c.get("kind", "")] * len(starts)
        kind_of += [c.get("kind") or c.get("source", "")] * len(starts)
        style_source += [f"{c['genre']} / {c.get('kind') or c.get('source', '')}"] * len(starts)
        if (i + 1) % 20 == 0:
            log(f"  {name} clip {i + 1}/{len(clips)}")
    y = np.array(ys)
    probs = np.concatenate(p8)
    pred = probs.argmax(1)
    lvl = np.concatenate(levels)
    clip_arr = np.array(clip_id)
    k = len(labels)
    cm = confusion(y, pred, k)
    none = labels.index(NONE)
    music = y != none
    gated = pred.copy()
    gated[lvl < float(b.manifest.get("listener", {}).get("level_floor_db", -65.0))] = none
    # 30 s clips: majority of windows
    clip_true, clip_pred = [], []
    groups = clip_groups(clips)
    for grp in groups:
        m = np.isin(clip_arr, grp)
        if m.any():
            clip_true.append(labels.index(clips[grp[0]]["genre"]))
            clip_pred.append(int(np.bincount(pred[m], minlength=k).argmax()))
    clip_true, clip_pred = np.array(clip_true), np.array(clip_pred)
    cmusic = clip_true != none
    conf = probs.max(1)
    e, bins = ece(conf, pred == y)
    genre_idx = [labels.index(g) for g in GENRES if g in labels]
    pred4 = np.array(genre_idx)[probs[:, genre_idx].argmax(1)]
    by = {}
    for group, arr in (("timbre (none: kind)", np.array(timbre_of)),
                       ("source", np.array(kind_of)), ("style / source", np.array(style_source))):
        by[group] = {str(v): {"accuracy": float((pred[arr == v] == y[arr == v]).mean()),
                             "windows": int((arr == v).sum())}
                    for v in sorted(set(arr.tolist()))}
    res = {
        "n_windows": int(len(y)), "n_clips": len(clips),
        "windows_per_class": {lab: int((y == i).sum()) for i, lab in enumerate(labels)},
        "window_accuracy_all": float((pred == y).mean()),
        "window_accuracy_4style": float((pred[music] == y[music]).mean()),
        "window_accuracy_4style_genre_argmax": float((pred4[music] == y[music]).mean()),
        "per_class": per_class_table(cm, labels),
        "confusion": cm.tolist(),
        "clip_accuracy_4style": float((clip_pred[cmusic] == clip_true[cmusic]).mean()),
        "clip_accuracy_all": float((clip_pred == clip_true).mean()),
        "n_music_clips": int(cmusic.sum()),
        "clip_seconds_median": float(np.median(
            [sum(float(clips[i]["length"]) for i in grp) for grp in groups])),
        "clips_joined": max(len(grp) for grp in groups),
        "clip_confusion": confusion(clip_true, clip_pred, k).tolist(),
        "none_rejected": float((pred[~music] == none).mean()),
        "music_called_none": float((pred[music] == none).mean()),
        "none_rejected_with_gate": float((gated[~music] == none).mean()),
        "music_called_none_with_gate": float((gated[music] == none).mean()),
        "ece": e, "ece_bins": bins, "mean_confidence": float(conf.mean()),
        "by": by,
    }
    if p32:
        q = np.concatenate(p32)
        res["int8_fp32_agreement"] = float((q.argmax(1) == pred).mean())
        res["window_accuracy_all_fp32"] = float((q.argmax(1) == y).mean())
    return res


def eval_robustness(b: Bundle, clips: list[dict], per_genre: int, log) -> dict:
    labels = list(b.labels)
    eng = OnnxEngine(b, precision="int8", threads=1)
    chosen = []
    for g in GENRES:
        cs = [c for c in clips if c["genre"] == g]
        works: set[str] = set()
        distinct = [c for c in cs if not (c["work"] in works or works.add(c["work"]))]
        rest = [c for c in cs if not any(c is d for d in distinct)]
        chosen += (distinct + rest)[:per_genre]
    prerender_dry(chosen, workers=min(2, os.cpu_count() or 1))
    bed = babble(60.0, 4242)
    conds = [("clean", None)] + [("snr", s) for s in SNRS_DB] + [("rt60", r) for r in RT60S]
    conds += [("detune", c) for c in DETUNE_CENTS] + [("transpose", k) for k in
                                                      TRANSPOSE_SEMITONES]
    conds += [("speed", f) for f in SPEEDS]
    hits = {c: [] for c in conds}
    nones = {c: [] for c in conds}
    for i, c in enumerate(chosen):
        dry = render_dry(c)
        starts = window_starts(dry, b, ROBUST_HOP_S, music=True)
        yi = labels.index(c["genre"])
        for cond in conds:
            kind, v = cond
            if kind == "clean":
                x = with_reverb(dry, 0.0, 0)
            elif kind == "snr":
                x = with_noise(dry, v, c["seed"] + 11, bed)
            elif kind == "rt60":
                x = with_reverb(dry, v, c["seed"] + 13)
            else:  # another piano or pianist: a changed performance, dry and clean
                y = (detuned(dry, v) if kind == "detune" else
                     render_dry(c, transpose=v) if kind == "transpose" else render_dry(c, speed=v))
                x = with_reverb(y, 0.0, 0)
            at = starts if kind in ("clean", "snr", "rt60") else \
                window_starts(x, b, ROBUST_HOP_S, music=True)
            pred = run_engine(eng, features(x, b, at)).argmax(1)
            hits[cond] += (pred == yi).tolist()
            nones[cond] += (pred == labels.index(NONE)).tolist()
        log(f"  robustness clip {i + 1}/{len(chosen)}")

    def row(cond):
        return {"accuracy": float(np.mean(hits[cond])), "called_none": float(np.mean(nones[cond])),
                "windows": len(hits[cond])}

    return {"clips": len(chosen), "clips_per_genre": per_genre,
            "clean": row(("clean", None)),
            "snr": {f"{s:g}": row(("snr", s)) for s in SNRS_DB},
            "reverb": {f"{r:g}": row(("rt60", r)) for r in RT60S},
            "detune_cents": {f"{c:+g}": row(("detune", c)) for c in DETUNE_CENTS},
            "transpose_semitones": {f"{k:+d}": row(("transpose", k))
                                    for k in TRANSPOSE_SEMITONES},
            "speed": {f"{f:g}": row(("speed", f)) for f in SPEEDS},
            "noise": "room rumble + murmur (training.nomusic.room) + 0.5x mains hum + 4-talker "
                     "espeak-ng babble (val sentences), equal RMS, mixed at the SNR; -25 dBFS",
            "reverb_how": "training.render.room_ir at the RT60 (random early reflections and "
                          "wet share per clip), no noise; -25 dBFS"}


def eval_responsiveness(b: Bundle, n_medleys: int, seg_s: tuple, segments: int, log, *,
                        split: str = "val", venue: bool = False, seed: int = 2026) -> dict:
    """Medleys through the box's own Listener: change delays, first style, spurious changes.
    ``split="dev", venue=True``: dev-real medleys (another draw than the tuner's)."""
    plans = medley_plan(n_medleys, seed=seed, segments=segments, seg_s=seg_s, split=split,
                        venue=venue)
    if check_no_leak([s for m in plans for s in m["segments"]]):
        raise SystemExit("a medley uses a work of the training split: refusing to measure")
    changes, held, firsts, spur, steady, costs, medleys = [], [], [], 0, 0.0, [], []
    total_s = 0.0
    for i, m in enumerate(plans):
        x, segs = render_medley(m)
        stream, cost = listen(b, x)
        costs += cost
        total_s += len(x) / b.frontend.sample_rate
        ch = change_delays(stream, segs)
        held += change_delays(stream, segs, hold_s=HOLD_S)
        fn = first_named(stream, m["lead_s"], segs[0]["genre"])
        n, st = spurious_changes(stream, segs)
        changes += ch
        firsts.append(fn)
        spur += n
        steady += st
        medleys.append({"timbre": m["timbre"], "styles": [s["genre"] for s in segs],
                        "seconds": round(len(x) / b.frontend.sample_rate, 1),
                        "delays": [None if c["delay"] is None else round(c["delay"], 2)
                                   for c in ch],
                        "first_any": fn["any"], "first_correct": fn["correct"],
                        "spurious": n})
        log(f"  medley {i + 1}/{len(plans)}: delays {medleys[-1]['delays']}, first {fn}, "
            f"spurious {n}")
    d = [c["censored_delay"] for c in changes]
    fa = [f["any"] if f["any"] is not None else float("inf") for f in firsts]
    fc = [f["correct"] if f["correct"] is not None else float("inf") for f in firsts]
    return {
        "medleys": len(plans), "changes": len(changes), "audio_minutes": round(total_s / 60, 1),
        "missed_changes": sum(c["delay"] is None for c in changes),
        "change_delay_median_s": pct(d, 50), "change_delay_p95_s": pct(d, 95),
        "change_delay_max_s": max(d) if d else None,
        "held_change_delay_median_s": pct([c["censored_delay"] for c in held], 50),
        "held_change_delay_p95_s": pct([c["censored_delay"] for c in held], 95),
        "held_s": HOLD_S,
        "first_style_median_s": pct(fa, 50), "first_style_max_s": max(fa) if fa else None,
        "first_correct_style_median_s": pct(fc, 50),
        "first_correct_style_max_s": max(fc) if fc else None,
        "spurious_changes": spur, "steady_minutes": round(steady / 60, 1),
        "spurious_per_10min": spur / (steady / 600) if steady else None,
        "listener_ms_per_window_mean": float(np.mean(costs)) if costs else None,
        "smoothing": {**asdict(Smoothing.from_manifest(b.manifest)),
                      "from": "bundle manifest" if "listener" in b.manifest
                      else "Smoothing() defaults (the bundle names none)"},
        "per_medley": medleys,
    }


def eval_cost(b: Bundle, runs: int, peer: bool) -> dict:
    from training.bench_engine import bench

    with contextlib.redirect_stdout(sys.stderr):  # stdout carries the JSON summary only
        r = bench(b.path, runs=runs, peer=peer)
    out = {"frontend_ms": r["frontend_ms"][0], "int8_ms": r.get("int8_ms", [None])[0],
           "fp32_ms": r.get("fp32_ms", [None])[0], "params": r.get("params"),
           "int8_bytes": r.get("int8_bytes")}
    if out["int8_ms"] is not None:
        out["cost_ms_per_window"] = out["frontend_ms"] + out["int8_ms"]
    if peer:
        out["peer_fp32_ms"] = r["peer_fp32_ms"][0]
        out["peer_params"] = r["peer_params"]
    return out


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m training.evaluate",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("engine", type=Path, help="engine bundle folder (engines/NAME-VERSION)")
    ap.add_argument("--quick", action="store_true", help="a few clips, one short medley")
    ap.add_argument("--out", type=Path, default=Path("docs"),
                    help="report folder: MODEL.md there, PNGs and metrics.json in model/")
    ap.add_argument("--peer", action="store_true",
                    help="also time a Cnn14-sized peer model in the cost section")
    ap.add_argument("--medleys", type=int, default=None,
                    help="number of medleys, val and dev-real each (default 12)")
    ap.add_argument("--robust-clips", type=int, default=None,
                    help="val clips per style for the robustness curves (default 10)")
    ap.add_argument("--note", default="", help="a line to put at the top of the report")
    a = ap.parse_args(argv)

    def log(msg: str) -> None:
        print(f"[evaluate] {msg}", flush=True, file=sys.stderr)

    t0 = time.monotonic()
    b = load_bundle(a.engine)
    settings = build_settings(b.manifest)
    clips = val_clips(settings, quick=a.quick)
    leak = check_no_leak(clips)
    if leak:
        raise SystemExit(f"{leak} val works appear in the training plan: refusing to measure")
    log(f"{b.label}: {len(clips)} val clips ({settings})")
    res: dict = {"engine": b.label, "engine_dir": str(a.engine), "quick": a.quick,
                 "labels": list(b.labels), "build_settings": settings, "leak_works": leak,
                 "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "note": a.note}
    res["val"] = eval_val(b, clips, log)
    log(f"val: 4-style {res['val']['window_accuracy_4style']:.3f}, clips "
        f"{res['val']['clip_accuracy_4style']:.3f} ({time.monotonic() - t0:.0f} s)")
    from training import devreal

    dclips = devreal.clips(quick=a.quick)
    if check_no_leak(dclips):
        raise SystemExit("a dev-real clip uses a work of the training split: refusing")
    devreal.prerender(dclips, workers=min(2, os.cpu_count() or 1))
    res["dev_real"] = eval_val(b, dclips, log, render=devreal.render, name="dev-real")
    log(f"dev-real: 4-style {res['dev_real']['window_accuracy_4style']:.3f} "
        f"({time.monotonic() - t0:.0f} s)")
    res["robustness"] = eval_robustness(b, clips, a.robust_clips or (1 if a.quick else 10), log)
    log(f"robustness done ({time.monotonic() - t0:.0f} s)")
    seg_s = (15.0, 20.0) if a.quick else (40.0, 60.0)
    res["seg_s"] = seg_s
    res["responsiveness"] = eval_responsiveness(
        b, a.medleys or (1 if a.quick else 12), seg_s, 3 if a.quick else 5, log)
    res["responsiveness_dev_real"] = eval_responsiveness(
        b, a.medleys or (1 if a.quick else 12), seg_s, 3 if a.quick else 5, log,
        split="dev", venue=True, seed=2027)
    log(f"responsiveness done ({time.monotonic() - t0:.0f} s)")
    res["cost"] = eval_cost(b, 50 if a.quick else 300, a.peer)
    res["cost_note"] = (f"Measured with {os.cpu_count()} cores on the machine; "
                        "a concurrent job can inflate it.")
    res["summary"] = summary(res)
    res["manifest"] = {k: b.manifest.get(k) for k in ("window_s", "hop_s", "training_data",
                                                       "licenses", "training", "built_by",
                                                       "listener", "metrics")}
    res["seconds"] = time.monotonic() - t0
    res["weaknesses"] = weaknesses(res)
    outdir = a.out / "model"
    outdir.mkdir(parents=True, exist_ok=True)
    res["plots"] = plots(res, list(b.labels), outdir)
    write_markdown(res, a.out / "MODEL.md")
    metrics = {k: v for k, v in res.items() if k != "manifest"}
    (outdir / "metrics.json").write_text(json.dumps(metrics, indent=1, default=float) + "\n")
    head = {"engine": b.label, "quick": a.quick, "summary": res["summary"],
            "report": str(a.out / "MODEL.md"), "seconds": round(res["seconds"], 1)}
    print(json.dumps(head, indent=1))
    return res


if __name__ == "__main__":
    main()
