"""The command's fixed interfaces, as a technician would call them."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from tests.conftest import band_tone_hz, write_wav


def test_classify_json_lines(tmp_path, band_bundle):
    sr = 44100  # any rate: the file source resamples
    t = np.arange(int(4.0 * sr)) / sr
    wav = write_wav(tmp_path / "ragtime-ish.wav", 0.3 * np.sin(2 * np.pi * band_tone_hz(2) * t),
                    rate=sr)
    quiet = write_wav(tmp_path / "quiet.wav", np.zeros(3 * sr), rate=sr)
    r = subprocess.run([sys.executable, "-m", "appliance", "classify", str(wav), str(quiet),
                        "--engine", str(band_bundle), "--json"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    tone_rows = [x for x in rows if x["file"] == str(wav)]
    quiet_rows = [x for x in rows if x["file"] == str(quiet)]
    # an estimate every 0.5 s hop over 4 s → at 0.5, 1.0, … 4.0 (the first 1 s window is
    # half silence: the box reads what it has not heard yet as a silent room)
    assert [x["t"] for x in tone_rows] == [0.5 + 0.5 * i for i in range(8)]
    for x in rows:
        assert set(x) == {"file", "t", "genre", "confidence", "probs", "music", "ms"}
        assert abs(sum(x["probs"].values()) - 1) < 1e-3 and x["ms"] >= 0
    assert {x["genre"] for x in tone_rows} == {"ragtime"} and all(x["music"] for x in tone_rows)
    assert quiet_rows and all(x["genre"] == "none" and not x["music"] for x in quiet_rows)


def test_unreadable_audio_is_one_plain_line(tmp_path, band_bundle):
    bad = tmp_path / "take.flac"
    bad.write_bytes(b"not audio at all")
    r = subprocess.run([sys.executable, "-m", "appliance", "classify", str(bad),
                        "--engine", str(band_bundle)], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.startswith("appliance: ") and "take.flac" in r.stderr
    assert "Traceback" not in r.stderr
