"""The dev-real set's audio: unseen pianos, an unseen venue chain, unseen no-music kinds.

Each test states what a broken implementation would look like and fails on it.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from training import nomusic, render
from training import venue as V
from training.perform import Note, Performance, write_midi

RATE = render.RATE
NAMES = [t.name for t in V.UNSEEN_TIMBRES]


def _need(name: str) -> None:
    if not V.available(name):
        pytest.skip(f"{name}: timidity or freepats not installed (apt-get install timidity "
                    "freepats)")


def _peak_hz(x: np.ndarray, t0: float, t1: float) -> float:
    seg = x[int(t0 * RATE):int(t1 * RATE)].astype(np.float64)
    nfft = 1 << 18
    spec = np.abs(np.fft.rfft(seg * np.hanning(len(seg)), nfft))
    return float(np.fft.rfftfreq(nfft, 1 / RATE)[np.argmax(spec)])


def _phrase() -> Performance:
    """Twelve overlapping notes across four octaves, fixed velocities."""
    vel = [70, 95, 60, 105, 80, 66, 100, 74, 88, 62, 91, 77]
    pitches = [48, 55, 60, 64, 67, 72, 57, 62, 69, 74, 45, 52]
    return Performance([Note(p, 0.1 + 0.35 * i, 0.6 + 0.35 * i, v)
                        for i, (p, v) in enumerate(zip(pitches, vel, strict=True))])


def _max_xcorr(a: np.ndarray, b: np.ndarray, max_lag: int = 800) -> float:
    """Largest normalised cross-correlation within +-50 ms: ~1 for the same samples played
    back, low for different instruments playing the same notes."""
    n = min(len(a), len(b))
    a = a[:n] - a[:n].mean()
    b = b[:n] - b[:n].mean()
    nfft = 1 << int(np.ceil(np.log2(2 * n)))
    xc = np.fft.irfft(np.fft.rfft(a, nfft) * np.conj(np.fft.rfft(b, nfft)), nfft)
    xc = np.concatenate([xc[-max_lag:], xc[:max_lag + 1]])
    return float(np.max(np.abs(xc)) / np.sqrt(np.dot(a, a) * np.dot(b, b)))


def _digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------------- unseen pianos


def test_unseen_timbres_are_absent_from_training_by_name_and_file() -> None:
    train_names = {t.name for t in render.TIMBRES}
    assert not train_names & set(NAMES)
    train_files = {t.soundfont for t in render.TIMBRES}
    for tb in V.UNSEEN_TIMBRES:
        assert tb.renderer != "fluidsynth" or tb.samples not in train_files
        if tb.samples is None:
            assert tb.renderer == "numpy", f"{tb.name}: only the synthetic piano has no file"
            continue
        assert tb.samples not in train_files
        if not Path(tb.samples).exists():
            continue
        for sf in train_files:
            if not Path(sf).exists():
                continue
            assert not os.path.samefile(tb.samples, sf), f"{tb.name} plays {sf}"
            if os.path.getsize(sf) == os.path.getsize(tb.samples):
                assert _digest(sf) != _digest(tb.samples), f"{tb.name} is a copy of {sf}"


def test_timidity_opens_only_freepats(tmp_path: Path) -> None:
    """Debian's default timidity.cfg loads FluidR3_GM.sf2 (a training soundfont): the
    renderer must read only the freepats config and the freepats piano patch."""
    name = "freepats-grand-timidity"
    _need(name)
    tb = V.unseen_timbre(name)
    mid = tmp_path / "a.mid"
    write_midi(Performance([Note(69, 0.0, 0.5, 90)]), mid)
    cmd = [("-idvv" if a == "-idqq" else a)
           for a in V.timidity_command(tb, mid, tmp_path / "o.wav", 22050)]
    log = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    opened = re.findall(r"Trying to open (\S+)", log)
    assert tb.samples in opened
    pats = str(Path(tb.samples).parents[1]) + "/"

    def allowed(p: str) -> bool:
        return p == str(mid) or p.startswith(pats) or (not p.startswith("/")
                                                        and p.endswith(".pat"))

    bad = [p for p in opened if p.endswith((".sf2", ".sf3")) or not allowed(p)]
    assert not bad, f"timidity opened {bad}"


def test_unseen_renders_do_not_sound_like_any_training_render() -> None:
    """The check that the dev-real timbre is absent from training renders, on the audio:
    the same phrase through each training timbre and each unseen one, compared by waveform
    cross-correlation. The same samples under another name or path (as Debian's
    csound-soundfont piano is for TimGM6mb's) correlate at ~0.8-1; different pianos ~0.3-0.5."""
    if shutil.which("fluidsynth") is None:
        pytest.skip("fluidsynth not installed")
    train = [t for t in render.TIMBRES if Path(t.soundfont).exists()]
    if not train:
        pytest.skip("no training soundfont installed")
    perf = _phrase()
    heard = {t.name: render.render_performance(perf, t, source_rate=44100) for t in train}
    if {"fluidr3-grand", "fluidr3-bright"} <= set(heard):  # the measure does see sameness
        assert _max_xcorr(heard["fluidr3-grand"], heard["fluidr3-bright"]) > 0.9
    for name in NAMES:
        if not V.available(name):
            continue
        x = V.render_unseen(perf, name, seed=0)
        for tname, y in heard.items():
            r = _max_xcorr(x, y)
            assert r < 0.65, f"{name} correlates {r:.2f} with training timbre {tname}"


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("pitch,hz", [(57, 220.0), (69, 440.0)])
def test_unseen_renderer_pitch_and_level(name: str, pitch: int, hz: float) -> None:
    _need(name)
    x = V.render_unseen(Performance([Note(pitch, 0.05, 2.0, 85)]), name, seed=3)
    assert x.dtype == np.float32 and np.isfinite(x).all()
    assert len(x) >= int(2.0 * RATE)
    assert render.rms_db(x[: int(2.0 * RATE)]) > -50.0, "silent render"
    got = _peak_hz(x, 0.3, 1.3)
    assert abs(got - hz) / hz < 0.03, f"{name}: A at {hz} Hz peaks at {got:.1f} Hz"


@pytest.mark.parametrize("name", NAMES)
def test_unseen_render_is_seeded(name: str) -> None:
    _need(name)
    perf = _phrase()
    a = V.render_unseen(perf, name, seed=11)
    b = V.render_unseen(perf, name, seed=11)
    assert np.array_equal(a, b)
    if name == "modal-synth-grand":  # the seed draws the instrument: another seed differs
        c = V.render_unseen(perf, name, seed=12)
        assert not np.array_equal(a[: len(c)], c[: len(a)])


def _ragtime_like(seconds: float = 10.0, n: int = 150) -> Performance:
    rng = np.random.default_rng(5)
    starts = np.sort(rng.uniform(0.0, seconds - 0.3, n))
    notes = [Note(int(rng.integers(28, 100)), float(s), float(s + rng.uniform(0.1, 0.8)),
                  int(rng.integers(40, 120))) for s in starts]
    pedal = [(t, v) for k in range(5) for t, v in ((2.0 * k + 0.05, 127), (2.0 * k + 1.9, 0))]
    return Performance(notes, pedal)


def test_synth_piano_renders_fast() -> None:
    perf = _ragtime_like()
    best = np.inf
    for _ in range(2):
        t = time.perf_counter()
        x = V.synth_piano(perf, 1)
        best = min(best, time.perf_counter() - t)
    assert np.isfinite(x).all() and np.max(np.abs(x)) < 1.0
    assert best < 2.0, f"10 s, 150 notes took {best:.2f} s"


def test_synth_piano_sustain_pedal_holds_released_notes() -> None:
    """Without pedal a released note is damped within tenths of a second; with the pedal
    down it rings on until the pedal lifts."""
    r = V.SYNTH_RATE
    note = [Note(60, 0.0, 0.4, 90)]
    dry = V.synth_piano(Performance(note), 1)
    held = V.synth_piano(Performance(note, [(0.1, 127), (2.0, 0)]), 1)

    def level(x: np.ndarray, t0: float, t1: float) -> float:
        return render.rms_db(x[int(t0 * r):int(t1 * r)])

    assert abs(level(dry, 0.05, 0.35) - level(held, 0.05, 0.35)) < 0.5
    assert level(held, 1.0, 1.5) - level(dry, 1.0, 1.5) > 30.0
    assert level(held, 2.6, 2.9) < level(held, 1.5, 1.9) - 30.0  # damped after the pedal lifts


# ------------------------------------------------------------------------------ venue


def _exp_noise_ir(rt60: float, seed: int) -> np.ndarray:
    t = np.arange(int(1.3 * rt60 * RATE)) / RATE
    return np.random.default_rng(seed).standard_normal(len(t)) * np.exp(-6.91 * t / rt60)


def test_schroeder_estimator_is_calibrated() -> None:
    for rt60 in (0.6, 1.8, 3.0):
        assert V.schroeder_rt60(_exp_noise_ir(rt60, 0)) == pytest.approx(rt60, rel=0.05)


def test_venue_reverb_is_longer_than_any_training_room() -> None:
    train = [V.schroeder_rt60(render.room_ir(np.random.default_rng(s), rt60=1.8))
             for s in range(6)]
    assert max(train) <= V.TRAINING_RT60_MAX + 0.05
    for s in range(6):
        v = V.draw_venue(np.random.default_rng(100 + s))
        est = V.schroeder_rt60(v.ir)
        assert est > V.TRAINING_RT60_MAX and est > max(train), (s, v.rt60, est)
        assert V.RT60_RANGE[0] <= v.rt60 <= V.RT60_RANGE[1]


def test_venue_ir_highs_decay_faster_than_lows() -> None:
    ir = V.venue_ir(np.random.default_rng(7), rt60=2.5).astype(np.float64)
    n = len(ir)
    spec = np.fft.rfft(ir, 4 * n)
    f = np.fft.rfftfreq(4 * n, 1 / RATE)

    def band_rt(fc: float) -> float:
        w = np.exp(-0.5 * (np.log2(np.maximum(f, 1.0) / fc) / 0.3) ** 2)
        return V.schroeder_rt60(np.fft.irfft(spec * w, 4 * n)[:n], lo_db=-10.0, hi_db=-30.0)

    lo, mid, hi = band_rt(125.0), band_rt(1000.0), band_rt(4000.0)
    assert lo > mid > hi
    assert 2.0 < mid < 3.0


@pytest.mark.parametrize("codec", V.CODECS)
def test_codec_roundtrip_keeps_length_and_changes_signal(codec: str) -> None:
    rng = np.random.default_rng(0)
    n = int(3.3 * RATE) + 17
    t = np.arange(n) / RATE
    x = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(n)).astype(np.float32)
    y = V.codec_roundtrip(x, codec, 32000)
    assert y.dtype == np.float32 and len(y) == len(x) and np.isfinite(y).all()
    assert np.max(np.abs(y - x)) > 1e-3, "lossy codec left the signal unchanged"
    assert np.corrcoef(x, y)[0, 1] > 0.9, "decoded audio is misaligned or garbage"


