"""The playing statistics of training.experiments.performance_stats on inputs with a known
answer, read_performance's pedal, and humanise landing on the measured human statistics."""

from __future__ import annotations

from pathlib import Path

import mido
import numpy as np
import pytest

from training.experiments.performance_stats import (
    HUMAN,
    TOLERANCE,
    align,
    articulation_stats,
    local_tempo,
    pedal_presses,
    pedal_stats,
    tempo_stats,
    timing_stats,
    velocity_stats,
)
from training.perform import PEDAL_USE, Note, humanise, read_midi, read_performance


def _piece(seed: int = 0, length: float = 30.0, beat: float = 0.6) -> list[Note]:
    """A keyboard-like score: an eighth-note melody over a left hand that alternates block
    chords and broken chords, constant velocity (as many score sources are)."""
    rng = np.random.default_rng(seed)
    notes: list[Note] = []
    mel = 72
    t = 0.0
    while t < length:
        for k in range(2):  # right hand: eighths, a random walk
            mel = int(np.clip(mel + rng.integers(-4, 5), 64, 86))
            notes.append(Note(mel, t + k * beat / 2, t + (k + 1) * beat / 2, 72))
        root = int(rng.integers(43, 55))
        if rng.random() < 0.5:  # a block chord on the beat
            notes += [Note(root + d, t, t + beat, 72) for d in (0, 4, 7)]
        else:  # bass, then a chord tone on the off-beat
            notes.append(Note(root, t, t + beat / 2, 72))
            notes.append(Note(root + 7, t + beat / 2, t + beat, 72))
        t += beat
    return sorted(notes, key=lambda n: (n.start, n.pitch))


# ------------------------------------------------------------------ known answers


def test_chord_asynchrony_and_melody_lead_are_measured() -> None:
    # chords every 0.5 s: the top note first, the others 10 and 20 ms after it
    notes = []
    for k in range(20):
        t = k * 0.5
        notes += [Note(72, t, t + 0.4), Note(64, t + 0.010, t + 0.4), Note(60, t + 0.020, t + 0.4)]
    got = timing_stats(notes)
    assert got["async_ms"] == pytest.approx(20.0, abs=0.5)
    assert got["lead_ms"] == pytest.approx(-15.0, abs=0.5)


