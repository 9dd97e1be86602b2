"""A venue calibration must not unlearn ordinary playing: the engine's anchors.

Synthetic takes and anchors (the listener round trip is in test_calibration.py): in the venue
the engine leans to jazz, and the venue shows in one embedding dimension. Fitted on the takes
alone, the correction that helps the venue also moves ordinary playing; with the anchors it
has to keep ordinary playing as the engine heard it.
"""

from __future__ import annotations

import numpy as np
import pytest

from appliance.listen.bundle import BundleError, load_bundle, write_manifest
from appliance.listen.calibration import ANCHORS, Anchors, Take, fit
from tests.conftest import make_band_bundle

LABELS = ("baroque", "classical", "ragtime", "jazz", "none")
SHA = "0" * 64


def _emb(y: np.ndarray, rng: np.random.Generator, venue: bool) -> np.ndarray:
    e = rng.normal(0.0, 1.0, (len(y), 8))
    e[np.arange(len(y)), y] += 1.5
    e[:, 7] += 3.0 if venue else 0.0       # what the venue's piano and room do to the embedding
    return e


def _probs(e: np.ndarray, venue: bool) -> np.ndarray:
    z = 2.0 * e[:, :5] + (np.array([0, 0, 0, 2.5, 0]) if venue else 0.0)   # leans to jazz
    z -= z.max(1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(1, keepdims=True)


def _world(seed: int = 0) -> tuple[list[Take], Anchors]:
    rng = np.random.default_rng(seed)
    ya = np.repeat(np.arange(5), 200)
    ea = _emb(ya, rng, venue=False)
    takes = []
    for c, style in enumerate(LABELS):
        y = np.full(120, c)
        e = _emb(y, rng, venue=True)
        takes.append(Take(style=style, probs=_probs(e, True), emb=e,
                          level_db=np.full(120, -30.0), t=3.0 + 0.5 * np.arange(120), name=style))
    return takes, Anchors(_probs(ea, False), ea, ya)


def _anchor_accuracy(probs: np.ndarray, a: Anchors) -> float:
    return float(np.mean([np.mean(probs[a.y == c].argmax(1) == c) for c in np.unique(a.y)]))


def test_with_anchors_the_fit_helps_the_venue_and_keeps_ordinary_playing():
    takes, anchors = _world()
    engine = _anchor_accuracy(anchors.probs, anchors)
    alone = fit(takes, LABELS, engine="e", engine_sha256=SHA)
    assert alone.accepted
    unguarded = _anchor_accuracy(alone.calibration.apply(anchors.probs, anchors.emb), anchors)
    assert unguarded < engine - 0.01, "the toy venue should tempt the fit into a costly change"

    kept = fit(takes, LABELS, engine="e", engine_sha256=SHA, anchors=anchors)
    assert kept.accepted, kept.reason
    after = _anchor_accuracy(kept.calibration.apply(anchors.probs, anchors.emb), anchors)
    assert after >= engine - 0.01
    assert kept.report["anchors"]["after"] == pytest.approx(after)
    assert kept.report["anchors"]["before"] == pytest.approx(engine)
    assert kept.report["after"] > kept.report["before"]          # the venue still gains


def test_a_fit_that_would_cost_ordinary_playing_is_refused_with_its_numbers():
    takes, anchors = _world()
    fr = fit(takes, LABELS, engine="e", engine_sha256=SHA, anchors=anchors,
             anchor_weights=(1.0,))
    assert not fr.accepted and fr.calibration is None
    assert "ordinary playing" in fr.reason
    a = fr.report["anchors"]
    assert a["after"] < a["before"] - 0.01
    assert f"{a['after']:.1%}" in fr.reason and f"{a['before']:.1%}" in fr.reason


def test_anchors_travel_in_the_bundle_under_its_checksums(tmp_path):
    bundle = make_band_bundle(tmp_path / "b")
    assert Anchors.from_bundle(load_bundle(bundle)) is None      # an engine without anchors
    _takes, anchors = _world()
    np.savez(bundle / ANCHORS, probs=anchors.probs, emb=anchors.emb, y=anchors.y)
    b = load_bundle(bundle)
    assert Anchors.from_bundle(b) is None, "a file the manifest does not list is not trusted"
    write_manifest(bundle, {k: v for k, v in b.manifest.items() if k not in ("format", "files")})
    got = Anchors.from_bundle(load_bundle(bundle))
    np.testing.assert_allclose(got.emb, anchors.emb)
    np.testing.assert_array_equal(got.y, anchors.y)
    with open(bundle / ANCHORS, "r+b") as f:              # damaged after the manifest was made
        f.seek(200)
        f.write(b"\x00" * 16)
    with pytest.raises(BundleError, match="checksum"):
        load_bundle(bundle)
