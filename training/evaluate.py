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
summary on stdout.
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

# Targets of issue 3 (validation split).
TARGETS = {
    "window_accuracy_4style": (">=", 0.90),
    "clip_accuracy_4style": (">=", 0.97),
    "none_rejected": (">=", 0.98),
    "music_called_none": ("<=", 0.02),
    "change_delay_median_s": ("<=", 3.0),
    "change_delay_p95_s": ("<=", 6.0),
    "first_style_median_s": ("<=", 2.0),
    "spurious_per_10min": ("<=", 1.0),
    "cost_ms_per_window": ("<=", 5.0),
    "int8_fp32_agreement": (">=", 0.99),
}
SNRS_DB = (30.0, 20.0, 10.0, 5.0, 0.0)
RT60S = (0.0, 0.3, 0.8, 1.5, 2.5)
# a real piano and pianist: tuning away from A440, another key, another speed
DETUNE_CENTS = (-50.0, -25.0, 25.0, 50.0)
TRANSPOSE_SEMITONES = (-3, -1, 1, 3)
SPEEDS = (0.7, 0.85, 1.15, 1.3)
ECE_BINS = 15
LEAD_S = 3.0  # room noise before the music in each medley
ROBUST_HOP_S = 1.0
HOLD_S = 5.0  # a change "held": the new style stays named at least this long


# --------------------------------------------------------------------------- pure metrics


def confusion(y: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (np.asarray(y), np.asarray(pred)), 1)
    return cm


def per_class_table(cm: np.ndarray, labels: list[str]) -> dict[str, dict]:
    out = {}
    for i, lab in enumerate(labels):
        tp = int(cm[i, i])
        support = int(cm[i].sum())
        called = int(cm[:, i].sum())
        p = tp / called if called else float("nan")
        r = tp / support if support else float("nan")
        f1 = 2 * p * r / (p + r) if called and support and (p + r) > 0 else float("nan")
        out[lab] = {"precision": p, "recall": r, "f1": f1, "support": support}
    return out


def ece(confidence: np.ndarray, correct: np.ndarray, n_bins: int = ECE_BINS
        ) -> tuple[float, list[dict]]:
    """Expected calibration error of top-1 confidences: sum over equal-width bins of
    (share of samples) * |accuracy - mean confidence|. Also returns the bins."""
    conf = np.asarray(confidence, dtype=np.float64)
    corr = np.asarray(correct, dtype=np.float64)
    if len(conf) == 0:
        return float("nan"), []
    idx = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)
    total, bins = 0.0, []
    for b in range(n_bins):
        m = idx == b
        n = int(m.sum())
        if n:
            acc, c = float(corr[m].mean()), float(conf[m].mean())
            total += n / len(conf) * abs(acc - c)
        else:
            acc, c = float("nan"), float("nan")
        bins.append({"lo": b / n_bins, "hi": (b + 1) / n_bins, "n": n, "accuracy": acc,
                     "confidence": c})
    return float(total), bins


def change_delays(stream: list[tuple[float, str]], segments: list[dict], *,
                  hold_s: float = 0.0) -> list[dict]:
    """Per style change: when the smoothed genre first names the new style.

    ``stream``: (t, genre) per estimate, t = audio time at the end of its window.
    ``segments``: [{"genre", "t0", "t1"}] in time order; a change happens at each segment's
    ``t0`` but the first one. An estimate at t belongs to the segment with t0 < t <= t1.
    ``hold_s`` > 0: the naming only counts if the genre then stays the new style for that
    long (or to the segment's end).
    Returns one dict per change: {"t", "genre", "delay" (s, or None if never named before
    the next change), "censored_delay" (segment length when missed)}.
    """
    out = []
    for seg in segments[1:]:
        inside = [(t, g) for t, g in stream if seg["t0"] < t <= seg["t1"]]
        named = None
        for i, (t, g) in enumerate(inside):
            if g == seg["genre"] and all(g2 == seg["genre"] for t2, g2 in inside[i:]
                                         if t2 <= t + hold_s):
                named = t
                break
        d = None if named is None else named - seg["t0"]
        out.append({"t": seg["t0"], "genre": seg["genre"], "delay": d,
                    "censored_delay": d if d is not None else seg["t1"] - seg["t0"]})
    return out


def first_named(stream: list[tuple[float, str]], music_start: float, first_genre: str
                ) -> dict:
    """Delay from music start to the first style named (any) and to the right one."""
    any_t = next((t for t, g in stream if t > music_start and g != NONE), None)
    right_t = next((t for t, g in stream if t > music_start and g == first_genre), None)
    return {"any": None if any_t is None else any_t - music_start,
            "correct": None if right_t is None else right_t - music_start}


