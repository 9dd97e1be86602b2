"""How pianists play, measured from MIDI alone, beside what ``humanise`` makes of scores.

    python -m training.experiments.performance_stats [--quick] [--json OUT] [--compare BEFORE]

Sets: the human performances of ``more/performances`` (Batik, MAESTRO baroque and classical,
Welte rolls), the jazz pianist of ``more/jazz``, the ragtime sequences of ``more/ragtime``
(pedal only), and keyboard scores of the three score genres rendered through the current
``training.perform.humanise`` (the works the performances play first, then a hashed sample).

The unit of analysis is a 30 s window (``WIN_S``): velocity, timing and articulation are
measured per window and summarised by the median over windows; a 30 s humanised excerpt gets
its own ``humanise`` call, as a training clip does. Tempo needs a score: performances are
aligned to the same work's score in the corpus (DTW over onset groups, pitch-set cost), and
the local tempo factor (score seconds per performed second over 3 s) is read off the path.
``--json`` keeps the summary; ``--compare`` prints it beside an earlier one (before/after).
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training import DATA, hash_share, perform
from training.perform import Note, excerpt, humanise, read_midi, read_pedal, read_performance

GROUP_S = 0.05  # onsets within this of a group's first onset are one chord
WIN_S = 30.0  # analysis window (velocity, timing, articulation, tempo windows)
CLIP_S = 12.0  # the training clip length: "is the pedal used in a clip?"
SMOOTH_S = 4.0  # moving average of velocity: slow dynamics vs note-to-note
TEMPO_HALF_S = 1.5  # local tempo factor: slope over ±1.5 s of performed time
TEMPO_STEP_S = 0.5
MATCH_S = 0.1  # a note counts as aligned if a same-pitch note lies this close
MAX_EVENTS = 9000  # longer performances are not aligned (DTW memory: n × m float32)
MAX_WINDOWS = 6  # windows per piece (evenly spread), so long pieces do not dominate
# What this script measured on the human performances (Batik + MAESTRO, 2026-12-03), and how
# close humanise must come to each (absolute): docs/experiments/human-playing.md. The tests
# hold humanise to these; rerun the script when the corpus or humanise changes.
HUMAN: dict[str, float] = {
    "vel_mean": 63.3, "vel_sd": 13.2, "vel_slow_sd": 6.0, "vel_fast_sd": 11.1,
    "vel_melody": 12.0, "async_ms": 13.5, "lead_ms": -5.2, "art_ratio": 0.81,
    "legato_frac": 0.35, "clip_tempo_sd": 0.084, "win_sd": 0.059, "win_dip": 0.90,
    "win_lo": 0.71, "win_hi": 1.20, "ped_clip_frac": 0.895, "ped_down_frac": 0.29,
    "ped_per_min": 34.3, "ped_press_s": 0.40, "ped_gap_s": 0.42}
TOLERANCE: dict[str, float] = {
    "vel_mean": 5.0, "vel_sd": 2.5, "vel_slow_sd": 1.5, "vel_fast_sd": 2.0,
    "vel_melody": 3.0, "async_ms": 3.0, "lead_ms": 3.0, "art_ratio": 0.06,
    "legato_frac": 0.1, "clip_tempo_sd": 0.015, "win_sd": 0.015, "win_dip": 0.03,
    "win_lo": 0.06, "win_hi": 0.06, "ped_clip_frac": 0.1, "ped_down_frac": 0.08,
    "ped_per_min": 8.0, "ped_press_s": 0.1, "ped_gap_s": 0.15}
# the per-genre pedal chances the dataset used before (for "before" runs only)
OLD_PEDAL = {"baroque": 0.15, "classical": 0.55, "ragtime": 0.45}
NON_KEYBOARD = ("organ", "trio", "chorale", "chamber", "violin", "cello", "flute", "concert",
                "quartet", "symphony", "sextet", "quintet", "orchestra", "oboe", "clarinet",
                "wind", "verset", "lute")


# ---------------------------------------------------------------- note-level measures


def onset_groups(starts: np.ndarray, width: float = GROUP_S) -> list[np.ndarray]:
    """Indices of near-simultaneous notes (a chord as played), in onset order: a group takes
    every later onset within ``width`` of its first one."""
    order = np.argsort(starts, kind="stable")
    s = starts[order]
    groups: list[np.ndarray] = []
    i = 0
    while i < len(s):
        j = int(np.searchsorted(s, s[i] + width, side="left"))
        j = max(j, i + 1)
        groups.append(order[i:j])
        i = j
    return groups


def _arrays(notes: list[Note]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return (np.array([n.start for n in notes], dtype=float),
            np.array([n.end for n in notes], dtype=float),
            np.array([n.pitch for n in notes], dtype=int),
            np.array([n.velocity for n in notes], dtype=float))


def velocity_stats(notes: list[Note]) -> dict[str, float]:
    """Mean and sd of velocity; sd of its ``SMOOTH_S`` moving average (slow dynamics) and of
    the residual (note-to-note); top note of a chord minus the mean of the others."""
    st, _, pi, ve = _arrays(notes)
    order = np.argsort(st, kind="stable")
    st, pi, ve = st[order], pi[order], ve[order]
    cs = np.concatenate([[0.0], np.cumsum(ve)])
    lo = np.searchsorted(st, st - SMOOTH_S / 2, side="left")
    hi = np.searchsorted(st, st + SMOOTH_S / 2, side="right")
    avg = (cs[hi] - cs[lo]) / (hi - lo)
    mel = []
    for g in onset_groups(st):
        if len(g) >= 2:
            top = g[np.argmax(pi[g])]
            if np.sum(pi[g] == pi[top]) == 1:
                mel.append(ve[top] - np.mean(ve[g[g != top]]))
    return {"vel_mean": float(ve.mean()), "vel_sd": float(ve.std()),
            "vel_slow_sd": float(avg.std()), "vel_fast_sd": float((ve - avg).std()),
            "vel_melody": float(np.mean(mel)) if mel else float("nan")}


def timing_stats(notes: list[Note]) -> dict[str, float]:
    """Chord asynchrony: median onset spread (ms) of groups of two or more notes, and the
    median lead of the top note over the mean of the others (ms; negative = melody early)."""
    st, _, pi, _ = _arrays(notes)
    spread, lead = [], []
    for g in onset_groups(st):
        if len(g) >= 2:
            spread.append(st[g].max() - st[g].min())
            top = g[np.argmax(pi[g])]
            lead.append(st[top] - np.mean(st[g[g != top]]))
    if not spread:
        return {"async_ms": float("nan"), "lead_ms": float("nan")}
    return {"async_ms": 1000 * float(np.median(spread)), "lead_ms": 1000 * float(np.median(lead))}


def articulation_stats(notes: list[Note]) -> dict[str, float]:
    """Duration / inter-onset interval to the next chord (median; IOIs up to 2 s), and for the
    top voice the share of steps whose note is still held at the next onset (legato) and the
    median overlap of those (ms)."""
    st, en, pi, _ = _arrays(notes)
    groups = onset_groups(st)
    ratios, overlaps = [], []
    n_steps = 0
    for a, b in zip(groups[:-1], groups[1:], strict=True):
        t_next = st[b].min()
        ioi = t_next - st[a].min()
        if not 0.0 < ioi <= 2.0:
            continue
        ratios.extend((en[a] - st[a]) / ioi)
        ta, tb = a[np.argmax(pi[a])], b[np.argmax(pi[b])]
        if pi[ta] != pi[tb]:
            n_steps += 1
            if en[ta] > st[tb]:
                overlaps.append(en[ta] - st[tb])
    return {"art_ratio": float(np.median(ratios)) if ratios else float("nan"),
            "legato_frac": len(overlaps) / n_steps if n_steps else float("nan"),
            "overlap_ms": 1000 * float(np.median(overlaps)) if overlaps else float("nan")}


# ---------------------------------------------------------------- pedal


def pedal_presses(pedal: list[tuple[float, int]], end: float) -> list[tuple[float, float]]:
    """(down, up) intervals of the sustain pedal (value >= 64 is down); one still down at the
    end is closed at ``end``."""
    out: list[tuple[float, float]] = []
    down: float | None = None
    for t, v in sorted(pedal, key=lambda e: e[0]):
        if v >= 64 and down is None:
            down = t
        elif v < 64 and down is not None:
            out.append((down, t))
            down = None
    if down is not None and end > down:
        out.append((down, end))
    return out


def pedal_stats(pedal: list[tuple[float, int]], notes: list[Note],
                clip_s: float = CLIP_S) -> dict[str, float | list[float]]:
    """Share of time the pedal is down, presses per minute, press and gap lengths, share of
    ``clip_s`` clips with the pedal down at some point, and the pedal's timing against onsets:
    press after the last onset (ms) and release minus the nearest onset (ms)."""
    st, en, _, _ = _arrays(notes)
    t0, t1 = float(st.min()), float(en.max())
    presses = [(a, b) for a, b in pedal_presses(pedal, t1) if b > t0 and b > a]
    dur = t1 - t0
    down = sum(min(b, t1) - max(a, t0) for a, b in presses)
    lens = [b - a for a, b in presses]
    gaps = [c - b for (_, b), (c, _) in zip(presses[:-1], presses[1:], strict=True)]
    n_clips = max(1, int(dur // clip_s))
    used = 0
    for k in range(n_clips):
        c0, c1 = t0 + k * clip_s, t0 + (k + 1) * clip_s
        used += any(a < c1 and b > c0 for a, b in presses)
    ons = np.unique(st)
    lag, rel = [], []
    for a, b in presses:
        i = np.searchsorted(ons, a, side="right") - 1
        if i >= 0 and a - ons[i] < 1.0:
            lag.append(a - ons[i])
        j = int(np.argmin(np.abs(ons - b)))
        if abs(ons[j] - b) < 0.5:
            rel.append(b - ons[j])
    return {"_lens": lens, "_gaps": gaps,
            "ped_used": float(bool(presses)), "ped_down_frac": down / dur if dur > 0 else 0.0,
            "ped_per_min": 60.0 * len(presses) / dur if dur > 0 else 0.0,
            "ped_press_s": float(np.median(lens)) if lens else float("nan"),
            "ped_gap_s": float(np.median(gaps)) if gaps else float("nan"),
            "ped_clip_frac": used / n_clips,
            "ped_lag_ms": 1000 * float(np.median(lag)) if lag else float("nan"),
            "ped_release_ms": 1000 * float(np.median(rel)) if rel else float("nan")}


# ---------------------------------------------------------------- alignment and tempo


@dataclass
class Alignment:
    score_t: np.ndarray  # anchor times in the score (s)
    perf_t: np.ndarray  # the same anchors in the performance (s)
    score_match: float  # share of score notes with a same-pitch performed note near the path
    perf_match: float  # share of performed notes with a same-pitch score note near the path

    @property
    def good(self) -> bool:
        """Aligned well: most of what was played is explained by the score (ornaments and
        wrong notes aside) and at least half the score was found (repeats may be skipped)."""
        return self.perf_match >= 0.7 and self.score_match >= 0.5 and len(self.score_t) >= 40


def _events(notes: list[Note], width: float) -> tuple[np.ndarray, np.ndarray]:
    st, _, pi, _ = _arrays(notes)
    groups = onset_groups(st, width)
    times = np.array([np.median(st[g]) for g in groups])
    mat = np.zeros((len(groups), 128), dtype=np.float32)
    for k, g in enumerate(groups):
        mat[k, pi[g]] = 1.0
    return times, mat


def dtw_path(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DTW between two pitch-incidence sequences (rows: events). Cost 1 - Dice overlap of the
    pitch sets; steps (1,1), (1,0), (0,1). The path runs from the first to the last event
    of ``b`` (the performance) but may start and end anywhere in ``a`` (the score): a
    performance may play one movement of several, or stop early."""
    n, m = len(a), len(b)
    nb = b.sum(1)
    acc = np.empty((n, m), dtype=np.float32)
    prev = None
    for i in range(n):
        c = 1.0 - 2.0 * (b @ a[i]) / np.maximum(nb + a[i].sum(), 1.0)
        cs = np.cumsum(c.astype(np.float64))
        if prev is None:
            row = cs
        else:
            e = np.empty(m)
            e[0] = 0.0  # free start in a
            e[1:] = np.minimum(prev[1:], prev[:-1])
            row = cs + np.minimum.accumulate(e - (cs - c))
        acc[i] = row
        prev = row
    i, j = int(np.argmin(acc[:, m - 1])), m - 1
    pi, pj = [i], [j]
    while j > 0:
        if i == 0:
            j -= 1
        else:
            k = int(np.argmin([acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1]]))
            i, j = (i - 1, j - 1) if k == 0 else (i - 1, j) if k == 1 else (i, j - 1)
        pi.append(i)
        pj.append(j)
    return np.array(pi[::-1]), np.array(pj[::-1])


