"""`appliance simulate`: the box's listener, director and player against an audio file.

These use a small show and a band-energy ONNX engine (tests/conftest.py) whose answers follow
from the synthesised audio, so every expectation below is derived, not recorded. The shipped
engine and demo show get their own end-to-end test in test_demo_show.py.
"""

from __future__ import annotations

import json
import subprocess
import sys

import av
import numpy as np
import pytest

from tests.conftest import band_tone_hz, make_tiny_show, write_wav

SR = 16000


def tone(k: int, seconds: float, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return amp * np.sin(2 * np.pi * band_tone_hz(k) * t)


def room(seconds: float) -> np.ndarray:
    """Hum and faint hiss: below the engine's music gate (level floor)."""
    t = np.arange(int(seconds * SR)) / SR
    rng = np.random.default_rng(5)
    return 3e-4 * np.sin(2 * np.pi * 50 * t) + 1e-4 * rng.standard_normal(len(t))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_show(tmp_path_factory.mktemp("show"), main_s=6.0, ending_s=2.0)


def run_sim(tmp_path, audio, show, engine, out=None) -> tuple[dict, list[dict]]:
    wav = write_wav(tmp_path / "take.wav", audio)
    log = tmp_path / "events.jsonl"
    cmd = [sys.executable, "-m", "appliance", "simulate", "--audio", str(wav), "--show", str(show),
           "--engine", str(engine), "--log", str(log)]
    if out:
        cmd += ["--out", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                       env={"SDL_VIDEODRIVER": "dummy", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    events = [json.loads(x) for x in log.read_text().splitlines()]
    return json.loads(r.stdout.strip().splitlines()[-1]), events


@pytest.mark.parametrize("k,genre", [(0, "baroque"), (3, "jazz")])
def test_a_performance_gets_its_own_ending(tmp_path, tiny, band_bundle, k, genre):
    # music from 0: named at the first hop (0.5 s), the film starts 1 s later and runs 6 s,
    # the ending is chosen at 7.5 s; the music stops at 8 s, well before rest and attract
    # are over (10.5 s), so the film does not start a second time
    stats, events = run_sim(tmp_path, tone(k, 8.0), tiny, band_bundle)
    endings = [e for e in events if e["event"] == "ending"]
    assert len(endings) == 1 and endings[0]["genre"] == genre
    assert endings[0]["evidence"]["music_fraction"] >= 0.5
    states = [e["state"] for e in events if e["event"] == "state"]
    assert states[:3] == ["attract", "main", "ending"]
    assert [e for e in events if e["event"] == "overlay"][0]["genre"] == genre
    assert events[-1]["event"] == "stats" and stats["ending"] == genre


def test_room_noise_keeps_the_attract_loop(tmp_path, tiny, band_bundle):
    stats, events = run_sim(tmp_path, room(8.0), tiny, band_bundle)
    assert not [e for e in events if e["event"] == "ending"]
    assert {e["state"] for e in events if e["event"] == "state"} == {"attract"}
    assert stats["ending"] is None


def test_uncertain_music_at_the_decision_gets_the_default_ending(tmp_path, tiny, band_bundle):
    # two bands alternating every second, switching at 0.5, 1.5, 2.5 s …: music throughout,
    # but the 3 s weighed at the decision (7.5 s, as above) hold two pure 1 s windows of each
    # band and mixed ones between, so each keeps about half the probability, below the
    # show's 0.7. The music stops at 8 s so the film runs once
    audio = np.concatenate([tone(1, 0.5)] + [tone(k, 1.0) for _ in range(3) for k in (2, 1)]
                           + [tone(2, 1.0), tone(1, 0.5)])
    stats, events = run_sim(tmp_path, audio, make_tiny_show(
        tmp_path / "show", min_confidence=0.7), band_bundle)
    endings = [e for e in events if e["event"] == "ending"]
    assert len(endings) == 1 and endings[0]["genre"] == "default"
    assert endings[0]["evidence"]["reason"] == "uncertain"


def test_preview_mp4_has_one_frame_per_show_frame(tmp_path, tiny, band_bundle):
    seconds = 5.3  # room noise: the show stays in attract and stops when the audio does
    out = tmp_path / "preview.mp4"
    stats, _ = run_sim(tmp_path, room(seconds), tiny, band_bundle, out=out)
    fps = 10
    with av.open(str(out)) as c:
        frames = sum(1 for _ in c.decode(video=0))
        assert c.streams.video[0].average_rate == fps
    assert frames == stats["presented"] == int(np.ceil(seconds * fps))


def test_audio_shorter_than_the_show_goes_on_until_the_ending(tmp_path, tiny, band_bundle):
    # music for 5 s starts the film (1 s), which runs 6 s; the ending follows in silence
    stats, events = run_sim(tmp_path, tone(2, 5.0), tiny, band_bundle)
    ending = [e for e in events if e["event"] == "ending"]
    assert len(ending) == 1
    assert stats["t"] > 5.0 + 1.0  # went on past the audio
    assert [e["state"] for e in events if e["event"] == "state"][-1] in ("rest", "attract")
