"""Jazz piano performances, generated: there are no licensed solo jazz-piano scores.

Right hand: either a transcribed horn solo from the Weimar Jazz Database (real improvised
lines with their played timing), moved into the piano's right-hand range, or a simple
generated swing line over a chord chart. Left hand: comping made by Debian's ``mma`` from a
chord chart (the solo's own tune when a chart with its title exists), drums dropped, bass and
chord tracks folded into the left-hand range on piano.

Split: by tune title (SHA-1 of the normalised title, ~15 % val), so a tune — every solo over
it and its chart — sits on one side only.
"""

from __future__ import annotations

import csv
import re
import subprocess
import tempfile
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import mido
import numpy as np

from training import DATA, corpus
from training.perform import Note, Performance, humanise

SOLOS = DATA / "jazz_solos"
CHORDS = DATA / "jazz_chords"

GROOVES_SLOW = ("Evansish", "Ballad", "MellowJazz", "SlowJazz")
GROOVES_MID = ("Swing", "JazzCombo", "EasySwing", "Bebop", "ModernJazz")
GROOVES_FAST = ("Bebop", "FastSwing", "Swing", "JazzCombo")

RH_RANGE = (60, 91)  # right-hand lines
LH_CHORD_RANGE = (47, 69)
LH_BASS_RANGE = (31, 55)


def norm_title(title: str) -> str:
    t = title.lower().replace("&", "and")
    t = re.sub(r"^the\s+", "", t)
    return re.sub(r"[^a-z0-9]", "", t)


def title_split(title: str) -> str | None:
    """'train', 'dev' or 'val' for a tune, the same for every source that plays it (the jazz
    pianist's files, charts, horn solos; ``training.corpus.jazz_split``); None when the tune
    is reserved for the team's evaluation (never used)."""
    return corpus.jazz_split(title)


# --------------------------------------------------------------------------- charts


@dataclass(frozen=True)
class Chart:
    path: str
    title: str
    bars: tuple[tuple[str, ...], ...]  # chord symbols per bar (source spelling)


def parse_chart(path: Path) -> Chart | None:
    """A 4/4 chart from the chord corpus, or None (other metres, empty)."""
    title = ""
    metre = ""
    bars: list[tuple[str, ...]] = []
    for line in path.read_text(errors="replace").splitlines():
        if "=" in line:
            k, _, v = line.partition("=")
            if k.strip() == "Title":
                title = v.strip()
            elif k.strip() == "TimeSig":
                metre = v.strip()
            continue
        for cell in line.split("|"):
            chords = tuple(cell.split())
            if chords:
                bars.append(chords)
    if metre != "4 4" or not bars or not title:
        return None
    return Chart(str(path), title, tuple(bars))


@lru_cache(maxsize=1)
def charts() -> tuple[Chart, ...]:
    out = []
    for p in sorted((CHORDS / "SongDB").glob("*/*.txt")):
        c = parse_chart(p)
        if c is not None:
            out.append(c)
    return tuple(out)


@lru_cache(maxsize=1)
def charts_by_title() -> dict[str, Chart]:
    return {norm_title(c.title): c for c in charts()}


_ROOT = re.compile(r"^([A-G][b#]?)(.*)$")


def mma_chord(sym: str) -> str:
    """Source chord symbol -> a spelling mma surely knows (root + simplified quality)."""
    if sym in ("NC", "N.C."):
        return "z"
    m = _ROOT.match(sym.split("/")[0])
    if not m:
        return "z"
    root, q = m.groups()
    if q in ("", "add9", "sus2"):
        qq = ""
    elif q.startswith(("M7", "M9", "M13", "Maj", "maj")):
        qq = "maj7"
    elif q in ("6", "69", "M6"):
        qq = "6"
    elif q.startswith("m7b5") or q.startswith("h"):
        qq = "m7b5"
    elif q in ("m6", "m69"):
        qq = "m6"
    elif q.startswith(("m7", "m9", "m11", "m13")):
        qq = "m7"
    elif q.startswith("m"):
        qq = "m"
    elif q.startswith(("o", "dim")):
        qq = "dim7"
    elif q.startswith("+"):
        qq = "aug"
    elif q.startswith("sus"):
        qq = "sus4"
    elif q.startswith(("7", "9", "11", "13")):
        if "sus" in q:
            qq = "7sus"
        elif "b9" in q and "#" not in q:
            qq = "7b9"
        elif "#9" in q or "alt" in q:
            qq = "7#9"
        else:
            qq = "7"
    else:
        qq = ""
    return root + qq