def test_velocity_stats_split_melody_slow_and_fast() -> None:
    # two-note chords every 0.5 s: top 80, bottom 70 -> mean 75, sd 5, melody +10, no slow
    # dynamics (each 4 s window holds whole chords), all of the sd is note-to-note
    notes = []
    for k in range(60):
        t = k * 0.5
        notes += [Note(76, t, t + 0.4, 80), Note(60, t, t + 0.4, 70)]
    got = velocity_stats(notes)
    assert got["vel_mean"] == pytest.approx(75.0)
    assert got["vel_sd"] == pytest.approx(5.0)
    assert got["vel_melody"] == pytest.approx(10.0)
    assert got["vel_slow_sd"] < 0.5
    assert got["vel_fast_sd"] == pytest.approx(5.0, abs=0.2)
    # a slow crescendo moves the slow part, not the fast one
    cresc = [Note(60 + k % 12, k * 0.25, k * 0.25 + 0.2, 40 + k // 2) for k in range(120)]
    c = velocity_stats(cresc)
    assert c["vel_slow_sd"] > 10.0 > 2.0 > c["vel_fast_sd"]


def test_articulation_ratio_and_legato_overlap() -> None:
    detached = [Note(60 + (k % 2) * 2, k * 0.25, k * 0.25 + 0.2) for k in range(40)]
    d = articulation_stats(detached)
    assert d["art_ratio"] == pytest.approx(0.8)
    assert d["legato_frac"] == 0.0
    legato = [Note(60 + (k % 2) * 2, k * 0.25, k * 0.25 + 0.3) for k in range(40)]
    g = articulation_stats(legato)
    assert g["art_ratio"] == pytest.approx(1.2)
    assert g["legato_frac"] == 1.0
    assert g["overlap_ms"] == pytest.approx(50.0)


def test_pedal_stats_of_known_presses() -> None:
    notes = [Note(60, k * 0.5, k * 0.5 + 0.4) for k in range(8)]  # 0 .. 3.9 s
    pedal = [(1.1, 127), (1.5, 0), (2.1, 100), (2.4, 90), (3.0, 0)]  # 90 is still down
    assert pedal_presses(pedal, 3.9) == [(1.1, 1.5), (2.1, 3.0)]
    got = pedal_stats(pedal, notes)
    assert got["ped_down_frac"] == pytest.approx(1.3 / 3.9)
    assert got["ped_per_min"] == pytest.approx(2 / 3.9 * 60)
    assert got["ped_press_s"] == pytest.approx(0.65)
    assert got["ped_gap_s"] == pytest.approx(0.6)
    assert got["ped_lag_ms"] == pytest.approx(100.0)  # both 0.1 s after an onset
    assert got["ped_release_ms"] == pytest.approx(0.0)  # released on onsets
    assert got["ped_clip_frac"] == 1.0  # one clip (shorter than 12 s), pedalled


def test_tempo_of_a_performance_at_0_9_of_the_score() -> None:
    score = _piece(3, length=60.0)
    perf = [Note(n.pitch, n.start / 0.9, n.end / 0.9, n.velocity) for n in score]
    al = align(score, perf)
    assert al is not None and al.good
    assert al.score_match > 0.98 and al.perf_match > 0.98
    grid, f = local_tempo(al.score_t, al.perf_t)
    ts = tempo_stats(grid, f)
    assert ts["tempo_global"] == pytest.approx(0.9, abs=0.005)
    assert ts["tempo_sd"] < 0.01


def test_tempo_finds_a_ritardando() -> None:
    # the second half of the piece is played 25 % slower: the windows there say so
    score = _piece(4, length=60.0)

    def warp(t: float) -> float:
        return t if t < 30.0 else 30.0 + (t - 30.0) / 0.75

    perf = [Note(n.pitch, warp(n.start), warp(n.end), n.velocity) for n in score]
    al = align(score, perf)
    assert al is not None and al.good
    grid, f = local_tempo(al.score_t, al.perf_t)
    early, late = np.nanmedian(f[grid < 25.0]), np.nanmedian(f[grid > 45.0])
    assert early == pytest.approx(1.0, abs=0.01)
    assert late == pytest.approx(0.75, abs=0.01)


def test_a_different_piece_does_not_align() -> None:
    al = align(_piece(5), _piece(6))
    assert al is not None and not al.good


# ------------------------------------------------------------------ read_performance


def test_read_performance_keeps_the_files_pedal(tmp_path: Path) -> None:
    mid = mido.MidiFile(ticks_per_beat=480)
    tr = mido.MidiTrack()
    mid.tracks.append(tr)
    tr.append(mido.MetaMessage("set_tempo", tempo=500000, time=0))  # 960 ticks per second
    tr.append(mido.Message("note_on", note=60, velocity=70, time=0))
    tr.append(mido.Message("control_change", control=64, value=127, time=96))  # 0.1 s
    tr.append(mido.Message("control_change", control=7, value=100, time=0))  # not pedal
    tr.append(mido.Message("note_off", note=60, velocity=0, time=384))  # 0.5 s
    tr.append(mido.Message("control_change", control=64, value=40, time=480))  # 1.0 s
    tr.append(mido.Message("control_change", control=64, value=0, time=96))  # 1.1 s
    path = tmp_path / "p.mid"
    mid.save(str(path))
    perf = read_performance(path)
    assert [(round(t, 3), v) for t, v in perf.pedal] == [(0.1, 127), (1.0, 40), (1.1, 0)]
    assert [(n.pitch, round(n.start, 3), round(n.end, 3), n.velocity) for n in perf.notes] == \
        [(60, 0.0, 0.5, 70)]
    assert [(n.pitch, n.start, n.end) for n in read_midi(path)] == \
        [(n.pitch, n.start, n.end) for n in perf.notes]


# ------------------------------------------------------------------ humanise vs pianists


@pytest.fixture(scope="module")
def humanised() -> dict[str, float]:
    """Median over 24 seeds of humanise's statistics on a 30 s synthetic score (one clip's
    tempo statistics vary a lot: rare deep ritardandi)."""
    score = _piece(0)
    rows: dict[str, list[float]] = {}
    for seed in range(24):
        perf = humanise(score, seed)
        got = velocity_stats(perf.notes) | timing_stats(perf.notes)
        got |= articulation_stats(perf.notes)
        al = align(score, perf.notes)
        assert al is not None and al.good
        ts = tempo_stats(*local_tempo(al.score_t, al.perf_t), win=40.0)
        got["win_sd"] = ts["win"][0]["win_sd"]
        got["win_dip"] = ts["win"][0]["win_dip"]
        for k, v in got.items():
            rows.setdefault(k, []).append(v)
    return {k: float(np.median(v)) for k, v in rows.items()}


@pytest.mark.parametrize("key", ["vel_mean", "vel_sd", "vel_slow_sd", "vel_fast_sd",
                                 "vel_melody", "async_ms", "lead_ms", "art_ratio", "win_sd",
                                 "win_dip"])
def test_humanise_lands_on_the_human_statistics(humanised: dict[str, float], key: str) -> None:
    assert abs(humanised[key] - HUMAN[key]) <= TOLERANCE[key], (key, humanised[key], HUMAN[key])


def test_humanise_pedals_like_a_pianist_whatever_the_style() -> None:
    score = _piece(1, length=12.0)
    perfs = [humanise(score, seed) for seed in range(60)]
    stats = [pedal_stats(p.pedal, p.notes) for p in perfs]
    used = np.mean([s["ped_used"] for s in stats])
    assert abs(used - PEDAL_USE) < 0.1
    on = [s for s in stats if s["ped_used"]]
    for key in ("ped_per_min", "ped_down_frac", "ped_press_s"):
        # a clip that uses the pedal, against the human pieces (which all pedal)
        val = float(np.median([s[key] for s in on]))
        assert abs(val - HUMAN[key]) <= TOLERANCE[key], (key, val, HUMAN[key])