def _match_share(src: list[Note], dst: list[Note], mapped: np.ndarray) -> float:
    """Share of ``src`` notes whose onset, mapped into ``dst``'s time, lies within MATCH_S of
    a ``dst`` note of the same pitch."""
    by_pitch: dict[int, np.ndarray] = defaultdict(lambda: np.empty(0))
    tmp: dict[int, list[float]] = defaultdict(list)
    for n in dst:
        tmp[n.pitch].append(n.start)
    for p, ts in tmp.items():
        by_pitch[p] = np.sort(np.array(ts))
    hit = 0
    for n, t in zip(src, mapped, strict=True):
        arr = by_pitch[n.pitch]
        if len(arr):
            k = np.searchsorted(arr, t)
            near = min(abs(arr[max(k - 1, 0)] - t), abs(arr[min(k, len(arr) - 1)] - t))
            hit += near <= MATCH_S
    return hit / max(len(src), 1)


def align(score: list[Note], perf: list[Note]) -> Alignment | None:
    """Align a performance to its score; None if either is too long to align here."""
    s_t, s_m = _events(score, 0.01)
    p_t, p_m = _events(perf, GROUP_S)
    if max(len(s_t), len(p_t)) > MAX_EVENTS or min(len(s_t), len(p_t)) < 5:
        return None
    pi, pj = dtw_path(s_m, p_m)
    inter = np.sum(s_m[pi] * p_m[pj], 1)
    cost = 1.0 - 2.0 * inter / (s_m[pi].sum(1) + p_m[pj].sum(1))
    best: dict[int, tuple[float, int]] = {}
    for i, j, c in zip(pi, pj, cost, strict=True):  # one partner per score event
        if c <= 0.34 and (i not in best or c < best[i][0]):
            best[i] = (float(c), int(j))
    used: dict[int, tuple[float, int]] = {}
    for i, (c, j) in best.items():  # and one per performed event
        if j not in used or c < used[j][0]:
            used[j] = (c, i)
    pairs = sorted((i, j) for j, (_, i) in used.items())
    si = np.array([p[0] for p in pairs], dtype=int)
    sj = np.array([p[1] for p in pairs], dtype=int)
    keep = np.ones(len(si), dtype=bool)
    keep[1:] = (np.diff(si) > 0) & (np.diff(sj) > 0)
    si, sj = si[keep], sj[keep]
    if len(si) < 2:
        return Alignment(s_t[si], p_t[sj], 0.0, 0.0)
    a_s, a_p = s_t[si], p_t[sj]
    # the score's share counts only the stretch the performance covers (one movement of a
    # concatenated work, or a performance that stops early)
    span = [n for n in score if a_s[0] <= n.start <= a_s[-1]]
    score_map = np.interp([n.start for n in span], a_s, a_p)
    perf_map = np.interp([n.start for n in perf], a_p, a_s)
    return Alignment(a_s, a_p, _match_share(span, perf, score_map),
                     _match_share(perf, score, perf_map))