def chord_pcs(sym: str) -> tuple[int, list[int]]:
    """Root pitch class and chord-tone pitch classes of an mma-style symbol (for lines)."""
    names = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
    m = _ROOT.match(sym)
    if not m:
        return 0, [0, 4, 7]
    r, q = m.groups()
    root = (names[r[0]] + (1 if "#" in r else -1 if "b" in r else 0)) % 12
    iv = {"": [0, 4, 7, 9], "maj7": [0, 4, 7, 11], "6": [0, 4, 7, 9], "m7b5": [0, 3, 6, 10],
          "m6": [0, 3, 7, 9], "m7": [0, 3, 7, 10], "m": [0, 3, 7, 10], "dim7": [0, 3, 6, 9],
          "aug": [0, 4, 8, 10], "sus4": [0, 5, 7, 10], "7sus": [0, 5, 7, 10],
          "7b9": [0, 4, 7, 10, 1], "7#9": [0, 4, 7, 10, 3], "7": [0, 4, 7, 10]}.get(q, [0, 4, 7])
    return root, [(root + i) % 12 for i in iv]


# --------------------------------------------------------------------------- solos


@dataclass(frozen=True)
class Solo:
    path: str
    title: str
    performer: str
    tempo: float  # average bpm (metadata) or a default


@lru_cache(maxsize=1)
def solos() -> tuple[Solo, ...]:
    meta: dict[str, dict[str, str]] = {}
    with open(SOLOS / "solos_metadata.csv", newline="") as f:
        for row in csv.DictReader(f):
            meta[row["base_name"]] = row
    out = []
    for p in sorted((SOLOS / "solos").glob("*_solo.csv")):
        base = p.name[: -len("_solo.csv")]
        row = meta.get(base)
        if row:
            title, performer = row["title"], row["performer"]
            try:
                tempo = float(row["avgtempo"])
            except ValueError:
                tempo = 160.0
        else:  # Performer_Title_FINAL
            parts = base.split("_")
            performer, title, tempo = parts[0], parts[1] if len(parts) > 1 else base, 160.0
        out.append(Solo(str(p), title, performer, tempo))
    return tuple(out)


def read_solo(path: str) -> np.ndarray:
    """(n, 3) array: pitch, onset_s, duration_s."""
    a = np.loadtxt(path, delimiter=",", ndmin=2)
    return a[np.argsort(a[:, 1], kind="stable")]


def fold(p: int, lo: int, hi: int) -> int:
    while p < lo:
        p += 12
    while p > hi:
        p -= 12
    return p


# --------------------------------------------------------------------------- comping


def groove_for(tempo: float, rng: np.random.Generator) -> str:
    pool = GROOVES_SLOW if tempo < 105 else GROOVES_FAST if tempo > 210 else GROOVES_MID
    return str(rng.choice(pool))


