"""Tuning replays recorded engine outputs; the replay must hear exactly what the live
listener hears, or the chosen smoothing would be tuned on something the box never does."""

from __future__ import annotations

import numpy as np

from appliance.listen import load_bundle
from appliance.listen.engine import OnnxEngine
from appliance.listen.listener import Smoothing
from tests.conftest import band_tone_hz
from training.tune_listener import _Recorder, _Replay, hear


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
