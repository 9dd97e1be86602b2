"""The shipped engine, the demo show and its bundled performances, end to end: each
performance must get its own genre's ending, and room noise must never start the show."""

from __future__ import annotations

import json

import pytest

from appliance.config import default_engine_dir, demo_show_dir
from appliance.listen import load_bundle
from appliance.simulate import simulate

DEMO = demo_show_dir()


def test_shipped_engine_is_a_verified_bundle():
    b = load_bundle(default_engine_dir())
    assert list(b.labels) == ["baroque", "classical", "ragtime", "jazz", "none"]
    assert {"fp32", "int8"} <= set(b.models)


@pytest.mark.parametrize("genre", ["baroque", "classical", "ragtime", "jazz"])
def test_demo_performance_gets_its_ending(genre, tmp_path, request):
    if genre == "jazz":  # the run test_player_frames.py checks frame by frame
        stats, events, _ = request.getfixturevalue("demo_jazz_preview")
    else:
        log = tmp_path / "events.jsonl"
        stats = simulate(DEMO / "audio" / f"{genre}.flac", DEMO, None, log)
        events = [json.loads(x) for x in log.read_text().splitlines()]
    endings = [e for e in events if e["event"] == "ending"]
    assert len(endings) == 1, endings
    assert endings[0]["genre"] == genre, endings[0]["evidence"]
    assert stats["dropped"] == 0


def test_room_noise_keeps_the_demo_in_attract(tmp_path):
    log = tmp_path / "events.jsonl"
    simulate(DEMO / "audio" / "room_noise.flac", DEMO, None, log)
    events = [json.loads(x) for x in log.read_text().splitlines()]
    assert not [e for e in events if e["event"] == "ending"]
    assert {e["state"] for e in events if e["event"] == "state"} == {"attract"}
