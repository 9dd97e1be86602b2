"""Hot swap with the real daemon (`appliance run`, a WAV file as the mic, SDL's offscreen
output, a real store, real signatures, the real control socket and SIGHUP).

The two engines are band bundles that hear the same tone as different styles: bands-1 calls
a tone in band 3 jazz, bands-2 (its labels reversed) calls it classical, so the events show
which engine is listening. On the Jetson the same sequence runs under systemd:
`sudo appliance engine install …` then `systemctl status appliance` (and `systemctl reload
appliance` for SIGHUP).
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import band_tone_hz, make_signed_band_bundle, make_tiny_show, write_wav
from tests.test_daemon import Daemon


def _appliance(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "appliance", *args], capture_output=True,
                          text=True, timeout=120)


@pytest.fixture
def box(tmp_path, signing_key) -> Path:
    secret, keys = signing_key
    root = tmp_path
    make_tiny_show(root / "show", main_s=40.0)
    t = np.arange(16000 * 40) / 16000
    write_wav(root / "mic.wav", 0.3 * np.sin(2 * np.pi * band_tone_hz(3) * t))
    make_signed_band_bundle(root / "bands-1", secret, name="bands", version="1")
    make_signed_band_bundle(root / "bands-2", secret, name="bands", version="2",
                            order=(4, 3, 2, 1, 0))
    make_signed_band_bundle(root / "bands-3", secret, name="bands", version="3")
    (root / "run").mkdir()
    (root / "appliance.toml").write_text(f"""\
