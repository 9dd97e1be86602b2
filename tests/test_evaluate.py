"""training.evaluate's and training.metrics' measuring tools on synthetic inputs (fast; no engine,
no rendering)."""

from __future__ import annotations

import numpy as np
import pytest

from training import evaluate as ev
from training.metrics import change_delays, ece, first_named, spurious_changes


def test_ece_of_a_calibrated_predictor_is_near_zero():
    rng = np.random.default_rng(0)
    conf = rng.uniform(0.2, 1.0, 200_000)
    correct = rng.random(conf.shape) < conf  # right exactly as often as it claims
    e, bins = ece(conf, correct)
    assert e < 0.01
    assert len(bins) == 15
    assert sum(b["n"] for b in bins) == len(conf)


def test_ece_of_an_overconfident_predictor_is_large():
    rng = np.random.default_rng(1)
    conf = rng.uniform(0.9, 1.0, 50_000)  # claims ~95 %
    correct = rng.random(conf.shape) < 0.6  # is right 60 % of the time
    e, _ = ece(conf, correct)
    assert e == pytest.approx(0.35, abs=0.02)


def _stream(hop: float, until: float, genre_at) -> list[tuple[float, str]]:
    return [(round(t, 3), genre_at(t)) for t in np.arange(3.0, until + 1e-9, hop)]


def test_change_delay_of_a_known_change():
    # music from 3 s (baroque), jazz from 50 s; the smoothed genre flips at 52.5 s
    segs = [{"genre": "baroque", "t0": 3.0, "t1": 50.0},
            {"genre": "jazz", "t0": 50.0, "t1": 100.0}]

    def g(t):
        if t < 4.5:
            return "none"
        return "baroque" if t < 52.5 else "jazz"

    s = _stream(0.5, 100.0, g)
    d = change_delays(s, segs)
    assert len(d) == 1
    assert d[0]["delay"] == pytest.approx(2.5)
    assert first_named(s, 3.0, "baroque") == {"any": pytest.approx(1.5),
                                              "correct": pytest.approx(1.5)}
    assert spurious_changes(s, segs) == (0, pytest.approx((50 - 4.5) + (100 - 52.5)))


def test_a_change_never_named_is_missed_and_censored():
    segs = [{"genre": "ragtime", "t0": 3.0, "t1": 40.0},
            {"genre": "classical", "t0": 40.0, "t1": 90.0}]
    s = _stream(0.5, 90.0, lambda t: "ragtime")
    d = change_delays(s, segs)
    assert d[0]["delay"] is None and d[0]["censored_delay"] == pytest.approx(50.0)


def test_spurious_changes_are_counted_after_the_style_is_named():
    segs = [{"genre": "jazz", "t0": 0.0, "t1": 60.0}]

    def g(t):  # named at 5 s, a blip to ragtime 20-22 s, a dropout to none at 40 s
        if t < 5 or 40 <= t < 41:
            return "none" if t >= 40 else "classical"
        return "ragtime" if 20 <= t < 22 else "jazz"

    n, steady = spurious_changes(_stream(0.5, 60.0, g), segs)
    assert n == 4  # jazz->ragtime, ragtime->jazz, jazz->none, none->jazz
    assert steady == pytest.approx(55.0)


def test_medleys_use_val_pieces_only():
    from training import jazz
    from training.dataset import manifest_rows

    rows = {r["path"]: r for r in manifest_rows()}
    train_works = {r["work"] for r in rows.values() if r["split"] == "train"}
    plans = ev.medley_plan(6, seed=7)
    styles = set()
    for m in plans:
        order = [s["genre"] for s in m["segments"]]
        assert all(a != b for a, b in zip(order, order[1:], strict=False))
        for s in m["segments"]:
            styles.add(s["genre"])
            assert 40.0 <= s["length"] <= 60.0 or s["source"] == "midi"
            if s["source"] == "midi":
                assert rows[s["piece"]]["split"] == "val", s["piece"]
                assert s["work"] not in train_works
            else:
                assert jazz.title_split(s["title"]) == "val", s["title"]
    assert styles == {"baroque", "classical", "ragtime", "jazz"}


