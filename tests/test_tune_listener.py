"""Tuning replays recorded engine outputs; the replay must hear exactly what the live
listener hears, or the chosen smoothing would be tuned on something the box never does."""

from __future__ import annotations

import numpy as np

import appliance.listen.listener as listener_module
from appliance.listen import load_bundle
from appliance.listen.engine import OnnxEngine
from appliance.listen.frontend import log_mel
from appliance.listen.listener import Smoothing
from tests.conftest import band_tone_hz
from training.metrics import change_delays, spurious_changes
from training.tune_listener import (
    _Recorder,
    _Replay,
    candidates,
    choose,
    hear,
    replay_grid,
    steadiest,
    window_accuracy,
)


def test_replay_matches_the_live_listener(band_bundle):
    b = load_bundle(band_bundle)
    sr = b.frontend.sample_rate
    t = np.arange(3 * sr) / sr
    x = np.concatenate([0.3 * np.sin(2 * np.pi * band_tone_hz(k) * t) for k in (0, 2, 1, 3)])
    x = x.astype(np.float32)
    rec = _Recorder(OnnxEngine(b))
    live = hear(rec, Smoothing(tau_s=1.0, switch_margin=0.1), x)
    assert {g for _, g in live} >= {"baroque", "ragtime"}
    for sm in (Smoothing(tau_s=1.0, switch_margin=0.1), Smoothing(tau_s=2.0, switch_margin=0.3)):
        assert hear(_Replay(b, rec.outputs), sm, x) == hear(OnnxEngine(b), sm, x)


def test_replay_grid_skips_the_front_end_yet_scores_what_the_live_listener_hears(band_bundle):
    """The grid stubs out the log-mel for speed; the level gate and the smoothing must not
    notice, and the real front end must be back afterwards."""
    b = load_bundle(band_bundle)
    sr = b.frontend.sample_rate
    t = np.arange(4 * sr) / sr
    lead = np.zeros(sr, np.float32)  # a second of silence: the level gate must call it none
    x = np.concatenate([lead] + [0.3 * np.sin(2 * np.pi * band_tone_hz(k) * t)
                                 for k in (0, 2, 1)]).astype(np.float32)
    segs = [{"genre": g, "t0": 1.0 + 4 * i, "t1": 5.0 + 4 * i, "work": g}
            for i, g in enumerate(("baroque", "ragtime", "classical"))]
    rec = _Recorder(OnnxEngine(b))
    hear(rec, Smoothing(), x)
    rows = replay_grid(b, [(x, segs, 1.0, rec.outputs)])
    assert listener_module.log_mel is log_mel
    assert [sm for sm, _ in rows] == candidates()
    for sm, row in rows[:3]:
        live = hear(OnnxEngine(b), sm, x)
        delays = [c["censored_delay"] for c in change_delays(live, segs)]
        assert row["median_s"] == float(np.percentile(delays, 50))
        n, steady = spurious_changes(live, segs)
        assert row["spurious_per_10min"] == n / (steady / 600)


def _row(median: float, spurious: float, first: float = 1.5, p95: float = 6.0) -> dict:
    return {"median_s": median, "p95_s": p95, "first_max_s": first,
            "spurious_per_10min": spurious}


def test_choose_prefers_fewest_spurious_among_settings_that_meet_the_delay_targets():
    rows = [(Smoothing(tau_s=1.0), _row(2.5, 9.0)),
            (Smoothing(tau_s=1.5), _row(2.9, 4.0)),
            (Smoothing(tau_s=2.0), _row(3.4, 1.0)),              # too slow to change
            (Smoothing(tau_s=3.0), _row(2.0, 0.5, first=2.5))]   # too slow to start
    assert choose(rows)[0].tau_s == 1.5


def test_choose_falls_back_to_settings_near_the_fastest_when_none_is_fast_enough():
    rows = [(Smoothing(tau_s=1.0), _row(3.6, 9.0)),
            (Smoothing(tau_s=1.5), _row(4.0, 5.0)),
            (Smoothing(tau_s=2.0), _row(4.3, 1.0))]              # stickiest, but 0.7 s slower
    assert choose(rows)[0].tau_s == 1.5


def test_steadiest_reports_the_fewest_spurious_changes_at_each_allowed_delay():
    rows = [(Smoothing(tau_s=1.0), _row(2.5, 9.0)),
            (Smoothing(tau_s=1.5), _row(2.9, 4.0)),
            (Smoothing(tau_s=2.0), _row(3.4, 1.0)),
            (Smoothing(tau_s=3.0), _row(3.0, 0.5, first=2.5)),   # starts too slowly: never
            (Smoothing(tau_s=3.0), _row(4.8, 0.2))]
    got = steadiest(rows, (2.0, 3.0, 3.5, 5.0))
    assert np.isnan(got[2.0])                                    # nothing is that fast
    assert (got[3.0], got[3.5], got[5.0]) == (4.0, 1.0, 0.2)


def test_window_accuracy_scores_only_windows_wholly_inside_a_segment():
    labels = ["baroque", "jazz", "none"]
    segs = [{"genre": "baroque", "t0": 1.0, "t1": 6.0}, {"genre": "jazz", "t0": 6.0, "t1": 9.0}]
    # hop 1 s, window 2 s: output i is the window ending at i + 1 s. Inside baroque: windows
    # ending at 3..6 s (outputs 2..5); inside jazz: ending at 8, 9 s (outputs 7, 8). Output 6
    # straddles the change and outputs 0, 1 reach back into the lead: never scored.
    said = ["jazz", "jazz", "baroque", "baroque", "jazz", "baroque", "jazz", "baroque", "none"]
    outputs = [(np.eye(3, dtype=np.float32)[labels.index(g)][None], np.zeros(1)) for g in said]
    right, n, seg_right, n_segs = window_accuracy(outputs, segs, labels, hop_s=1.0, window_s=2.0)
    assert (right, n) == (3, 6)         # baroque 3 of 4, jazz 0 of 2
    assert (seg_right, n_segs) == (1, 2)  # baroque wins its majority; no jazz window says jazz