def local_tempo(score_t: np.ndarray, perf_t: np.ndarray, half: float = TEMPO_HALF_S,
                step: float = TEMPO_STEP_S) -> tuple[np.ndarray, np.ndarray]:
    """Local tempo factor (score s per performed s, least squares over ±``half`` s of
    performed time) on a grid of performed time; NaN where the anchors are too few, cover
    too little, jump in the score (a skipped repeat) or give an implausible slope."""
    if len(perf_t) < 4:
        return np.empty(0), np.empty(0)
    grid = np.arange(perf_t[0] + half, perf_t[-1] - half + 1e-9, step)
    f = np.full(len(grid), np.nan)
    ds, dp = np.diff(score_t), np.diff(perf_t)
    jump = np.concatenate([(ds > 0.4) & (ds > 3.0 * dp), [False]])  # score skips ahead
    cj = np.concatenate([[0], np.cumsum(jump)])
    for k, t in enumerate(grid):
        lo, hi = np.searchsorted(perf_t, [t - half, t + half])
        if hi - lo < 4:
            continue
        p, s = perf_t[lo:hi], score_t[lo:hi]
        if p[-1] - p[0] < half or cj[hi - 1] - cj[lo] > 0:
            continue
        slope = np.polyfit(p, s, 1)[0]
        if 0.33 < slope < 3.0:
            f[k] = slope
    return grid, f