def test_short_val_excerpts_are_joined_into_30s_clips_of_one_class():
    clips = [{"genre": g, "work": f"{g}:{i % 3}", "length": 15.0}
             for g in ("baroque", "jazz") for i in range(7)]
    groups = ev.clip_groups(clips)
    assert sorted(i for grp in groups for i in grp) == list(range(len(clips)))
    for grp in groups:
        assert len({clips[i]["genre"] for i in grp}) == 1
        assert sum(clips[i]["length"] for i in grp) >= 30.0
    assert ev.clip_groups([{"genre": "jazz", "work": "a", "length": 30.0}] * 3) == [[0], [1], [2]]


def test_a_brief_flicker_counts_only_without_a_hold():
    segs = [{"genre": "baroque", "t0": 3.0, "t1": 50.0},
            {"genre": "jazz", "t0": 50.0, "t1": 100.0}]

    def g(t):  # a one-hop flicker to jazz at 51 s, then jazz for good from 54 s
        return "jazz" if t == 51.0 or t >= 54.0 else "baroque"

    s = _stream(0.5, 100.0, g)
    assert change_delays(s, segs)[0]["delay"] == pytest.approx(1.0)
    assert change_delays(s, segs, hold_s=5.0)[0]["delay"] == pytest.approx(4.0)


def test_a_changed_performance_is_transposed_on_the_keyboard_and_retimed():
    from training.perform import Note, Performance

    perf = Performance([Note(60, 1.0, 2.0, 80), Note(107, 2.0, 3.0, 70), Note(22, 0.0, 4.0)],
                       pedal=[(0.5, 127), (3.0, 0)], tempo_factor=1.1)
    up = ev.changed_performance(perf, 3, 1.0)
    assert [n.pitch for n in up.notes] == [63, 108, 25]        # the top note stays on the keys
    assert [(n.start, n.end, n.velocity) for n in up.notes] == \
        [(n.start, n.end, n.velocity) for n in perf.notes]
    fast = ev.changed_performance(perf, 0, 2.0)
    assert [(n.start, n.end) for n in fast.notes] == [(0.5, 1.0), (1.0, 1.5), (0.0, 2.0)]
    assert fast.pedal == [(0.25, 127), (1.5, 0)] and fast.tempo_factor == 1.1
    assert [n.pitch for n in perf.notes] == [60, 107, 22]      # the original is untouched


def test_detuning_moves_a_tone_by_the_cents_asked_for():
    from training.render import RATE

    t = np.arange(4 * RATE) / RATE
    x = np.sin(2 * np.pi * 440.0 * t).astype(np.float32)
    for cents in (-50.0, 25.0):
        y = ev.detuned(x, cents)
        spec = np.abs(np.fft.rfft(y[RATE:3 * RATE] * np.hanning(2 * RATE)))
        peak = np.argmax(spec) / 2.0                                # 0.5 Hz bins
        assert abs(1200 * np.log2(peak / 440.0) - cents) < 3.0
        assert abs(len(y) / len(x) - 2 ** (-cents / 1200)) < 0.002  # replayed faster/slower


def test_fit_probe_counts_right_answers_and_recall_per_label(band_bundle):
    """The band bundle names label k for energy in mel band k, so every answer is known."""
    from appliance.listen.bundle import load_bundle
    from appliance.listen.engine import OnnxEngine
    from training.experiments.fit_probe import fit

    bundle = load_bundle(band_bundle)
    engine = OnnxEngine(bundle, precision="fp32")
    n_mels, n_frames = bundle.frontend.n_mels, bundle.n_frames
    edges = np.linspace(0, n_mels, 6).astype(int)
    truth = np.repeat(np.arange(5), 4)            # 4 windows per label
    x = np.full((len(truth), n_mels, n_frames), -8.0, np.float32)
    for i, k in enumerate(truth):
        x[i, edges[k]:edges[k + 1]] = 0.0          # loud in band k only
    y = truth.copy()
    y[[0, 1, 9]] = [3, 4, 0]                       # three labels the engine cannot agree with
    r = fit(engine, x, y, batch=3)                 # batches that do not divide the windows
    assert r["windows"] == 20
    assert r["accuracy"] == pytest.approx(17 / 20)
    # labelled baroque: windows 2, 3 (right) and 9 (ragtime audio, wrong); jazz and none
    # each gain one window the engine hears as baroque; classical and ragtime keep theirs
    assert r["recall"]["baroque"] == pytest.approx(2 / 3, abs=1e-3)
    assert r["recall"]["classical"] == pytest.approx(3 / 3)
    assert r["recall"]["jazz"] == pytest.approx(4 / 5)
    assert r["recall"]["none"] == pytest.approx(4 / 5)
    assert r["recall"]["ragtime"] == 1.0