[audio]
source = "file:{root / 'mic.wav'}"
[listen]
store = "{root / 'store'}"
trusted_keys = "{keys}"
[show]
path = "{root / 'show'}"
[display]
output = "offscreen"
[service]
events_dir = "{root / 'events'}"
control_socket = "{root / 'run' / 'control.sock'}"
control_group = ""
metrics_file = "{root / 'metrics.prom'}"
""")
    return root


def _status(box: Path) -> dict:
    r = _appliance("status", "--json", "--config", str(box / "appliance.toml"))
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _wait_status(box: Path, d: Daemon, want, timeout: float = 20.0) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        s = _status(box)
        if want(s):
            return s
        d.collect(0.3)
    pytest.fail(f"status never matched: {s}")


def test_install_and_reload_switch_between_two_windows_and_a_broken_engine_is_refused(box,
                                                                                       tmp_path):
    cfg = str(box / "appliance.toml")
    r = _appliance("engine", "install", str(box / "bands-1"), "--config", cfg)
    assert r.returncode == 0 and "no running show answers" in r.stdout, r.stdout + r.stderr
    d = Daemon(box / "appliance.toml", tmp_path, SDL_VIDEODRIVER="offscreen")
    try:
        d.wait_for("READY=1", timeout=60)
        sock = box / "run" / "control.sock"
        assert stat.S_IMODE(sock.stat().st_mode) == 0o660
        s = _wait_status(box, d, lambda s: s["hearing"] == "jazz")
        assert s["engine"] == "bands-1" and s["runs_on"] == "ONNX Runtime FP32"

        # a new engine over the same door a technician uses: install, which asks for a reload
        r = _appliance("engine", "install", str(box / "bands-2"), "--config", cfg)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "the running show switched to bands-2 (ONNX Runtime FP32)" in r.stdout
        _wait_status(box, d, lambda s: s["engine"] == "bands-2" and s["hearing"] == "classical")

        # a broken engine sent the same way is refused by the store, the show plays on
        broken = tmp_path / "broken"
        import shutil

        shutil.copytree(box / "bands-3", broken)
        with open(broken / "model.onnx", "r+b") as f:
            f.seek(60)
            f.write(b"\x00\x01\x02")
        r = _appliance("engine", "install", str(broken), "--config", cfg)
        assert r.returncode == 1 and "checksum mismatch" in r.stderr

        # an engine damaged on disk after install: the daemon cannot open it on SIGHUP
        # (systemctl reload) and keeps the old one, saying so
        r = _appliance("engine", "install", str(box / "bands-3"), "--config", cfg, "--no-reload")
        assert r.returncode == 0, r.stderr
        with open(box / "store" / "bands-3" / "model.onnx", "r+b") as f:
            f.seek(60)
            f.write(b"\x00\x01\x02")
        d.proc.send_signal(signal.SIGHUP)
        s = _wait_status(box, d, lambda s: bool(s["reload_failed"]))
        assert s["engine"] == "bands-2" and "checksum mismatch" in s["reload_failed"]
        r = _appliance("reload", "--config", cfg)  # the socket says the same
        assert r.returncode == 1 and "kept bands-2" in r.stderr and "checksum" in r.stderr
        d.collect(1.5)
        assert _status(box)["hearing"] == "classical"
        rc, _ = d.stop()
        assert rc == 0
    finally:
        log = d.close()
    msgs = [m for _, m in d.messages]
    statuses = [m for m in msgs if m.startswith("STATUS=")]
    assert any("engine bands-1 on ONNX Runtime FP32" in m for m in statuses), statuses
    assert any("engine bands-2 on ONNX Runtime FP32" in m and "reload failed, kept it" in m
               for m in statuses), statuses
    assert "RELOADING=1" in msgs and msgs.index("RELOADING=1") < len(msgs) - 1
    assert "READY=1" in msgs[msgs.index("RELOADING=1"):]
    assert "reload: switched from bands-1" in log

    (events,) = list((box / "events").glob("*.jsonl"))
    lines = [json.loads(x) for x in events.read_text().splitlines()]
    switches = [e for e in lines if e["event"] == "engine"]
    ok, refused = switches[0], switches[1:]
    assert ok["switched"] and ok["engine"] == "bands-2" and ok["replaced"] == "bands-1"
    # between two windows: the new engine's first window is one hop after the old one's last
    assert ok["first_window_t"] - ok["last_window_t"] == pytest.approx(0.5)
    assert [e["switched"] for e in refused] == [False, False]  # SIGHUP, then the socket
    assert all(e["engine"] == "bands-2" and "checksum mismatch" in e["error"] for e in refused)
    genres = [(e["t"], e["genre"]) for e in lines if e["event"] == "genre"]
    assert [g for t, g in genres if t < ok["t"]][-1] == "jazz"
    assert [g for t, g in genres if t >= ok["t"]] == ["classical"], genres
    first_classical = next(i for i, e in enumerate(lines) if e.get("genre") == "classical")
    assert lines.index(ok) < first_classical  # the switch is logged before what it caused
    stats = lines[-1]
    assert stats["event"] == "stats" and stats["presented"] > 0
    assert ok["dropped"] == 0 and stats["dropped"] == 0, stats
    assert os.readlink(box / "store" / "current") == "bands-3"  # the store's word, not played


def test_first_start_installs_the_shipped_engine_into_an_empty_store(tmp_path, signing_key,
                                                                      caplog):
    """What `appliance run` does before its first frame (EngineSource is the daemon's own):
    an empty store gets the shipped bundle, verified with the project key that ships; with
    that key not trusted the box still plays, on the shipped bundle as it is, and says why."""
    import logging

    from appliance.config import load_config
    from appliance.service.hotswap import EngineSource
    from tests.conftest import REPO

    shipped = REPO / "engines" / "current"
    cfg = tmp_path / "appliance.toml"
    cfg.write_text(f'[listen]\nstore = "{tmp_path / "store"}"\n'
                   f'trusted_keys = "{REPO / "firmware_config" / "trusted_keys"}"\n')
    with caplog.at_level(logging.INFO, logger="appliance.service"):
        loaded = EngineSource(load_config(cfg)[0]).open_initial()
    label = loaded.label
    m = json.loads((shipped / "manifest.json").read_text())
    assert label == f"{m['name']}-{m['version']}"
    assert loaded.origin == "store" and os.readlink(tmp_path / "store" / "current") == label
    assert f"installed the shipped engine {label} into the empty store" in caplog.text
    again = EngineSource(load_config(cfg)[0]).open_initial()  # second start: nothing to seed
    assert again.origin == "store" and sorted(p.name for p in (tmp_path / "store").iterdir()
                                              if not p.name.startswith(".")) == ["current", label]

    _, test_keys = signing_key  # a box that does not trust the project key
    cfg.write_text(f'[listen]\nstore = "{tmp_path / "store2"}"\ntrusted_keys = "{test_keys}"\n')
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="appliance.service"):
        fallback = EngineSource(load_config(cfg)[0]).open_initial()
    assert fallback.origin == "shipped" and fallback.label == label
    assert "which this box does not trust" in caplog.text
    assert "falling back to the shipped engine" in caplog.text
    assert not (tmp_path / "store2" / "current").exists()


def test_a_new_engine_takes_over_on_a_whole_window_of_what_was_heard(band_bundle):
    """Listener.continue_from (the listen thread's swap): the new engine's first estimate comes
    one hop after the old one's last, on exactly the window a listener that had heard all along
    would see, and the reading carries on instead of restarting from silence."""
    from appliance.listen import Listener, load_bundle
    from appliance.listen.engine import OnnxEngine

    rate = 16000
    t = np.arange(rate * 6) / rate
    audio = (0.3 * np.sin(2 * np.pi * band_tone_hz(2) * t)).astype(np.float32)
    audio[rate * 4:] = 0.3 * np.sin(2 * np.pi * band_tone_hz(0) * t[rate * 4:])
    hop = load_bundle(band_bundle).hop_samples
    old = Listener(OnnxEngine(load_bundle(band_bundle)))
    before = old.feed(audio[:rate * 5])
    new = Listener(OnnxEngine(load_bundle(band_bundle)))
    new.continue_from(old, audio[:rate * 5])
    (first,) = new.feed(audio[rate * 5:rate * 5 + hop])
    assert first.t == pytest.approx(before[-1].t + hop / rate)
    reference = Listener(OnnxEngine(load_bundle(band_bundle))).feed(audio[:rate * 5 + hop])[-1]
    assert first.t == pytest.approx(reference.t)
    for label, p in reference.raw_probs.items():
        assert first.raw_probs[label] == pytest.approx(p, abs=1e-5)
    assert first.music_present and first.genre == reference.genre == before[-1].genre
    cold = Listener(OnnxEngine(load_bundle(band_bundle))).feed(audio[rate * 5:rate * 5 + hop])
    assert not cold[0].music_present  # what it avoids: a cold start reads as the music stopping