def spurious_changes(stream: list[tuple[float, str]], segments: list[dict]) -> tuple[int, float]:
    """Changes of the smoothed genre during steady playing: inside each segment, after the
    genre first names the segment's style, every later change (to anything, ``none``
    included) until the segment ends. Returns (count, seconds of steady playing)."""
    count, steady = 0, 0.0
    for seg in segments:
        inside = [(t, g) for t, g in stream if seg["t0"] < t <= seg["t1"]]
        k = next((i for i, (_, g) in enumerate(inside) if g == seg["genre"]), None)
        if k is None:
            continue
        steady += seg["t1"] - inside[k][0]
        prev = inside[k][1]
        for _, g in inside[k + 1:]:
            if g != prev:
                count += 1
                prev = g
    return count, steady


def pct(xs: list[float], q: float) -> float | None:
    return float(np.percentile(xs, q)) if xs else None


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
    from training import jazz
    from training.dataset import MIDI, PEDAL, cache_write
    from training.perform import excerpt, humanise, read_midi
    from training.render import render_clip, timbre

    change = {"transpose": transpose, "speed": speed} if (transpose, speed) != (0, 1.0) else None
    key = ["dry", 1, dict(clip)] + ([change] if change else [])
    path = _cache_dir() / f"dry-{_key(key)}.npy"
    if path.exists():
        return np.load(path).astype(np.float32)
    if clip["source"] == "midi":
        notes = excerpt(read_midi(MIDI / clip["piece"]), clip["start"], clip["length"])
        perf = humanise(notes, clip["seed"], pedal=PEDAL[clip["genre"]])
    else:
        perf, _ = jazz.jazz_performance(clip["item"], clip["seed"], length_s=clip["length"],
                                        split=clip["split"])
    if change:
        perf = changed_performance(perf, transpose, speed)
    x = render_clip(perf, timbre(clip["timbre"]), clip["seed"] + 7, augment=False)
    cache_write(path, lambda f: np.save(f, x.astype(np.float32)))
    return x


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
    noise = _norm(room(n / RATE, rng)[:n]) + 0.5 * _norm(hum(n, rng)) + _norm(b)
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
                lead_s: float = LEAD_S, split: str = "val") -> list[dict]:
    """Medleys of one split's pieces only (VAL for measuring; TRAIN for tuning the listener):
    each a random order of the four styles (plus one more, no style twice in a row), one
    piano timbre, segments of ``seg_s`` seconds."""
    from training import jazz
    from training.dataset import SCORE_GENRES, manifest_rows
    from training.render import TIMBRES

    rows = [r for r in manifest_rows() if r["split"] == split]
    pools: dict[str, list[dict]] = {g: [r for r in rows if r["genre"] == g] for g in SCORE_GENRES}
    pools["jazz"] = [it for it in jazz.jazz_items(split) if it["kind"] == "solo"] or \
        jazz.jazz_items(split)
    rng = np.random.default_rng(seed)
    for g in pools:
        pools[g] = [pools[g][i] for i in rng.permutation(len(pools[g]))]
    used = dict.fromkeys(pools, 0)
    out = []
    for m in range(n_medleys):
        order = list(rng.permutation(list(GENRES)))
        while len(order) < segments:
            order.append(str(rng.choice([g for g in GENRES if g != order[-1]])))
        order = order[:segments]
        tb = TIMBRES[m % len(TIMBRES)].name
        segs = []
        for g in order:
            src = pools[g][used[g] % len(pools[g])]
            used[g] += 1
            length = float(rng.uniform(*seg_s))
            s = int(rng.integers(0, 2**31 - 1))
            if g == "jazz":
                segs.append({"genre": g, "source": "jazz", "item": src, "title": src["title"],
                             "work": "jazz:" + jazz.norm_title(src["title"]), "split": split,
                             "length": length, "seed": s})
            else:
                length = min(length, src["duration_s"])
                start = float(rng.uniform(0.0, max(0.0, src["duration_s"] - length)))
                segs.append({"genre": g, "source": "midi", "piece": src["path"],
                             "work": src["work"], "split": src["split"], "start": round(start, 2),
                             "length": length, "seed": s})
        out.append({"timbre": tb, "lead_s": lead_s, "seed": int(rng.integers(0, 2**31 - 1)),
                    "segments": segs})
    return out


