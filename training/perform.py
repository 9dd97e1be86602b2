"""Score MIDI -> a humanised piano performance (seeded).

Score-like MIDI (quantised onsets, often constant velocity) would let a model key on things a
live pianist never shows. ``humanise`` gives every rendering its own global tempo (±10–15 %),
slow tempo drift and phrase rubato, onset jitter, freshly drawn velocities (the source's
velocities are mostly discarded: some sources are constant) and, where fitting, sustain pedal.
The note count never changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import mido
import numpy as np

# instantaneous tempo factor (performed tempo / score tempo) always stays inside these bounds
TEMPO_MIN = 0.85
TEMPO_MAX = 1.15


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


def read_midi(path: Path | str) -> list[Note]:
    """All notes of a MIDI file, timed in seconds (tempo map applied), sorted by onset."""
    mid = mido.MidiFile(str(path))
    t = 0.0
    active: dict[tuple[int, int], list[tuple[float, int]]] = {}
    notes: list[Note] = []
    for msg in mid:  # iterating a MidiFile yields messages with delta times in seconds
        t += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            active.setdefault((msg.channel, msg.note), []).append((t, msg.velocity))
        elif msg.type in ("note_off", "note_on"):
            stack = active.get((msg.channel, msg.note))
            if stack:
                t0, v = stack.pop(0)
                notes.append(Note(msg.note, t0, max(t, t0 + 0.02), v))
    for (_, pitch), stack in active.items():  # notes never released
        for t0, v in stack:
            notes.append(Note(pitch, t0, max(t, t0 + 0.1), v))
    notes.sort(key=lambda n: (n.start, n.pitch))
    return notes


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
        period = rng.uniform(8.0, 40.0)
        drift += rng.uniform(0.0, 0.025) * np.sin(2 * np.pi * t / period + rng.uniform(0, 6.3))
    rubato = np.zeros(n)
    pos = rng.uniform(2.0, 8.0)
    while pos < duration:  # phrase ends: a short ritardando, then a tempo
        width = rng.uniform(0.6, 2.0)
        depth = rng.uniform(0.0, 0.08)
        rubato -= depth * np.exp(-0.5 * ((t - pos) / (width / 2)) ** 2)
        pos += rng.uniform(4.0, 12.0)
    return np.clip(base * (1.0 + drift + rubato), TEMPO_MIN, TEMPO_MAX)


def humanise(notes: list[Note], seed: int, *, pedal: float = 0.5,
             tempo_spread: float = 0.12, jitter_s: float = 0.012,
             keep_velocity: float | None = None) -> Performance:
    """A humanised performance of ``notes``.

    ``pedal`` is the probability of using the sustain pedal at all; ``tempo_spread`` the
    half-width of the global tempo draw (clipped to the ±15 % bounds); ``jitter_s`` the onset
    jitter's standard deviation; ``keep_velocity`` how much of the source velocity survives
    (drawn in 0–0.4 when None).
    """
    rng = np.random.default_rng(seed)
    if not notes:
        return Performance([], [])
    spread = min(tempo_spread, TEMPO_MAX - 1.0)
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
    new_start = tmap(starts)
    new_end = tmap(ends)
    jit = np.clip(rng.normal(0.0, jitter_s, len(notes)), -2.5 * jitter_s, 2.5 * jitter_s)
    new_start = np.maximum(0.0, new_start + jit)
    # articulation: legato/staccato tendency for this performance, plus per-note noise
    art = rng.uniform(0.75, 1.05) * np.exp(rng.normal(0.0, 0.1, len(notes)))
    new_end = new_start + np.maximum(0.03, (new_end - tmap(starts)) * art)

    # velocity: level + phrase dynamics + melody accent + noise, mostly ignoring the source
    level = rng.uniform(40.0, 95.0)
    phr = np.zeros(len(notes))
    for _ in range(2):
        period = rng.uniform(4.0, 20.0)
        phr += rng.uniform(4.0, 14.0) * np.sin(2 * np.pi * new_start / period + rng.uniform(0, 6.3))
    top = np.zeros(len(notes))
    order = np.argsort(new_start, kind="stable")
    # highest note among near-simultaneous onsets gets an accent (the melody sings)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and new_start[order[j + 1]] - new_start[order[i]] < 0.03:
            j += 1
        grp = order[i:j + 1]
        top[grp[np.argmax(pitches[grp])]] = rng.uniform(3.0, 10.0)
        i = j + 1
    keep = rng.uniform(0.0, 0.4) if keep_velocity is None else keep_velocity
    gen = level + phr + top + rng.normal(0.0, rng.uniform(3.0, 9.0), len(notes))
    vel = keep * src_vel + (1.0 - keep) * gen
    vel = np.clip(np.round(vel), 15, 124).astype(int)

    out = [Note(int(p), float(s), float(e), int(v))
           for p, s, e, v in zip(pitches, new_start, new_end, vel, strict=True)]
    out.sort(key=lambda n: (n.start, n.pitch))
    ped: list[tuple[float, int]] = []
    if rng.random() < pedal and out:
        onsets = np.array([n.start for n in out])
        t = float(onsets[0])
        end = float(max(n.end for n in out))
        while t < end:
            seg = rng.uniform(0.8, 3.0)
            nxt = onsets[onsets > t + seg]
            t_up = float(nxt[0]) if len(nxt) else end
            ped.append((t + 0.02, 127))  # pedal just after the onset (syncopated pedalling)
            ped.append((t_up - 0.01, 0))
            t = t_up
            if rng.random() < 0.25 and len(nxt):  # a stretch without pedal
                later = onsets[onsets > t + rng.uniform(1.0, 3.0)]
                t = float(later[0]) if len(later) else end
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