def mma_comping(bars: list[tuple[str, ...]], tempo: float, groove: str,
                rng: np.random.Generator) -> list[Note]:
    """mma comping of ``bars`` at ``tempo`` -> left-hand piano notes (no drums).

    mma humanises its grooves with Python's ``random``, unseeded unless told, so the same chart
    gave different comping on every render and a cold rebuild could not repeat a cached one.
    Its ``RndSeed`` is set from the source text, which keeps ``rng`` untouched."""
    lines = [f"Tempo {max(40, min(320, round(tempo)))}", f"Groove {groove}"]
    for i, bar in enumerate(bars, 1):
        cs = [mma_chord(c) for c in bar][:4]
        if len(cs) == 1:
            beats = [cs[0], "/", "/", "/"]
        elif len(cs) == 2:
            beats = [cs[0], "/", cs[1], "/"]
        elif len(cs) == 3:
            beats = [cs[0], cs[1], cs[2], "/"]
        else:
            beats = cs
        lines.append(f"{i} " + " ".join(beats))
    seed = zlib.crc32("\n".join(lines).encode())
    lines.insert(0, f"RndSeed {seed}")
    with tempfile.TemporaryDirectory(prefix="mma-") as td:
        src = Path(td) / "tune.mma"
        src.write_text("\n".join(lines) + "\n")
        r = subprocess.run(["mma", str(src)], cwd=td, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        out = Path(td) / "tune.mid"
        if r.returncode != 0 or not out.exists():
            raise RuntimeError(f"mma failed on groove {groove}: {r.stdout[-400:]}")
        mid = mido.MidiFile(str(out))
    notes: list[Note] = []
    # which tracks: all pitched tracks; with many chord tracks keep a random subset
    tracks = []
    for tr in mid.tracks:
        chans = {m.channel for m in tr if hasattr(m, "channel") and m.type == "note_on"}
        if not chans or chans == {9}:
            continue
        tracks.append((tr.name, tr))
    chord_tracks = [t for t in tracks if "bass" not in t[0].lower() and "walk" not in t[0].lower()]
    keep_chords = set()
    if chord_tracks:
        k = int(rng.integers(1, min(2, len(chord_tracks)) + 1))
        for i in rng.choice(len(chord_tracks), size=k, replace=False):
            keep_chords.add(chord_tracks[int(i)][0])
    tpb = mid.ticks_per_beat
    for name, tr in tracks:
        is_bass = "bass" in name.lower() or "walk" in name.lower()
        if not is_bass and name not in keep_chords:
            continue
        lo, hi = LH_BASS_RANGE if is_bass else LH_CHORD_RANGE
        # tempo is constant (one Tempo line), so ticks -> seconds is linear
        spt = 60.0 / max(40, min(320, round(tempo))) / tpb
        t = 0
        active: dict[int, tuple[int, int]] = {}
        for m in tr:
            t += m.time
            if m.type == "note_on" and m.velocity > 0 and m.channel != 9:
                active[m.note] = (t, m.velocity)
            elif m.type in ("note_on", "note_off") and m.note in active:
                t0, v = active.pop(m.note)
                p = fold(m.note, lo, hi)
                notes.append(Note(p, t0 * spt, max(t, t0 + 1) * spt, int(v * 0.7)))
    notes.sort(key=lambda n: (n.start, n.pitch))
    return notes


# --------------------------------------------------------------------------- lines


def generated_line(bars: list[tuple[str, ...]], tempo: float,
                   rng: np.random.Generator) -> list[Note]:
    """A simple swing line: chord tones and passing notes in eighths, phrases and rests."""
    beat = 60.0 / tempo
    swing = rng.uniform(0.55, 0.68)
    notes: list[Note] = []
    pitch = int(rng.integers(64, 80))
    playing = True
    phrase_left = int(rng.integers(4, 12))
    for b, bar in enumerate(bars):
        syms = [mma_chord(c) for c in bar][:4]
        for beat_i in range(4):
            sym = syms[min(len(syms) - 1, beat_i * len(syms) // 4)]
            _, tones = chord_pcs(sym)
            t_beat = (b * 4 + beat_i) * beat
            if phrase_left <= 0:
                playing = not playing
                phrase_left = int(rng.integers(2, 6)) if not playing else int(rng.integers(4, 14))
            phrase_left -= 1
            if not playing:
                continue
            sub = [0.0, swing] if rng.random() < 0.85 else [0.0, 1 / 3, 2 / 3]
            if rng.random() < 0.12:
                sub = [0.0]
            for s in sub:
                if rng.random() < 0.08:
                    continue
                step = int(rng.choice([-2, -1, 1, 2, -3, 3, 4, -4], p=[
                    0.22, 0.18, 0.18, 0.2, 0.06, 0.06, 0.05, 0.05]))
                cand = pitch + step
                if s == 0.0 and cand % 12 not in tones:  # on the beat: land on chord tones
                    near = [cand + d for d in (-2, -1, 1, 2) if (cand + d) % 12 in tones]
                    if near:
                        cand = int(rng.choice(near))
                if cand > RH_RANGE[1] - 4 or cand < RH_RANGE[0] + 2:
                    cand = pitch - step
                pitch = int(np.clip(cand, RH_RANGE[0], RH_RANGE[1]))
                dur = beat / len(sub) * rng.uniform(0.6, 1.0)
                notes.append(Note(pitch, t_beat + s * beat, t_beat + s * beat + dur,
                                  int(rng.integers(70, 100))))
    return notes


# --------------------------------------------------------------------------- items


def jazz_items(split: str) -> list[dict]:
    """Renderable jazz items of a split: every solo, then a generated line per chart."""
    items: list[dict] = []
    for s in solos():
        if title_split(s.title) != split:
            continue
        ch = charts_by_title().get(norm_title(s.title))
        items.append({"kind": "solo", "path": s.path, "title": s.title, "tempo": s.tempo,
                      "chart": ch.path if ch else None, "performer": s.performer})
    for c in charts():
        if title_split(c.title) == split:
            items.append({"kind": "line", "title": c.title, "chart": c.path})
    return items


def _chart_for(item: dict, split: str, rng: np.random.Generator) -> Chart:
    if item.get("chart"):
        c = parse_chart(Path(item["chart"]))
        if c is not None:
            return c
    pool = [c for c in charts() if title_split(c.title) == split]  # never cross the split
    return pool[int(rng.integers(len(pool)))]


def jazz_performance(item: dict, seed: int, *, length_s: float = 45.0,
                     split: str = "train") -> tuple[Performance, dict]:
    """A humanised jazz piano performance (RH line + LH comping) of about ``length_s``."""
    rng = np.random.default_rng(seed)
    chart = _chart_for(item, split, rng)
    info: dict = {"chart": chart.title}
    if item["kind"] == "solo":
        a = read_solo(item["path"])
        span = float(a[-1, 1])
        start = float(rng.uniform(0.0, max(0.0, span - length_s)))
        sel = a[(a[:, 1] >= start) & (a[:, 1] < start + length_s)]
        shift = 72 - int(np.median(sel[:, 0])) if len(sel) else 0
        shift = 12 * round(shift / 12)  # octaves only: keep the soloist's key
        rh = [Note(fold(int(p) + shift, RH_RANGE[0], RH_RANGE[1]), float(t - start),
                   float(t - start + max(0.04, d)), int(rng.integers(65, 100)))
              for p, t, d in sel]
        tempo = float(np.clip(item["tempo"], 50, 320))
        info.update(solo=Path(item["path"]).name, start_s=round(start, 2))
    else:
        tempo = float(rng.uniform(90, 240))
        rh = []
    n_bars = int(np.ceil(length_s * tempo / 60 / 4)) + 1
    first = int(rng.integers(len(chart.bars)))
    bars = [chart.bars[(first + i) % len(chart.bars)] for i in range(n_bars)]
    if item["kind"] == "line":
        rh = generated_line(bars, tempo, rng)
    groove = groove_for(tempo, rng)
    try:
        lh = mma_comping(bars, tempo, groove, rng)
    except RuntimeError:
        groove = "Swing"
        lh = mma_comping([(mma_chord(b[0]),) for b in bars], tempo, groove, rng)
    info.update(groove=groove, tempo=round(tempo, 1))
    notes = [n for n in rh + lh if n.start < length_s]
    notes.sort(key=lambda n: (n.start, n.pitch))
    perf = humanise(notes, seed + 1, tempo_spread=0.08, jitter_s=0.008,
                    keep_velocity=0.6)
    return perf, info