def render_medley(m: dict) -> tuple[np.ndarray, list[dict]]:
    """One medley: dry segments back to back after ``lead_s`` of nothing, then one stage-mic
    treatment over the whole (one room, one mic, one noise bed). Returns audio and segments
    with their times [t0, t1]."""
    from training import jazz
    from training.dataset import MIDI, PEDAL, cache_write
    from training.perform import excerpt, humanise, read_midi
    from training.render import RATE, render_clip, stage_mic, timbre

    path = _cache_dir() / f"medley-{_key(['medley', 1, m])}.npz"
    if path.exists():
        z = np.load(path)
        return z["x"], json.loads(str(z["segs"]))
    tb = timbre(m["timbre"])
    parts = [np.zeros(int(m["lead_s"] * RATE), np.float32)]
    t = m["lead_s"]
    segs = []
    for s in m["segments"]:
        if s["source"] == "midi":
            perf = humanise(excerpt(read_midi(MIDI / s["piece"]), s["start"], s["length"]),
                            s["seed"], pedal=PEDAL[s["genre"]])
        else:
            perf, _ = jazz.jazz_performance(s["item"], s["seed"], length_s=s["length"],
                                            split=s["split"])
        x = render_clip(perf, tb, s["seed"] + 7, augment=False)[: int(s["length"] * RATE)]
        parts.append(x)
        segs.append({"genre": s["genre"], "t0": t, "t1": t + len(x) / RATE,
                     "work": s["work"]})
        t += len(x) / RATE
    x = stage_mic(np.concatenate(parts), np.random.default_rng(m["seed"]))
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