def tempo_stats(grid: np.ndarray, f: np.ndarray, win: float = WIN_S) -> dict[str, object]:
    """The median local factor (vs the notated tempo), the sd of log(f / median) over the
    whole stretch, and per ``win`` window of performed time: the sd of log(f / window median),
    the 5th percentile of f / window median (the depth of slowing) and the window's median."""
    ok = np.isfinite(f)
    if ok.sum() < 10:
        return {}
    med = float(np.median(f[ok]))
    out: dict[str, object] = {"tempo_global": med,
                              "tempo_sd": float(np.std(np.log(f[ok] / med))),
                              "tempo_lo": float(np.percentile(f[ok] / med, 1)),
                              "tempo_hi": float(np.percentile(f[ok] / med, 99)),
                              "win": []}
    t0 = grid[0]
    n_w = max(1, int((grid[-1] - t0) // win) + (1 if (grid[-1] - t0) % win > win / 2 else 0))
    out["n_win"] = n_w
    for k in range(n_w):
        sel = ok & (grid >= t0 + k * win) & (grid < t0 + (k + 1) * win)
        if sel.sum() < 0.5 * win / TEMPO_STEP_S:
            continue
        wm = float(np.median(f[sel]))
        out["win"].append({"win_sd": float(np.std(np.log(f[sel] / wm))),
                           "_ratios": (f[sel] / wm).tolist(),
                           "win_dip": float(np.percentile(f[sel] / wm, 5)),
                           "win_rel": float(np.log(wm / med)) if n_w > 1 else None,
                           "win_med": wm})
    return out


def final_ritardando(al: Alignment, score_end: float, span: float = 3.0) -> float | None:
    """Tempo over the last ``span`` s of performed time over the median tempo, if the
    alignment reaches the score's last second."""
    if not len(al.score_t) or al.score_t[-1] < score_end - 1.0:
        return None
    grid, f = local_tempo(al.score_t, al.perf_t)
    ok = np.isfinite(f)
    sel = al.perf_t >= al.perf_t[-1] - span
    if ok.sum() < 10 or sel.sum() < 3:
        return None
    end = (al.score_t[sel][-1] - al.score_t[sel][0]) / (al.perf_t[sel][-1] - al.perf_t[sel][0])
    return float(end / np.median(f[ok]))


# ---------------------------------------------------------------- corpus


def _rows(csv_path: Path) -> list[dict]:
    with open(csv_path, newline="") as fh:
        return list(csv.DictReader(fh))


def keyboard(title: str) -> bool:
    """A keyboard work (no "(quartet)", "(chorale)", "(organ)" ... tag in its title)."""
    tags = " ".join(re.findall(r"\(([^)]*)\)", title)).lower()
    return not any(w in tags for w in NON_KEYBOARD)


def score_files() -> list[tuple[str, Path, str]]:
    """(genre, path, title) of every keyboard score in midi/ and more/{baroque,classical}."""
    out = []
    for r in _rows(DATA / "midi" / "manifest.csv"):
        if r["genre"] in ("baroque", "classical", "ragtime") and keyboard(r["title"]):
            out.append((r["genre"], DATA / "midi" / r["path"], r["title"]))
    for g in ("baroque", "classical"):
        for r in _rows(DATA / "more" / f"{g}.csv"):
            if keyboard(r["title"]):
                out.append((g, DATA / "more" / r["path"], r["title"]))
    return out


def _mvt_key(label: str) -> tuple[int, str]:
    m = re.match(r"(\d+)(.*)", label)
    return (int(m.group(1)), m.group(2)) if m else (999, label)


def score_movements(work: str, scores: list[tuple[str, Path, str]]) -> list[tuple[str, Path]]:
    """(movement label, path) of the corpus's score of a performance's ``work`` key, matched
    by catalogue number (the two sets name works differently), in movement order."""
    names = [(p.name, p) for _, p, _ in scores]
    found: list[tuple[str, Path]] = []
    kind, _, num = work.partition(":")
    if kind == "mozart" and (m := re.fullmatch(r"k(\d+)", num)):
        k = m.group(1)
        for name, p in names:
            if (mm := re.match(rf"craigsapp-mozart__Mozart__.*-mvt-(\w+)-K-{k}\.mid$", name)):
                found.append((mm.group(1), p))
            elif (mm := re.match(rf"dcml-mozart__Mozart__.*K{k}-mvt-(\w+)\.mid$", name)):
                found.append((mm.group(1), p))
    elif kind == "haydn" and (m := re.fullmatch(r"hob16-(\d+)", num)):
        for name, p in names:
            if (mm := re.match(rf"craigsapp-haydn__Haydn__Sonata-Hob-XVI-{m.group(1)}-.*"
                               r"-mvt-(\w+?)-", name)):
                found.append((mm.group(1), p))
    elif kind == "scarlatti" and (m := re.fullmatch(r"k(\d+)", num)):
        k = int(m.group(1))
        pats = [rf"dcml-scarlatti__.*Sonata-K-{k}\.mid$", rf"sapp-scarlatti__.*Sonata-K{k:03d}-L",
                rf"snortum-scarlatti__.*Sonata-K{k:03d}\.mid$"]
        for pat in pats:  # one edition is enough
            hits = [p for name, p in names if re.match(pat, name)]
            if hits:
                found.append(("1", hits[0]))
                break
    elif kind == "bach" and (m := re.fullmatch(r"bwv(\d+)", num)):
        b = int(m.group(1))
        if 806 <= b <= 817:
            for name, p in names:
                if (mm := re.match(rf"dcml-bachsuites__.*-BWV-{b}-(\d+\w*?-[A-Za-z-]+)\.mid$",
                                   name)):
                    found.append((mm.group(1), p))
        fixed = {903: ["Chromatic-Fantasy-and-Fugue-BWV-903-Fantasy",
                       "Chromatic-Fantasy-and-Fugue-BWV-903-Fugue"],
                 802: ["Duetto-I"], 804: ["Duetto-III"]}
        for k, stem in enumerate(fixed.get(b, [])):
            found += [(str(k + 1), p) for name, p in names
                      if name == f"mutopia__Bach__{stem}.mid"]
    elif kind == "handel" and num == "hwv430":
        found += [("1", p) for name, p in names if "HWV-430" in name]
    seen, out = set(), []
    for lab, p in sorted(found, key=lambda e: _mvt_key(e[0])):
        if p not in seen:
            seen.add(p)
            out.append((lab, p))
    return out


def performed_movement(title: str) -> str | None:
    """Which movement a performance title names ("movement 2", "First Movement", "I.",
    "Prelude"), or None for a whole work."""
    if (m := re.search(r"movement (\d+)", title)):
        return m.group(1)
    if re.search(r"First Movement|1st mov|\bI\. |\bI - ", title):
        return "1"
    if re.search(r"\bII\. |\bII - ", title):
        return "2"
    if "Prelude" in title:
        return "Prelude"
    return None


def pick_movements(mvts: list[tuple[str, Path]], which: str | None) -> list[tuple[str, Path]]:
    """The movements a performance plays: all (None), the numbered one, or the Prelude."""
    if which is None:
        return mvts
    if which == "Prelude":
        return [m for m in mvts if "Prelude" in m[0]]
    return [m for m in mvts if _mvt_key(m[0])[0] == int(which)]


def concat_scores(paths: list[Path], gap: float = 2.0) -> tuple[list[Note], list[float]]:
    """Movements one after another (``gap`` s apart); also the start time of each."""
    out: list[Note] = []
    starts: list[float] = []
    t = 0.0
    for p in paths:
        notes = read_midi(p)
        starts.append(t)
        out += [Note(n.pitch, n.start + t, n.end + t, n.velocity) for n in notes]
        t = max(n.end for n in out) + gap
    return out, starts


def windows(notes: list[Note], length: float = WIN_S, most: int = MAX_WINDOWS) -> list[float]:
    """Start times of up to ``most`` non-overlapping windows, evenly spread over the piece."""
    if not notes:
        return []
    t0, t1 = notes[0].start, max(n.start for n in notes)
    n = max(1, int((t1 - t0) // length))
    ks = np.unique(np.linspace(0, n - 1, min(n, most)).round().astype(int))
    return [t0 + k * length for k in ks]


def window_stats(notes: list[Note]) -> dict[str, float] | None:
    """Velocity, timing and articulation of one window (None if under 30 notes)."""
    if len(notes) < 30:
        return None
    return velocity_stats(notes) | timing_stats(notes) | articulation_stats(notes)


# ---------------------------------------------------------------- the run


@dataclass
class Collect:
    win: dict[str, list[dict]]  # set -> per-window stats
    tempo: dict[str, list[dict]]  # set -> per-movement/excerpt tempo stats
    pedal: dict[str, list[dict]]  # set -> per-piece pedal stats
    align_log: list[dict]


def _perf_set(path: Path, genre: str) -> str:
    src = path.name.split("__")[0]
    if src == "batik":
        return "Batik"
    if src == "maestro":
        return f"MAESTRO {genre[:3]}"
    return "Welte"


def measure_performances(col: Collect, scores: list[tuple[str, Path, str]], quick: bool) -> None:
    """Windows and pedal of every human performance; tempo of those with a score here."""
    rows = _rows(DATA / "more" / "performances.csv")
    if quick:
        rows = [r for r in rows if hash_share("q" + r["path"]) < 0.3]
    t_start = time.time()
    for r in rows:
        path = DATA / "more" / r["path"]
        perf = read_performance(path)
        if len(perf.notes) < 30:
            continue
        name = _perf_set(path, r["genre"])
        for t in windows(perf.notes):
            ws = window_stats(excerpt(perf.notes, t, WIN_S))
            if ws:
                col.win[name].append(ws)
        col.pedal[name].append(pedal_stats(perf.pedal, perf.notes))
        mvts = pick_movements(score_movements(r["work"], scores),
                              performed_movement(r["title"]))
        if not mvts:
            continue
        score, starts = concat_scores([p for _, p in mvts])
        al = align(score, perf.notes)
        entry = {"perf": r["path"], "set": name, "score": [p.name for _, p in mvts],
                 "events_too_many": al is None}
        if al is not None:
            entry |= {"score_match": round(al.score_match, 3),
                      "perf_match": round(al.perf_match, 3), "good": al.good}
        col.align_log.append(entry)
        if al is None or not al.good:
            continue
        bounds = starts[1:] + [float("inf")]
        for k, (s0, s1) in enumerate(zip(starts, bounds, strict=True)):
            sel = (al.score_t >= s0) & (al.score_t < s1)
            sub = Alignment(al.score_t[sel], al.perf_t[sel], al.score_match, al.perf_match)
            ts = tempo_stats(*local_tempo(sub.score_t, sub.perf_t))
            if not ts:
                continue
            mv_end = max(n.start for n in score if s0 <= n.start < s1)
            ts["final_rit"] = final_ritardando(sub, mv_end)
            ts["movement"] = str(mvts[k][1].name)
            col.tempo[name].append(ts)
    print(f"# performances: {len(rows)} files in {time.time() - t_start:.0f} s", flush=True)


def measure_jazz(col: Collect, quick: bool) -> None:
    rows = [r for r in _rows(DATA / "more" / "jazz.csv") if hash_share("j" + r["path"]) <
            (0.08 if quick else 0.25)]
    for r in rows:
        perf = read_performance(DATA / "more" / r["path"])
        if len(perf.notes) < 30:
            continue
        for t in windows(perf.notes):
            ws = window_stats(excerpt(perf.notes, t, WIN_S))
            if ws:
                col.win["jazz pianist"].append(ws)
        col.pedal["jazz pianist"].append(pedal_stats(perf.pedal, perf.notes))
    print(f"# jazz: {len(rows)} files", flush=True)


def measure_ragtime_pedal(col: Collect, quick: bool) -> None:
    rows = [r for r in _rows(DATA / "more" / "ragtime.csv") if hash_share("r" + r["path"]) <
            (0.04 if quick else 0.12)]
    with_pedal = 0
    for r in rows:
        path = DATA / "more" / r["path"]
        ped = read_pedal(path)
        if not any(v >= 64 for _, v in ped):
            continue
        with_pedal += 1
        col.pedal["ragtime seq."].append(pedal_stats(ped, read_midi(path)))
    col.pedal["ragtime seq."].append({"files_sampled": len(rows), "files_with_pedal": with_pedal})
    print(f"# ragtime: {with_pedal} of {len(rows)} sampled files carry pedal", flush=True)


def measure_humanised(col: Collect, scores: list[tuple[str, Path, str]], quick: bool,
                      pedal_for: dict[str, float], per_genre: int) -> None:
    """Score excerpts through ``humanise``: the works the performances play first."""
    aligned = {p for e in col.align_log for p in e["score"]}
    for genre in ("baroque", "classical", "ragtime"):
        mine = [(p, t) for g, p, t in scores if g == genre]
        first = [e for e in mine if e[0].name in aligned]
        rest = sorted((e for e in mine if e[0].name not in aligned),
                      key=lambda e: hash_share("h" + e[0].name))
        pick = (first[: per_genre // 2] + rest)[:per_genre]
        name = f"humanised {genre[:3]}"
        for path, _ in pick:
            notes = read_midi(path)
            for k, t in enumerate(windows(notes)):
                sc = excerpt(notes, t, WIN_S)
                if len(sc) < 30:
                    continue
                perf = humanise(sc, int(hash_share(f"{path.name}|{k}") * 1e9),
                                pedal=pedal_for[genre])
                ws = window_stats(perf.notes)
                if ws:
                    col.win[name].append(ws)
                col.pedal[name].append(pedal_stats(perf.pedal, perf.notes))
                al = align(sc, perf.notes)
                if al is not None and al.good:
                    ts = tempo_stats(*local_tempo(al.score_t, al.perf_t), win=WIN_S + 10)
                    if ts:
                        col.tempo[name].append(ts)
        print(f"# {name}: {len(pick)} scores", flush=True)


# ---------------------------------------------------------------- summary


def _med(vals: list[float]) -> float:
    v = np.array([x for x in vals if x is not None and np.isfinite(x)], dtype=float)
    return float(np.median(v)) if len(v) else float("nan")


def summarise(col: Collect) -> dict[str, dict[str, float]]:
    """One number per (set, measure): medians over windows, movements or pieces."""
    sets = sorted(set(col.win) | set(col.tempo) | set(col.pedal))
    human = ["Batik", "MAESTRO bar", "MAESTRO cla"]
    out: dict[str, dict[str, float]] = {}

    def one(win: list[dict], tempo: list[dict], ped: list[dict]) -> dict[str, float]:
        d: dict[str, float] = {}
        if win:
            for k in win[0]:
                d[k] = _med([w[k] for w in win])
            means = [w["vel_mean"] for w in win]
            d["vel_mean_p10"] = float(np.percentile(means, 10))
            d["vel_mean_p90"] = float(np.percentile(means, 90))
            d["n_windows"] = len(win)
        if tempo:
            d["n_tempo"] = len(tempo)
            for k in ("tempo_global", "tempo_sd", "tempo_lo", "tempo_hi"):
                d[k] = _med([t[k] for t in tempo])
            d["tempo_global_p10"] = float(np.percentile([t["tempo_global"] for t in tempo], 10))
            d["tempo_global_p90"] = float(np.percentile([t["tempo_global"] for t in tempo], 90))
            ws = [w for t in tempo for w in t["win"]]
            for k in ("win_sd", "win_dip"):
                d[k] = _med([w[k] for w in ws])
            ratios = [r for w in ws for r in w["_ratios"]]
            if ratios:
                d["win_lo"], d["win_hi"] = np.percentile(ratios, [1, 99]).tolist()
            # robust (1.4826 × MAD): a few free pieces (a fantasia) or misaligned stretches
            # should not set the spread
            rels = np.array([w["win_rel"] for w in ws if w["win_rel"] is not None])
            d["win_between_sd"] = (float(1.4826 * np.median(np.abs(rels - np.median(rels))))
                                   if len(rels) > 1 else float("nan"))
            if all(t.get("n_win") == 1 for t in tempo):  # one humanise call per excerpt
                d["clip_tempo_sd"] = float(np.std(np.log([t["tempo_global"] for t in tempo])))
            d["final_rit"] = _med([t.get("final_rit") for t in tempo])
        raw = [p for p in ped if "_lens" in p]
        ped = [p for p in ped if "ped_used" in p]
        lens = np.array([x for p in raw for x in p["_lens"]])
        gaps = np.array([x for p in raw for x in p["_gaps"]])
        if len(lens) > 10:
            d["ped_press_mean"] = float(lens.mean())
            d["ped_press_p10"], d["ped_press_p90"] = np.percentile(lens, [10, 90]).tolist()
        if len(gaps) > 10:
            d["ped_gap_mean"] = float(gaps.mean())
            d["ped_gap_p10"], d["ped_gap_p90"] = np.percentile(gaps, [10, 90]).tolist()
        if ped:
            d["n_pieces"] = len(ped)
            d["ped_used"] = float(np.mean([p["ped_used"] for p in ped]))
            for k in ("ped_down_frac", "ped_per_min", "ped_clip_frac"):
                d[k] = float(np.mean([p[k] for p in ped]))
            for k in ("ped_press_s", "ped_gap_s", "ped_lag_ms", "ped_release_ms"):
                d[k] = _med([p[k] for p in ped])
        return d

    for s in sets:
        out[s] = one(col.win.get(s, []), col.tempo.get(s, []), col.pedal.get(s, []))
    out["HUMAN"] = one([w for s in human for w in col.win.get(s, [])],
                       [t for s in human for t in col.tempo.get(s, [])],
                       [p for s in human for p in col.pedal.get(s, [])])
    hum = [s for s in sets if s.startswith("humanised")]
    out["humanised all"] = one([w for s in hum for w in col.win.get(s, [])],
                               [t for s in hum for t in col.tempo.get(s, [])],
                               [p for s in hum for p in col.pedal.get(s, [])])
    out["HUMAN"]["pianist_sd"] = pianist_spread(col)
    # a training clip gets one global tempo: its spread should cover both the pianists'
    # choice and the drift between the 30 s stretches of one performance
    out["HUMAN"]["clip_tempo_sd"] = float(np.hypot(out["HUMAN"]["pianist_sd"],
                                                   out["HUMAN"].get("win_between_sd", 0.0)))
    rag = [p for p in col.pedal.get("ragtime seq.", []) if "files_sampled" in p]
    if rag:
        out["ragtime seq."]["files_with_pedal"] = rag[0]["files_with_pedal"]
        out["ragtime seq."]["files_sampled"] = rag[0]["files_sampled"]
    return out


def pianist_spread(col: Collect) -> float:
    """Pooled sd of log global tempo among performances of the same movement by different
    pianists: the tempo choice itself, free of any error in the notated tempo."""
    by: dict[str, list[float]] = defaultdict(list)
    for s in ("Batik", "MAESTRO bar", "MAESTRO cla"):
        for t in col.tempo.get(s, []):
            by[t["movement"]].append(float(np.log(t["tempo_global"])))
    ss, dof = 0.0, 0
    for v in by.values():
        if len(v) >= 2:
            ss += float(np.sum((np.array(v) - np.mean(v)) ** 2))
            dof += len(v) - 1
    return float(np.sqrt(ss / dof)) if dof else float("nan")


MEASURES = [
    ("velocity", None),
    ("vel_mean", "mean velocity (median of windows)"),
    ("vel_mean_p10", "  10th pct of window means"),
    ("vel_mean_p90", "  90th pct of window means"),
    ("vel_sd", "velocity sd within 30 s"),
    ("vel_slow_sd", "  slow: sd of 4 s moving average"),
    ("vel_fast_sd", "  fast: note-to-note residual sd"),
    ("vel_melody", "top note minus rest of chord"),
    ("timing", None),
    ("async_ms", "chord onset spread, ms (median)"),
    ("lead_ms", "top-note lead, ms (neg = early)"),
    ("articulation", None),
    ("art_ratio", "duration / IOI (median)"),
    ("legato_frac", "top voice held into next onset"),
    ("overlap_ms", "  overlap when held, ms"),
    ("tempo (aligned)", None),
    ("n_tempo", "movements / excerpts aligned"),
    ("tempo_global", "tempo vs notated (median)"),
    ("tempo_global_p10", "  10th pct"),
    ("tempo_global_p90", "  90th pct"),
    ("pianist_sd", "sd log tempo, pianists same mvt"),
    ("win_between_sd", "sd log 30 s-window tempo in piece (robust)"),
    ("clip_tempo_sd", "sd log tempo between clips"),
    ("tempo_sd", "sd log local (3 s) tempo, piece"),
    ("win_sd", "sd log local tempo within 30 s"),
    ("win_dip", "5th pct local/30 s median"),
    ("win_lo", "1st pct local/30 s median"),
    ("win_hi", "99th pct local/30 s median"),
    ("tempo_lo", "1st pct local/piece median"),
    ("tempo_hi", "99th pct local/piece median"),
    ("final_rit", "last 3 s tempo / median"),
    ("pedal", None),
    ("n_pieces", "pieces / excerpts"),
    ("ped_used", "share using the pedal at all"),
    ("ped_clip_frac", "share of 12 s clips with pedal"),
    ("ped_down_frac", "share of time down"),
    ("ped_per_min", "presses per minute"),
    ("ped_press_s", "press length, s (median of pieces)"),
    ("ped_press_p10", "  all presses: 10th pct"),
    ("ped_press_p90", "  all presses: 90th pct"),
    ("ped_press_mean", "  all presses: mean"),
    ("ped_gap_s", "gap between presses, s (median)"),
    ("ped_gap_p10", "  all gaps: 10th pct"),
    ("ped_gap_p90", "  all gaps: 90th pct"),
    ("ped_gap_mean", "  all gaps: mean"),
    ("ped_lag_ms", "press after last onset, ms"),
    ("ped_release_ms", "release minus nearest onset, ms"),
    ("n_windows", "30 s windows"),
]

COLUMNS = ["HUMAN", "Batik", "MAESTRO bar", "MAESTRO cla", "Welte", "jazz pianist",
           "ragtime seq.", "humanised all", "humanised bar", "humanised cla", "humanised rag"]


def _fmt(v: float | None) -> str:
    if v is None or not np.isfinite(v):
        return "-"
    if abs(v) >= 100 or float(v).is_integer():
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.3f}" if abs(v) < 1 else f"{v:.2f}"


def table(summary: dict[str, dict[str, float]], columns: list[str],
          headers: list[str] | None = None) -> str:
    """Markdown table: measures down, sets across."""
    heads = headers or columns
    lines = ["| measure | " + " | ".join(heads) + " |",
             "|---|" + "---:|" * len(columns)]
    for key, label in MEASURES:
        if label is None:
            lines.append(f"| **{key}** |" + " |" * len(columns))
            continue
        vals = [_fmt(summary.get(c, {}).get(key)) for c in columns]
        if all(v == "-" for v in vals):
            continue
        lines.append(f"| {label} | " + " | ".join(vals) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m training.experiments.performance_stats",
                                 description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="about a third of the files")
    ap.add_argument("--per-genre", type=int, default=24, help="scores humanised per genre")
    ap.add_argument("--json", type=Path, help="write the summary (and alignment log) here")
    ap.add_argument("--compare", type=Path, help="an earlier --json: print before/after/human")
    a = ap.parse_args(argv)
    t0 = time.time()
    scores = score_files()
    col = Collect(defaultdict(list), defaultdict(list), defaultdict(list), [])
    measure_performances(col, scores, a.quick)
    measure_jazz(col, a.quick)
    measure_ragtime_pedal(col, a.quick)
    use = getattr(perform, "PEDAL_USE", None)
    pedal_for = OLD_PEDAL if use is None else {g: use for g in OLD_PEDAL}
    measure_humanised(col, scores, a.quick, pedal_for, a.per_genre // (3 if a.quick else 1))
    summary = summarise(col)
    good = [e for e in col.align_log if e.get("good")]
    print(f"\n# alignment: {len(col.align_log)} performances have a score in the corpus; "
          f"{sum(e['events_too_many'] for e in col.align_log)} too long to align; "
          f"{len(good)} aligned well (perf_match >= 0.7, score_match >= 0.5)")
    for e in col.align_log:
        print(f"#   {'ok ' if e.get('good') else 'no '} {e['perf'].split('/')[-1][:60]:60s} "
              f"score {e.get('score_match', '-')} perf {e.get('perf_match', '-')}")
    print()
    print(table(summary, [c for c in COLUMNS if c in summary]))
    if a.compare:
        before = json.loads(a.compare.read_text())["summary"]
        print("\n## before / after / human\n")
        comb = {"before": before.get("humanised all", {}),
                "after": summary.get("humanised all", {}), "HUMAN": summary.get("HUMAN", {})}
        print(table(comb, ["before", "after", "HUMAN"],
                    ["humanised before", "humanised after", "human (Batik + MAESTRO)"]))
        print("\n## within tolerance (after vs human)\n")
        for k, tol in TOLERANCE.items():
            h, v = comb["HUMAN"].get(k, float("nan")), comb["after"].get(k, float("nan"))
            ok = "ok " if abs(v - h) <= tol else "OFF"
            print(f"{ok} {k:15s} after {_fmt(v):>7s}  human {_fmt(h):>7s}  ± {tol}")
    if a.json:
        a.json.write_text(json.dumps({"summary": summary, "align": col.align_log}, indent=1,
                                     default=float))
    print(f"\n# {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
