"""Score MIDI -> a humanised piano performance (seeded).

Score-like MIDI (quantised onsets, often constant velocity) would let a model key on things a
live pianist never shows. ``humanise`` gives every rendering its own global tempo (±14 %),
tempo drift and phrase rubato, onset jitter with a melody lead, freshly drawn velocities (the
source's velocities are mostly discarded: some sources are constant) with a singing top voice,
an articulation, and sustain pedal with one chance for every style. Its statistics are those
measured on human performances, not guesses. The note count never changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import mido
import numpy as np

# The constants below are measured, not guessed: training/experiments/performance_stats.py
# measures human performances (Batik, MAESTRO) and humanised scores the same way, and
# docs/experiments/human-playing.md gives the numbers and the tolerances they meet.

# instantaneous tempo factor (performed tempo / score tempo) always stays inside these bounds.
# Pianists go beyond the old ±15 %: their tempo for one movement differs by sd 0.081 (log),
# and locally it runs from 0.71 to 1.20 of its own 30 s median (1st / 99th percentile)
TEMPO_MIN = 0.6
TEMPO_MAX = 1.35
TEMPO_SPREAD = 0.14  # half-width of a clip's global tempo draw (pianists' choice and sections)
TEMPO_DRIFT = 0.03  # bound on each of three drift sinusoids' amplitude (periods 4–16 s)
TEMPO_RIT = 0.45  # bound on the depth of a phrase-end ritardando
TEMPO_RIT_SHAPE = 4.0  # depth = TEMPO_RIT × u^shape: deep ritardandi are rare
TEMPO_PUSH = 0.35  # share of phrases pushed instead of held back
JITTER_S = 0.009  # onset jitter sd; chords spread about 14 ms with the melody lead below
MELODY_LEAD_S = 0.010  # the top note of a chord comes early by up to this (mean 5 ms)
VELOCITY_LEVEL = (54.0, 11.0)  # a clip's dynamic level: mean and sd
VELOCITY_PHRASE = (5.0, 15.0)  # amplitude range of each of two phrase-dynamics sinusoids
VELOCITY_ACCENT = (10.0, 22.0)  # the top note of a chord sings by this much
VELOCITY_NOISE = (9.0, 15.0)  # range of the note-to-note velocity noise sd
ARTICULATION = (0.55, 0.85)  # a clip's duration factor (legato … detached), before noise
ARTICULATION_NOISE = 0.35  # per-note log sd: some notes overlap the next, most do not
# sustain pedal: one chance for every style (a per-style chance would be a style cue);
# presses and gaps are log-normal (median s, log sd), each press lands a little after an
# onset and is released at the onset nearest its planned end
PEDAL_USE = 0.95
PEDAL_PRESS = (0.40, 0.75)
PEDAL_GAP = (0.33, 1.75)
PEDAL_LAG = (0.05, 0.16)  # press this long after an onset (uniform)


@dataclass
class Note:
    pitch: int
    start: float  # seconds
    end: float  # seconds
    velocity: int = 64


@dataclass
class Performance:
    notes: list[Note]
    pedal: list[tuple[float, int]] = field(default_factory=list)  # (time s, CC64 value)
    tempo_factor: float = 1.0  # global factor drawn for this performance
    tempo_min: float = 1.0  # smallest / largest instantaneous factor actually used
    tempo_max: float = 1.0

    @property
    def duration(self) -> float:
        return max((n.end for n in self.notes), default=0.0)


def _read(path: Path | str) -> tuple[list[Note], list[tuple[float, int]]]:
    """Notes (tempo map applied, sorted by onset) and CC64 events of a MIDI file, one pass."""
    mid = mido.MidiFile(str(path))
    t = 0.0
    active: dict[tuple[int, int], list[tuple[float, int]]] = {}
    notes: list[Note] = []
    pedal: list[tuple[float, int]] = []
    for msg in mid:  # iterating a MidiFile yields messages with delta times in seconds
        t += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            active.setdefault((msg.channel, msg.note), []).append((t, msg.velocity))
        elif msg.type in ("note_off", "note_on"):
            stack = active.get((msg.channel, msg.note))
            if stack:
                t0, v = stack.pop(0)
                notes.append(Note(msg.note, t0, max(t, t0 + 0.02), v))
        elif msg.type == "control_change" and msg.control == 64:
            pedal.append((t, int(msg.value)))
    for (_, pitch), stack in active.items():  # notes never released
        for t0, v in stack:
            notes.append(Note(pitch, t0, max(t, t0 + 0.1), v))
    notes.sort(key=lambda n: (n.start, n.pitch))
    return notes, pedal


def read_midi(path: Path | str) -> list[Note]:
    """All notes of a MIDI file, timed in seconds (tempo map applied), sorted by onset.
    Control changes (the sustain pedal) are ignored: see ``read_performance``."""
    return _read(path)[0]


def read_pedal(path: Path | str) -> list[tuple[float, int]]:
    """The sustain pedal (CC64, any channel) of a MIDI file as (time s, value), in order."""
    return _read(path)[1]


def read_performance(path: Path | str) -> Performance:
    """A recorded performance as it was played: its notes and its own sustain pedal
    (raw CC64 values, half-pedalling included)."""
    notes, pedal = _read(path)
    return Performance(notes, pedal)


def excerpt(notes: list[Note], start: float, length: float) -> list[Note]:
    """Notes with onsets in [start, start+length), shifted to start at 0."""
    out = [Note(n.pitch, n.start - start, min(n.end, start + length + 2.0) - start, n.velocity)
           for n in notes if start <= n.start < start + length]
    return out


def _tempo_curve(duration: float, rng: np.random.Generator, base: float,
                 grid: float) -> np.ndarray:
    """Instantaneous tempo factor on a grid over score time: base × slow drift × rubato."""
    n = int(np.ceil(duration / grid)) + 2
    t = np.arange(n) * grid
    drift = np.zeros(n)
    for _ in range(3):  # a few slow sinusoids: the pianist pushes and relaxes
        period = rng.uniform(4.0, 16.0)
        drift += rng.uniform(0.0, TEMPO_DRIFT) * np.sin(2 * np.pi * t / period
                                                        + rng.uniform(0, 6.3))
    rubato = np.zeros(n)
    pos = rng.uniform(1.0, 6.0)
    while pos < duration:  # phrase ends: a ritardando, then a tempo
        width = rng.uniform(0.8, 3.0)
        # mostly slight, now and then deep; some phrases are pushed instead
        depth = TEMPO_RIT * rng.uniform(0.0, 1.0) ** TEMPO_RIT_SHAPE
        if rng.random() < TEMPO_PUSH:
            depth = -depth
        rubato -= depth * np.exp(-0.5 * ((t - pos) / (width / 2)) ** 2)
        pos += rng.uniform(3.0, 9.0)
    return np.clip(base * (1.0 + drift + rubato), TEMPO_MIN, TEMPO_MAX)


def _chords(starts: np.ndarray, width: float = 0.01) -> list[np.ndarray]:
    """Indices of notes sounding together in the score, in onset order."""
    order = np.argsort(starts, kind="stable")
    s = starts[order]
    cut = np.flatnonzero(np.diff(s) > width) + 1
    return np.split(order, cut)


def _pedal(out: list[Note], rng: np.random.Generator) -> list[tuple[float, int]]:
    """Sustain-pedal presses and gaps as pianists make them (measured: short presses,
    mostly changed at onsets, now and then a stretch without pedal)."""
    onsets = np.unique([n.start for n in out])
    end = float(max(n.end for n in out))
    ped: list[tuple[float, int]] = []
    t = float(onsets[0]) + rng.lognormal(np.log(PEDAL_GAP[0]), PEDAL_GAP[1]) - PEDAL_GAP[0]
    while True:
        k = int(np.searchsorted(onsets, t - 1e-9))
        if k >= len(onsets):
            break
        down = float(onsets[k]) + rng.uniform(*PEDAL_LAG)
        if ped:
            down = max(down, ped[-1][0] + 0.02)
        if down >= end:
            break
        target = down + rng.lognormal(np.log(PEDAL_PRESS[0]), PEDAL_PRESS[1])
        j = int(np.argmin(np.abs(onsets - target)))
        up = float(onsets[j]) if abs(onsets[j] - target) < 0.3 else target
        up = min(max(up + rng.normal(0.0, 0.015), down + 0.05), end)
        ped += [(down, 127), (up, 0)]
        # the next press comes after a gap, at an onset (a quick change: the same onset)
        t = up + rng.lognormal(np.log(PEDAL_GAP[0]), PEDAL_GAP[1]) - PEDAL_LAG[1]
    return ped


def humanise(notes: list[Note], seed: int, *, pedal: float = PEDAL_USE,
             tempo_spread: float = TEMPO_SPREAD, jitter_s: float = JITTER_S,
             keep_velocity: float | None = None) -> Performance:
    """A humanised performance of ``notes``.

    ``pedal`` is the probability of using the sustain pedal at all (``PEDAL_USE``, the same
    for every style); ``tempo_spread`` the half-width of the global tempo draw (clipped to
    TEMPO_MIN/TEMPO_MAX); ``jitter_s`` the onset jitter's standard deviation; ``keep_velocity``
    how much of the source velocity survives (drawn in 0–0.4 when None).
    """
    rng = np.random.default_rng(seed)
    if not notes:
        return Performance([], [])
    spread = min(tempo_spread, TEMPO_MAX - 1.0, 1.0 - TEMPO_MIN)
    base = float(rng.uniform(1.0 - spread, 1.0 + spread))
    dur = max(n.end for n in notes)
    grid = 0.05
    curve = _tempo_curve(dur, rng, base, grid)
    # performed time = integral of 1/tempo over score time
    warp = np.concatenate([[0.0], np.cumsum(grid / curve[:-1])])
    gt = np.arange(len(curve)) * grid

    def tmap(x: np.ndarray) -> np.ndarray:
        return np.interp(x, gt, warp)

    starts = np.array([n.start for n in notes])
    ends = np.array([n.end for n in notes])
    pitches = np.array([n.pitch for n in notes])
    src_vel = np.array([n.velocity for n in notes], dtype=float)
    # the top note of a chord (notes struck together in the score) sings and comes early
    top = np.zeros(len(notes), dtype=bool)
    for grp in _chords(starts):
        if len(grp) >= 2:
            top[grp[np.argmax(pitches[grp])]] = True
    new_start = tmap(starts)
    new_end = tmap(ends)
    jit = np.clip(rng.normal(0.0, jitter_s, len(notes)), -2.5 * jitter_s, 2.5 * jitter_s)
    lead = rng.uniform(0.0, MELODY_LEAD_S)
    new_start = np.maximum(0.0, new_start + jit - lead * top)
    # articulation: legato/staccato tendency for this performance, plus per-note noise
    art = rng.uniform(*ARTICULATION) * np.exp(rng.normal(0.0, ARTICULATION_NOISE,
                                                              len(notes)))
    new_end = new_start + np.maximum(0.03, (new_end - tmap(starts)) * art)

    # velocity: level + phrase dynamics + melody accent + noise, mostly ignoring the source
    level = float(np.clip(rng.normal(*VELOCITY_LEVEL), 30.0, 100.0))
    phr = np.zeros(len(notes))
    for _ in range(2):
        period = rng.uniform(4.0, 20.0)
        phr += rng.uniform(*VELOCITY_PHRASE) * np.sin(2 * np.pi * new_start / period
                                                       + rng.uniform(0, 6.3))
    accent = rng.uniform(*VELOCITY_ACCENT) * top
    keep = rng.uniform(0.0, 0.4) if keep_velocity is None else keep_velocity
    gen = level + phr + accent + rng.normal(0.0, rng.uniform(*VELOCITY_NOISE), len(notes))
    vel = keep * src_vel + (1.0 - keep) * gen
    vel = np.clip(np.round(vel), 15, 124).astype(int)

    out = [Note(int(p), float(s), float(e), int(v))
           for p, s, e, v in zip(pitches, new_start, new_end, vel, strict=True)]
    out.sort(key=lambda n: (n.start, n.pitch))
    ped = _pedal(out, rng) if rng.random() < pedal else []
    return Performance(out, ped, base, float(curve.min()), float(curve.max()))


def write_midi(perf: Performance, path: Path | str, *, program: int = 0) -> None:
    """One-track MIDI at 960 ticks per second (120 bpm, 480 ticks per beat), channel 0."""
    tps = 960.0
    events: list[tuple[int, int, mido.Message]] = []
    for n in perf.notes:
        t0 = int(round(n.start * tps))
        t1 = max(t0 + 1, int(round(n.end * tps)))
        events.append((t0, 2, mido.Message("note_on", note=n.pitch, velocity=n.velocity)))
        events.append((t1, 0, mido.Message("note_off", note=n.pitch, velocity=0)))
    for t, v in perf.pedal:
        events.append((int(round(t * tps)), 1,
                       mido.Message("control_change", control=64, value=v)))
    events.sort(key=lambda e: (e[0], e[1]))
    mid = mido.MidiFile(ticks_per_beat=480)
    tr = mido.MidiTrack()
    mid.tracks.append(tr)
    tr.append(mido.MetaMessage("set_tempo", tempo=500000, time=0))
    tr.append(mido.Message("program_change", program=program, time=0))
    last = 0
    for t, _, msg in events:
        tr.append(msg.copy(time=t - last))
        last = t
    tr.append(mido.MetaMessage("end_of_track", time=int(tps)))  # let the last notes ring
    mid.save(str(path))
