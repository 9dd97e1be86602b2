"""`appliance run` as systemd runs it: READY after the first frame, WATCHDOG only while every
loop progresses, STATUS, STOPPING and a quick clean exit on SIGTERM.

The notify socket is real (bound here); the mic is a WAV file paced in real time and the
screen is SDL's offscreen driver (no sound card or display on this machine). On the Jetson
the same test runs under systemd itself: `systemctl start appliance` and
`systemctl show -p StatusText,WatchdogTimestamp appliance`.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import band_tone_hz, make_tiny_show, write_wav


@pytest.fixture(scope="module")
def box(tmp_path_factory, band_bundle) -> Path:
    root = tmp_path_factory.mktemp("box")
    make_tiny_show(root / "show", main_s=30.0)
    t = np.arange(16000 * 30) / 16000
    write_wav(root / "mic.wav", 0.3 * np.sin(2 * np.pi * band_tone_hz(3) * t))
    (root / "appliance.toml").write_text(f"""\
[audio]
source = "file:{root / 'mic.wav'}"
[listen]
engine = "{band_bundle}"
[show]
path = "{root / 'show'}"
[display]
output = "offscreen"
[service]
events_dir = "{root / 'events'}"
log_level = "info"
metrics_file = "{root / 'metrics.prom'}"
""")
    return root


class Daemon:
    def __init__(self, config: Path, tmp: Path, **env: str) -> None:
        self.sock_path = str(tmp / "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.sock_path)
        self.messages: list[tuple[float, str]] = []
        e = {**os.environ, "NOTIFY_SOCKET": self.sock_path, "SDL_VIDEODRIVER": "dummy", **env}
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "appliance", "run", "--config", str(config)],
            env=e, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        # the watchdog must name this process
        self.sock.settimeout(0.1)

    def collect(self, seconds: float) -> list[str]:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                msg = self.sock.recv(4096).decode()
            except TimeoutError:
                continue
            for line in msg.splitlines():
                self.messages.append((time.monotonic() - self.t0, line))
        return [m for _, m in self.messages]

    def wait_for(self, wanted: str, timeout: float) -> float:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.collect(0.1)
            for t, m in self.messages:
                if m == wanted:
                    return t
            if self.proc.poll() is not None:
                break
        out = self.proc.stdout.read() if self.proc.poll() is not None else ""
        pytest.fail(f"no {wanted} within {timeout} s; got {self.messages}\n{out}")

    def stop(self) -> tuple[int, float]:
        t = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = -9
        return rc, time.monotonic() - t

    def close(self) -> str:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.sock.close()
        return self.proc.stdout.read()


def test_ready_status_watchdog_and_clean_stop(box, tmp_path):
    d = Daemon(box / "appliance.toml", tmp_path, WATCHDOG_USEC="2000000", WATCHDOG_PID="")
    try:
        ready_at = d.wait_for("READY=1", timeout=60)
        d.collect(4.0)
        msgs = [m for t, m in d.messages if t > ready_at]
        assert msgs.count("WATCHDOG=1") >= 2, d.messages
        statuses = [m for m in msgs if m.startswith("STATUS=")]
        assert statuses and "input ok" in statuses[0], statuses
        assert any("hearing jazz" in m for m in statuses), statuses  # band 3 tone
        rc, took = d.stop()
        d.collect(0.3)
        assert rc == 0
        assert took < 2.0, f"took {took:.2f} s to stop"
        assert "STOPPING=1" in [m for _, m in d.messages]
    finally:
        log = d.close()
    assert "first frame presented" in log  # logged by the output's first-frame callback
    events = list((box / "events").glob("*.jsonl"))
    assert events, "no show events file"
    lines = [json.loads(x) for x in events[-1].read_text().splitlines()]
    assert lines[0]["event"] == "state" and lines[-1]["event"] == "stats"
    assert lines[-1]["presented"] > 0


def test_watchdog_stops_when_the_listener_stalls(box, tmp_path):
    d = Daemon(box / "appliance.toml", tmp_path, WATCHDOG_USEC="2000000", WATCHDOG_PID="",
               APPLIANCE_TEST_STALL="listen@3")
    try:
        ready_at = d.wait_for("READY=1", timeout=60)
        d.collect(max(0.0, ready_at + 8.0 - (time.monotonic() - d.t0)))
        pings = [t for t, m in d.messages if m == "WATCHDOG=1"]
        assert any(t < ready_at + 3 for t in pings), d.messages   # healthy at first
        # stalled from ~3 s after start; stall_s = 2 s; one ping period of grace
        assert not [t for t in pings if t > ready_at + 6.5], d.messages
        rc, _ = d.stop()
        assert rc == 0
    finally:
        log = d.close()
    stalled = [line for line in log.splitlines() if "stalled:" in line]
    assert stalled and "listen" in stalled[0], log


def test_corrupt_engine_and_bad_key_do_not_stop_the_show(box, tmp_path, band_bundle):
    """A technician's mistakes: a corrupted engine file and a misspelt key. The box says what
    is wrong, falls back to the shipped engine and the default for that key, and plays."""
    import shutil

    broken = tmp_path / "broken-engine"
    shutil.copytree(band_bundle, broken)
    with open(broken / "model.onnx", "r+b") as f:
        f.seek(100)
        f.write(b"\x00" * 16)
    cfg = (box / "appliance.toml").read_text().replace(str(band_bundle), str(broken))
    conf = tmp_path / "appliance.toml"
    conf.write_text(cfg.replace("[display]\n", "[display]\nfulscreen = true\n"))
    d = Daemon(conf, tmp_path)
    try:
        d.wait_for("READY=1", timeout=60)
        rc, _ = d.stop()
        assert rc == 0
    finally:
        log = d.close()
    assert "checksum mismatch" in log and "falling back to the shipped engine" in log
    assert "fulscreen" in log


def test_missing_mic_is_reported_and_the_show_plays_on(box, tmp_path):
    """No such capture device (real libasound): READY still comes, STATUS says the input is
    missing in plain words, and the watchdog keeps being fed — the film is still playing."""
    cfg = (box / "appliance.toml").read_text()
    start = cfg.index('source = "')
    end = cfg.index("\n", start)
    conf = tmp_path / "appliance.toml"
    conf.write_text(cfg[:start] + 'source = "alsa:stage_mic_that_is_not_there"' + cfg[end:])
    d = Daemon(conf, tmp_path, WATCHDOG_USEC="2000000", WATCHDOG_PID="")
    try:
        ready_at = d.wait_for("READY=1", timeout=60)
        d.collect(3.5)
        later = [m for t, m in d.messages if t > ready_at]
        assert later.count("WATCHDOG=1") >= 2, d.messages
        statuses = [m for m in later if m.startswith("STATUS=")]
        assert statuses and "input no input" in statuses[-1], statuses
        assert "stage_mic_that_is_not_there" in statuses[-1]
        rc, _ = d.stop()
        assert rc == 0
    finally:
        d.close()


def test_no_ready_until_a_frame_is_presented(box, tmp_path):
    """With the render loop frozen from the start no frame is ever presented, so systemd must
    never hear READY (it would then time the start out and restart the service)."""
    d = Daemon(box / "appliance.toml", tmp_path, APPLIANCE_TEST_STALL="render@0")
    try:
        msgs = d.collect(4.0)
        assert "READY=1" not in msgs, msgs
        rc, _ = d.stop()
        assert rc == 0
    finally:
        log = d.close()
    assert "first frame presented" not in log