def test_venue_keeps_length_sets_level_and_is_seeded() -> None:
    x = V.synth_piano(_phrase(), 2)
    x = render.resample(x, V.SYNTH_RATE, RATE)
    for s in range(4):
        y = V.venue(x, np.random.default_rng(s))
        assert y.dtype == np.float32 and len(y) == len(x) and np.isfinite(y).all()
        assert V.LEVEL_RANGE[0] - 0.5 <= render.rms_db(y) <= V.LEVEL_RANGE[1] + 0.5
        assert np.max(np.abs(y)) <= 1.0
        assert np.array_equal(y, V.venue(x, np.random.default_rng(s)))


# --------------------------------------------------------------------------- no music


def test_venue_none_kinds_and_crowd_are_unseen() -> None:
    assert not set(V.VENUE_NONE_KINDS) & set(nomusic.KINDS)
    train_sentences = {s for group in nomusic._SENTENCES.values() for s in group}
    crowd = set(V.crowd_sentences())
    assert crowd and not crowd & train_sentences
    assert not set(V.CROWD_VOICES) & set(nomusic.VOICES)


@pytest.mark.parametrize("kind", V.VENUE_NONE_KINDS)
def test_venue_none_kind_length_and_level(kind: str) -> None:
    if kind == "crowd" and shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    seconds = 4.3
    x = V.make_venue_none(kind, seconds, seed=21)
    assert x.dtype == np.float32 and len(x) == int(seconds * RATE)
    assert np.isfinite(x).all() and np.max(np.abs(x)) <= 1.0
    assert V.LEVEL_RANGE[0] - 0.5 <= render.rms_db(x) <= V.LEVEL_RANGE[1] + 0.5
    assert np.std(x[: RATE]) > 0 and np.std(x[-RATE:]) > 0


@pytest.mark.parametrize("kind", ["crowd", "glasses"])
def test_venue_none_is_seeded(kind: str) -> None:
    if kind == "crowd" and shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    a = V.make_venue_none(kind, 3.0, seed=4)
    assert np.array_equal(a, V.make_venue_none(kind, 3.0, seed=4))
    assert not np.array_equal(a, V.make_venue_none(kind, 3.0, seed=5))


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="speech"):
        V.make_venue_none("speech", 1.0, 0)