def eval_val(b: Bundle, clips: list[dict], log) -> dict:
    from training.dataset import render_planned

    labels = list(b.labels)
    e8 = OnnxEngine(b, precision="int8", threads=1)
    e32 = OnnxEngine(b, precision="fp32", threads=1) if "fp32" in b.models else None
    ys, p8, p32, levels, clip_id, timbre_of, kind_of = [], [], [], [], [], [], []
    for i, c in enumerate(clips):
        x = render_planned(c)
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
        if (i + 1) % 20 == 0:
            log(f"  val clip {i + 1}/{len(clips)}")
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
    for name, arr in (("timbre (none: kind)", np.array(timbre_of)),
                      ("source", np.array(kind_of))):
        by[name] = {str(v): {"accuracy": float((pred[arr == v] == y[arr == v]).mean()),
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


def _tuning_key_speed(rob: dict) -> str:
    """The weakness line for another piano's tuning, another key and another speed."""
    def lowest(group: str, unit: str) -> str:
        k, r = min(rob[group].items(), key=lambda kr: kr[1]["accuracy"])
        return f"lowest {r['accuracy']:.2f} (at {k}{unit})"

    return (f"Tuning, key and speed (the same {rob['clips']} clips, dry): 4-style accuracy "
            f"{rob['clean']['accuracy']:.2f} as rendered; detuned by up to "
            f"{max(abs(float(k)) for k in rob['detune_cents']):g} cents, "
            f"{lowest('detune_cents', ' cents')}; transposed by up to "
            f"{max(abs(int(k)) for k in rob['transpose_semitones'])} semitones, "
            f"{lowest('transpose_semitones', ' semitones')}; played "
            f"{min(map(float, rob['speed'])):g}-{max(map(float, rob['speed'])):g}x as fast, "
            f"{lowest('speed', 'x')}.")


def eval_responsiveness(b: Bundle, n_medleys: int, seg_s: tuple, segments: int, log) -> dict:
    plans = medley_plan(n_medleys, seed=2026, segments=segments, seg_s=seg_s)
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


def smoothing_words(sm: dict) -> str:
    """The listener's smoothing in words, for the report."""
    rule = (f"evidence switch at {sm['switch_evidence']:g} nats, at most "
            f"{sm['evidence_cap']:g} per window" if sm["switch_evidence"] > 0
            else f"switch margin {sm['switch_margin']:g}")
    return f"tau {sm['tau_s']:g} s, {rule}"


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


# --------------------------------------------------------------------------- report


def met(key: str, value: float | None) -> bool | None:
    if value is None or key not in TARGETS or (isinstance(value, float) and np.isnan(value)):
        return None
    op, t = TARGETS[key]
    return bool(value >= t) if op == ">=" else bool(value <= t)


def plots(res: dict, labels: list[str], outdir: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    outdir.mkdir(parents=True, exist_ok=True)
    made = []
    cm = np.array(res["val"]["confusion"], dtype=float)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(5.5, 4.8))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{int(cm[i, j])}\n{norm[i, j]:.0%}", ha="center", va="center",
                    fontsize=8, color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(labels)), labels, rotation=30)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted (INT8, argmax)")
    ax.set_ylabel("true")
    ax.set_title(f"{res['engine']}: val windows (n={res['val']['n_windows']})")
    fig.tight_layout()
    fig.savefig(outdir / "confusion.png", dpi=110)
    plt.close(fig)
    made.append("confusion.png")

    rob = res["robustness"]
    for key, xlab, fname, order in (("snr", "SNR (dB)", "robustness_snr.png", SNRS_DB),
                                    ("reverb", "RT60 (s)", "robustness_reverb.png", RT60S)):
        xs = list(order)
        acc = [rob[key][f"{v:g}"]["accuracy"] for v in xs]
        non = [rob[key][f"{v:g}"]["called_none"] for v in xs]
        fig, ax = plt.subplots(figsize=(5.5, 3.6))
        ax.plot(xs, acc, "o-", label="4-style accuracy")
        ax.plot(xs, non, "s--", label="music called none")
        ax.axhline(rob["clean"]["accuracy"], color="grey", lw=0.8, ls=":",
                   label="dry, no noise")
        ax.axhline(TARGETS["window_accuracy_4style"][1], color="red", lw=0.8, ls="-.",
                   label="target 0.90")
        if key == "snr":
            ax.invert_xaxis()
        ax.set_ylim(0, 1.02)
        ax.set_xlabel(xlab)
        ax.set_ylabel("share of windows")
        what = "noise" if key == "snr" else "reverb"
        ax.set_title(f"{res['engine']}: {rob['clips']} val clips, {what}")
        ax.legend(fontsize=8, loc="lower left")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(outdir / fname, dpi=110)
        plt.close(fig)
        made.append(fname)

    bins = res["val"]["ece_bins"]
    fig, ax = plt.subplots(figsize=(4.8, 4.4))
    centers = [(b_["lo"] + b_["hi"]) / 2 for b_ in bins]
    accs = [b_["accuracy"] if b_["n"] else 0 for b_ in bins]
    ax.bar(centers, accs, width=1 / len(bins), edgecolor="k", alpha=0.7, label="accuracy")
    ax.plot([0, 1], [0, 1], "r--", label="perfect calibration")
    ax.set_xlabel("top-1 confidence (INT8)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"reliability, ECE = {res['val']['ece']:.3f}")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(outdir / "reliability.png", dpi=110)
    plt.close(fig)
    made.append("reliability.png")
    return made


def _f(v, fmt="{:.3f}") -> str:
    if v is None or (isinstance(v, float) and (np.isnan(v) or np.isinf(v))):
        return "—" if v is None or np.isnan(v) else "never"
    return fmt.format(v)


def summary(res: dict) -> dict:
    v, r, c = res["val"], res["responsiveness"], res["cost"]
    vals = {
        "window_accuracy_4style": v["window_accuracy_4style"],
        "clip_accuracy_4style": v["clip_accuracy_4style"],
        "none_rejected": v["none_rejected"],
        "music_called_none": v["music_called_none"],
        "change_delay_median_s": r["change_delay_median_s"],
        "change_delay_p95_s": r["change_delay_p95_s"],
        "first_style_median_s": r["first_style_median_s"],
        "spurious_per_10min": r["spurious_per_10min"],
        "cost_ms_per_window": c.get("cost_ms_per_window"),
        "int8_fp32_agreement": v.get("int8_fp32_agreement"),
    }
    return {k: {"target": f"{TARGETS[k][0]} {TARGETS[k][1]}", "measured": val,
                "met": met(k, val)} for k, val in vals.items()}


def write_markdown(res: dict, out: Path) -> None:
    m = res["manifest"]
    labels = res["labels"]
    v, rob, r, c = res["val"], res["robustness"], res["responsiveness"], res["cost"]
    s = res["summary"]
    L = []
    a = L.append
    a(f"# Genre engine `{res['engine']}`: model report")
    a("")
    a(f"Generated by `python -m training.evaluate {res['engine_dir']}"
      f"{' --quick' if res['quick'] else ''}` on {res['date']} ({res['seconds']:.0f} s). "
      "Every number below is measured on the **validation split** (val pieces/tunes/seeds "
      "only; "
      f"{res['leak_works']} works shared with the training plan). Nothing was tuned on these "
      "numbers: the engine, its window/hop and the listener's smoothing are taken as they are "
      "in the bundle. Windows are made as the listener makes them "
      f"({m['window_s']:g} s, the bundle's front end) and run through ONNX Runtime INT8 on one "
      "thread.")
    if res["quick"]:
        a("")
        a("> **--quick run**: a handful of clips and one short medley. Not a measurement.")
    if res.get("note"):
        a("")
        a(f"> {res['note']}")
    a("")
    a("## Targets (issue 3) vs measured")
    a("")
    a("| target | wanted | measured | met? |")
    a("|---|---|---|---|")
    names = {
        "window_accuracy_4style": f"4-style accuracy, {m['window_s']:g} s windows",
        "clip_accuracy_4style": "4-style accuracy, 30 s clips (majority of windows)",
        "none_rejected": "no-music windows rejected (called none)",
        "music_called_none": "music windows called none",
        "change_delay_median_s": "style change → new style named, median (s)",
        "change_delay_p95_s": "style change → new style named, p95 (s)",
        "first_style_median_s": "music start → first style named, median (s)",
        "spurious_per_10min": "spurious changes per 10 min of steady playing",
        "cost_ms_per_window": "front end + INT8 engine per window, one core (ms)",
        "int8_fp32_agreement": "INT8 vs FP32 top-1 agreement (val windows)",
    }
    for k, row in s.items():
        meas = _f(row["measured"], "{:.2f}" if k.endswith("_s") or k.startswith(("cost", "spur"))
                  else "{:.3f}")
        if k == "first_style_median_s":
            meas += f" (max {_f(r['first_style_max_s'], '{:.2f}')})"
        if k == "change_delay_p95_s":
            meas += f" (max {_f(r['change_delay_max_s'], '{:.2f}')}, missed {r['missed_changes']})"
        if k == "spurious_per_10min":
            meas += f" ({r['spurious_changes']} in {r['steady_minutes']} min)"
        ok = {True: "yes", False: "**no**", None: "—"}[row["met"]]
        a(f"| {names[k]} | {row['target']} | {meas} | {ok} |")
    a("")
    a("## Data per class")
    a("")
    td = m.get("training_data", {})
    a("From the bundle manifest's training summary (minutes of distinct rendered audio, "
      "distinct pieces — jazz: tunes, none: generated clips — and windows).")
    a("")
    a("| class | train min | train pieces | train windows | val min | val pieces | val windows |")
    a("|---|---|---|---|---|---|---|")
    for lab in labels:
        t_, w_ = td.get("train", {}).get(lab, {}), td.get("val", {}).get(lab, {})
        a(f"| {lab} | {t_.get('minutes', '—')} | {t_.get('pieces', '—')} | "
          f"{t_.get('windows', '—')} | {w_.get('minutes', '—')} | {w_.get('pieces', '—')} | "
          f"{w_.get('windows', '—')} |")
    a("")
    a(f"Timbres: {', '.join(td.get('timbres', []))}. Rendering: {td.get('rendering', '—')}. "
      f"None kinds: {td.get('none_kinds', '—')}. Split: {td.get('split', '—')}.")
    a("")
    tr = m.get("training") or {}
    keep = ("epochs", "best_epoch", "kept", "params", "widths", "lr_schedule",
            "stopped_by_budget", "seconds_data", "seconds_train", "host")
    a(f"Built by `{m.get('built_by', '?')}`; training: "
      + ", ".join(f"{k} {tr[k]}" for k in keep if k in tr) + ".")
    bm = m.get("metrics") or {}
    if "val_accuracy_int8" in bm:
        a("")
        a(f"The build's own check (val windows every {td.get('val_hop_s', '?')} s, all five "
          f"classes): INT8 {bm['val_accuracy_int8']:.3f}, FP32 "
          f"{bm.get('val_accuracy_fp32', float('nan')):.3f}, agreement "
          f"{bm.get('int8_fp32_top1_agreement', float('nan')):.3f}.")
    a("")
    a("## Validation windows")
    a("")
    a(f"{v['n_windows']} windows ({m['window_s']:g} s, hop {m['hop_s']:g} s) from "
      f"{v['n_clips']} val clips; music windows more than 20 dB below their clip's median "
      "level (gaps, release tails) are left out, as in training. Accuracy over all five "
      f"classes {v['window_accuracy_all']:.3f} (FP32 {_f(v.get('window_accuracy_all_fp32'))}); "
      f"4-style (music windows, argmax over all five labels) {v['window_accuracy_4style']:.3f}; "
      "argmax over the four styles only (as if none could never win) "
      f"{v['window_accuracy_4style_genre_argmax']:.3f}.")
    a("")
    a("| class | precision | recall | F1 | windows |")
    a("|---|---|---|---|---|")
    for lab, row in v["per_class"].items():
        a(f"| {lab} | {_f(row['precision'])} | {_f(row['recall'])} | {_f(row['f1'])} | "
          f"{row['support']} |")
    a("")
    a("![confusion matrix](model/confusion.png)")
    a("")
    joined = (f" Val excerpts are shorter than 30 s, so up to {v['clips_joined']} excerpts of "
              "the same class (same piece/tune first) are joined into one clip."
              if v["clips_joined"] > 1 else "")
    a(f"**30 s clips** (majority of windows; median clip {v['clip_seconds_median']:.0f} s): "
      f"4-style {v['clip_accuracy_4style']:.3f} over {v['n_music_clips']} music clips; all "
      f"five classes {v['clip_accuracy_all']:.3f}.{joined}")
    a("")
    a(f"**No music**: {v['none_rejected']:.3f} of none windows called none, "
      f"{v['music_called_none']:.3f} of music windows called none (engine argmax alone). With "
      "the listener's silence gate (windows below the level floor are none whatever the "
      f"engine says): {v['none_rejected_with_gate']:.3f} and "
      f"{v['music_called_none_with_gate']:.3f}.")
    a("")
    a("Accuracy by piano timbre / none kind and by source (all five classes):")
    a("")
    a("| group | value | accuracy | windows |")
    a("|---|---|---|---|")
    for grp, d in v["by"].items():
        for k_, row in d.items():
            a(f"| {grp} | {k_} | {row['accuracy']:.3f} | {row['windows']} |")
    a("")
    a("## Robustness")
    a("")
    a(f"{rob['clips']} val clips ({rob['clips_per_genre']} per style, distinct pieces where "
      "the plan has them) rendered **dry** (same performance, timbre and source rate as the "
      "val clip, no stage-mic treatment), then one condition at a time. Windows every "
      f"{ROBUST_HOP_S:g} s. Dry, no noise: accuracy {rob['clean']['accuracy']:.3f}. "
      f"Noise: {rob['noise']}. Reverb: {rob['reverb_how']}.")
    a("")
    a("| SNR (dB) | 4-style accuracy | music called none | windows |")
    a("|---|---|---|---|")
    for k_, row in rob["snr"].items():
        a(f"| {k_} | {row['accuracy']:.3f} | {row['called_none']:.3f} | {row['windows']} |")
    a("")
    a("| RT60 (s) | 4-style accuracy | music called none | windows |")
    a("|---|---|---|---|")
    for k_, row in rob["reverb"].items():
        a(f"| {k_} | {row['accuracy']:.3f} | {row['called_none']:.3f} | {row['windows']} |")
    a("")
    a("![accuracy vs SNR](model/robustness_snr.png) "
      "![accuracy vs reverb](model/robustness_reverb.png)")
    a("")
    if "speed" in rob:
        a("Another piano and pianist, each change on its own, dry and clean: the whole "
          "recording detuned (replayed faster or slower by 2^(cents/1200), as from a piano "
          "tuned away from A440; the speed changes by under 3 %), the performance transposed "
          "(notes kept on the 88 keys) or played faster or slower (on top of the humanised "
          "tempo, which already varies by up to ±15 %), then rendered as the clip was. "
          "Training already covers some of this: performances at tempos within ±15 %, and "
          "feature-space shifts of up to 1.5 mel bands and time stretches of up to ±15 % "
          "(training.train).")
        a("")
        a("| change | value | 4-style accuracy | music called none | windows |")
        a("|---|---|---|---|---|")
        a(f"| none (dry, clean) | | {rob['clean']['accuracy']:.3f} | "
          f"{rob['clean']['called_none']:.3f} | {rob['clean']['windows']} |")
        for grp, name, unit in (("detune_cents", "detune", " cents"),
                                ("transpose_semitones", "transpose", " semitones"),
                                ("speed", "speed", "x")):
            for k_, row in rob[grp].items():
                a(f"| {name} | {k_}{unit} | {row['accuracy']:.3f} | {row['called_none']:.3f} "
                  f"| {row['windows']} |")
        a("")
    a("## Calibration")
    a("")
    a(f"ECE ({ECE_BINS} equal-width bins, top-1 INT8 probability vs correctness, all five "
      f"classes, val windows): **{v['ece']:.3f}**; mean confidence {v['mean_confidence']:.3f} "
      f"against accuracy {v['window_accuracy_all']:.3f}.")
    a("")
    a("![reliability diagram](model/reliability.png)")
    a("")
    a("## Responsiveness (the box's own listener)")
    a("")
    a(f"{r['medleys']} medleys ({r['audio_minutes']} min) built from val pieces only: each "
      "a random order of the four styles plus one more (no style twice in a row), segments of "
      f"{res['seg_s'][0]:g}–{res['seg_s'][1]:g} s, one piano timbre per medley, "
      f"{LEAD_S:g} s of room noise first; the dry segments are joined back to back and the "
      "whole medley goes through one stage-mic treatment (one room, mic, noise bed, gain). "
      "Fed hop by hop to `Listener` (as `appliance simulate` feeds it) with the bundle's "
      f"smoothing ({r['smoothing']['from']}: "
      + ", ".join(f"{k} {v_}" for k, v_ in r["smoothing"].items() if k != "from")
      + "). A change's delay is the time from the change to the "
      "first estimate (end of its window) whose smoothed genre is the new style; a change "
      "not named before the next one counts as the whole segment. Spurious: any change of "
      "the smoothed genre (none included) inside a segment after its style was first named.")
    a("")
    a(f"- {r['changes']} changes: median {_f(r['change_delay_median_s'], '{:.2f}')} s, p95 "
      f"{_f(r['change_delay_p95_s'], '{:.2f}')} s, max {_f(r['change_delay_max_s'], '{:.2f}')} s, "
      f"missed {r['missed_changes']}. Counting a change only once the new style then stays "
      f"named for {r['held_s']:g} s: median {_f(r['held_change_delay_median_s'], '{:.2f}')} s, "
      f"p95 {_f(r['held_change_delay_p95_s'], '{:.2f}')} s.")
    a(f"- Music start → first style named: median {_f(r['first_style_median_s'], '{:.2f}')} s, "
      f"max {_f(r['first_style_max_s'], '{:.2f}')} s; → the right style: median "
      f"{_f(r['first_correct_style_median_s'], '{:.2f}')} s, max "
      f"{_f(r['first_correct_style_max_s'], '{:.2f}')} s.")
    a(f"- Spurious changes: {r['spurious_changes']} in {r['steady_minutes']} min of steady "
      f"playing = {_f(r['spurious_per_10min'], '{:.2f}')} per 10 min.")
    a("")
    a("| medley | timbre | styles | change delays (s) | first style (s) | spurious |")
    a("|---|---|---|---|---|---|")
    for i, md in enumerate(r["per_medley"]):
        a(f"| {i + 1} | {md['timbre']} | {' → '.join(md['styles'])} | "
          f"{', '.join('missed' if d is None else f'{d:.1f}' for d in md['delays'])} | "
          f"{_f(md['first_any'], '{:.1f}')} | {md['spurious']} |")
    a("")
    a("## Cost")
    a("")
    a(f"`training.bench_engine` on this machine, one thread: front end "
      f"{_f(c.get('frontend_ms'), '{:.2f}')} ms + INT8 engine {_f(c.get('int8_ms'), '{:.2f}')} ms "
      f"= **{_f(c.get('cost_ms_per_window'), '{:.2f}')} ms per window** (FP32 engine "
      f"{_f(c.get('fp32_ms'), '{:.2f}')} ms); {c.get('params')} parameters, INT8 model "
      f"{(c.get('int8_bytes') or 0) / 1024:.0f} KiB. The streaming listener (incremental front "
      f"end) averaged {_f(r['listener_ms_per_window_mean'], '{:.2f}')} ms per window over the "
      "medleys."
      + (f" Peer (Cnn14-sized, random weights, FP32): {c['peer_fp32_ms']:.1f} ms per window, "
         f"{c['peer_params'] / 1e6:.0f} M parameters." if "peer_fp32_ms" in c else "")
      + f" {res.get('cost_note', '')}")
    a("")
    a("## Licenses")
    a("")
    for split in ("train", "val"):
        lic = m.get("licenses", {}).get(split, {})
        a(f"**{split}**:")
        a("")
        for k_, v_ in lic.items():
            a(f"- {k_}: {v_}" + (" pieces" if isinstance(v_, int) else ""))
        a("")
    a("## Known weaknesses")
    a("")
    for w in res["weaknesses"]:
        a(f"- {w}")
    a("")
    out.write_text("\n".join(L) + "\n")


def weaknesses(res: dict) -> list[str]:
    v, rob = res["val"], res["robustness"]
    labels = res["labels"]
    cm = np.array(v["confusion"])
    off = cm.copy()
    np.fill_diagonal(off, 0)
    i, j = np.unravel_index(off.argmax(), off.shape)
    worst = min(v["per_class"], key=lambda k: v["per_class"][k]["recall"])
    r = res["responsiveness"]
    from training.render import TIMBRES

    tim = {k: row["accuracy"] for k, row in v["by"]["timbre (none: kind)"].items()
           if k in {t.name for t in TIMBRES}} or {"?": float("nan")}
    tmin = min(tim.items(), key=lambda kv: kv[1])
    tmax = max(tim.items(), key=lambda kv: kv[1])
    dry = rob["clean"]["accuracy"]
    snr_drop = next((k for k, row in rob["snr"].items() if row["accuracy"] < dry - 0.05), None)
    rt_drop = next((k for k, row in rob["reverb"].items() if row["accuracy"] < dry - 0.05), None)
    from collections import Counter

    from training.dataset import manifest_rows

    rag = "; ".join(
        f"{sp} " + ", ".join(f"{n} {c.split(',')[0]}" for c, n in Counter(
            r["composer"] for r in manifest_rows()
            if r["genre"] == "ragtime" and r["split"] == sp).most_common())
        for sp in ("train", "val")) + " pieces"
    out = [
        "**Rendered-only data.** Every training and validation window is MIDI rendered "
        "through five General-MIDI soundfont pianos (FluidR3, TimGM6mb, MuseScore) with "
        "synthetic rooms and noise. Validation shares that synthesis chain with training, so "
        "these numbers are an upper bound for a real instrument: no real piano, real room, "
        "real microphone or real pianist was ever heard. Sampled soundfonts lack sympathetic "
        "resonance, real pedal noise, hammer/action noise and the tuning of an actual piano.",
        "**Jazz is a construction.** Jazz 'piano' is right-hand lines transcribed from horn "
        "solos (Weimar Jazz Database; folded into the piano range) or generated lines, over "
        "left-hand comping generated by mma from chord charts. A real jazz pianist's voicings, "
        "block chords, stride or solo-ballad playing are not in the data; the model may be "
        "keying on mma's comping patterns.",
        f"**Ragtime is nearly all Joplin**: {rag}. Novelty rags, stride and modern ragtime "
        "players are missing, and 'ragtime' vs 'jazz' for stride-like playing is undefined "
        "by this data.",
        "**Classical vs baroque** are scored pieces humanised by rules (tempo drift, rubato, "
        "velocity shaping, pedal). Real performances of the same pieces differ in pedalling "
        "and articulation more than the rules model.",
        f"Largest confusion on val windows: true **{labels[i]}** called **{labels[j]}** "
        f"({int(off[i, j])} windows); lowest recall: **{worst}** "
        f"({v['per_class'][worst]['recall']:.2f}).",
        f"Noise: 4-style accuracy {rob['clean']['accuracy']:.2f} dry, "
        f"{rob['snr']['20']['accuracy']:.2f} at 20 dB, {rob['snr']['10']['accuracy']:.2f} at "
        f"10 dB, {rob['snr']['0']['accuracy']:.2f} at 0 dB SNR"
        + (f" (more than 5 points below dry from {snr_drop} dB)" if snr_drop else "")
        + f"; reverb: {rob['reverb']['0.8']['accuracy']:.2f} at RT60 0.8 s, "
        f"{rob['reverb']['2.5']['accuracy']:.2f} at 2.5 s"
        + (f" (more than 5 points below dry from {rt_drop} s)" if rt_drop else "")
        + ". The noise and room models are the synthetic ones training also used (the babble "
        "aside), so real rooms may well be harder than these curves.",
        *([_tuning_key_speed(rob)] if "speed" in rob else []),
        "**What this evaluation cannot say**: accuracy on real pianos, real rooms and real "
        "microphones (the issue's held-out human recordings); behaviour with a singer, another "
        "instrument or an audience singing along; pieces outside the corpus' composers; "
        "styles played 'in between' (a classical pianist improvising, ragtime played with swing); "
        "latency on the Jetson itself (TensorRT) — cost here is this x86 machine's CPU.",
        *([f"**The smoothed genre flickers**: {r['spurious_per_10min']:.0f} changes per 10 min "
           "of steady playing against a target of 1, with the listener's smoothing "
           f"({r['smoothing']['from']}: {smoothing_words(r['smoothing'])}). With about one "
           f"window in {1 / max(1e-9, 1 - v['window_accuracy_4style']):.0f} wrong, and wrong "
           "windows coming in runs (a passage that sounds like another style), smoothing "
           "that still names a change within 3 s cannot hold every style; a better window "
           "model is needed. Smoothing is chosen on dev medleys, never on these."]
          if (r.get("spurious_per_10min") or 0) > 1 else []),
        f"**Timbre dependence**: window accuracy ranges from {tmin[1]:.2f} ({tmin[0]}) to "
        f"{tmax[1]:.2f} ({tmax[0]}) across the five soundfont pianos; a real piano is a sixth "
        "timbre the model never heard.",
        f"Jazz is the easiest class (recall {v['per_class'].get('jazz', {}).get('recall', 0):.2f})"
        " — possibly because its construction (horn lines, mma comping patterns) is easy to "
        "spot rather than because the model understands swing; do not expect the same on "
        "real jazz pianists.",
        "Medleys join segments with a hard cut under one room; a pianist segueing through a "
        f"transition is slower to call. Only {res['responsiveness']['changes']} changes were "
        "measured, so the p95 delay is a rough figure.",
    ]
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m training.evaluate",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("engine", type=Path, help="engine bundle folder (engines/NAME-VERSION)")
    ap.add_argument("--quick", action="store_true", help="a few clips, one short medley")
    ap.add_argument("--out", type=Path, default=Path("docs"),
                    help="report folder: MODEL.md there, PNGs and metrics.json in model/")
    ap.add_argument("--peer", action="store_true",
                    help="also time a Cnn14-sized peer model in the cost section")
    ap.add_argument("--medleys", type=int, default=None, help="number of medleys (default 8)")
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
    res["robustness"] = eval_robustness(b, clips, a.robust_clips or (1 if a.quick else 10), log)
    log(f"robustness done ({time.monotonic() - t0:.0f} s)")
    seg_s = (15.0, 20.0) if a.quick else (40.0, 60.0)
    res["seg_s"] = seg_s
    res["responsiveness"] = eval_responsiveness(
        b, a.medleys or (1 if a.quick else 8), seg_s, 3 if a.quick else 5, log)
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
