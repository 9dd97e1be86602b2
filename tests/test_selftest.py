"""`appliance selftest`: against the real running daemon, without it, and each check failed on
purpose with the fix it must name: no mic, a silent mic, bad media, a tampered engine, a
full disk, a clock set back, no watchdog, no screen. The box's own key path (a key on a USB
keyboard) is tested with a key event posted into pygame's event queue inside the real
daemon — the stand-in for a keyboard, which this machine does not have.

Real: the daemon, its control socket, the config's ALSA device (libasound; no such card
here), the engine store and its hashes, PyAV probing the films, statvfs, the system clock,
/sys/class/drm. Stand-ins, named so in the tests: a sysfs tree with display connectors
(this machine has no /sys/class/drm) and the posted key event.
"""

from __future__ import annotations

import json
import math
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from appliance.service.selftest import (
    DRM,
    Check,
    Facts,
    check_clock,
    check_disk,
    check_display,
    check_watchdog,
    software_time,
)
from tests.boxes import TONE_AMPLITUDE, appliance, make_box, wait_status
from tests.conftest import make_signed_band_bundle, write_wav
from tests.test_daemon import Daemon


def _selftest(config: Path, *extra: str) -> tuple[int, dict[str, dict], str]:
    r = appliance("selftest", "--json", "--config", str(config), *extra)
    doc = json.loads(r.stdout)
    assert doc["passed"] == (r.returncode == 0)
    return r.returncode, {c["check"]: c for c in doc["checks"]}, r.stderr


class Collecting:
    """Read the notify socket all along, as systemd does (see test_status_listen)."""

    def __init__(self, d: Daemon) -> None:
        self._done = threading.Event()
        self._thread = threading.Thread(
            target=lambda: [d.collect(0.3) for _ in iter(self._done.is_set, True)], daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


def test_selftest_against_the_running_show(tmp_path, band_bundle):
    config = make_box(tmp_path, band_bundle, seconds=120.0)
    d = Daemon(config, tmp_path, WATCHDOG_USEC="2000000", WATCHDOG_PID="")
    d.wait_for("READY=1", timeout=60)
    reading = Collecting(d)
    try:
        wait_status(config, lambda s: s["level_db"] is not None)
        r = appliance("selftest", "--config", str(config), "--listen-s", "5")
        rc, checks, _ = _selftest(config, "--listen-s", "5")
    finally:
        reading.stop()
        d.stop()
        d.close()
    assert "self-test of the running show" in r.stdout and "Play a few notes" in r.stdout
    tone_db = 20 * math.log10(TONE_AMPLITUDE / math.sqrt(2))  # the RMS of the tone, in dBFS
    assert checks["mic"]["ok"]
    assert f"hearing signal (loudest {tone_db:.0f} dBFS)" in checks["mic"]["detail"]
    assert checks["engine"]["ok"], checks["engine"]
    assert "bands-test-1 verified: hashes, test vectors on ONNX Runtime FP32" in \
        checks["engine"]["detail"]
    assert checks["show"]["ok"] and "all 11 films decode" in checks["show"]["detail"]
    assert checks["disk"]["ok"] and checks["clock"]["ok"]
    assert checks["watchdog"] == {"check": "watchdog", "ok": True, "fix": "", "detail":
                                  "armed: systemd restarts the show if it stops making "
                                  "progress for 2 s"}
    # the show draws offscreen: that is never a pass, whatever this machine's connectors
    assert not checks["display"]["ok"] and rc == 1
    lines = [x for x in r.stdout.splitlines() if x.startswith(("PASS", "FAIL"))]
    assert [x.split()[1] for x in lines] == ["mic", "display", "engine", "show", "disk",
                                             "clock", "watchdog"]


def test_no_mic_fails_with_the_fix(tmp_path, band_bundle):
    config = make_box(tmp_path, band_bundle, audio="alsa:stage_mic_that_is_not_there")
    rc, checks, _ = _selftest(config, "--listen-s", "1")
    mic = checks["mic"]
    assert rc == 1 and not mic["ok"]
    assert mic["detail"] == ("no input: capture device 'stage_mic_that_is_not_there' not found "
                             "(is the mic plugged in and the name right?)")
    assert "`arecord -l` must list its sound card" in mic["fix"]
    assert not checks["watchdog"]["ok"] and "the show is not running" in \
        checks["watchdog"]["detail"]


def test_a_silent_mic_fails_with_the_fix(tmp_path, band_bundle):
    write_wav(tmp_path / "quiet.wav", np.zeros(16000 * 10))
    config = make_box(tmp_path, band_bundle, audio=f"file:{tmp_path / 'quiet.wav'}")
    rc, checks, _ = _selftest(config, "--listen-s", "1.5")
    mic = checks["mic"]
    assert rc == 1 and not mic["ok"]
    assert "present but hearing only silence (loudest -120 dBFS in 1.5 s" in mic["detail"]
    assert "phantom power" in mic["fix"] and "input gain" in mic["fix"]


def test_bad_media_fails_with_the_fix(tmp_path, band_bundle):
    config = make_box(tmp_path, band_bundle)
    rc, checks, _ = _selftest(config, "--listen-s", "1")
    assert checks["show"]["ok"]
    (tmp_path / "show" / "overlays" / "jazz.mp4").write_bytes(b"\x00not a film" * 100)
    rc, checks, _ = _selftest(config, "--listen-s", "1")
    show = checks["show"]
    assert rc == 1 and not show["ok"]
    assert "overlays.jazz: film 'overlays/jazz.mp4' cannot be decoded" in show["detail"]
    assert "jazz will have no overlay" in show["detail"]
    assert show["fix"].startswith("re-encode or replace the film")
    assert f"appliance check-show {tmp_path / 'show'}" in show["fix"]


def test_a_tampered_engine_fails_with_the_fix(tmp_path, signing_key):
    secret, keys = signing_key
    bundle = make_signed_band_bundle(tmp_path / "bands-1", secret, name="bands", version="1")
    config = make_box(tmp_path, None, trusted_keys=keys)
    r = appliance("engine", "install", str(bundle), "--config", str(config), "--no-reload")
    assert r.returncode == 0, r.stderr
    rc, checks, _ = _selftest(config, "--listen-s", "1")
    assert checks["engine"]["ok"], checks["engine"]
    assert "bands-1 verified: hashes, signature, test vectors" in checks["engine"]["detail"]
    with open(tmp_path / "store" / "bands-1" / "model.onnx", "r+b") as f:
        f.seek(60)
        f.write(b"\x00\x01\x02")
    rc, checks, _ = _selftest(config, "--listen-s", "1")
    engine = checks["engine"]
    assert rc == 1 and not engine["ok"]
    assert engine["detail"].startswith("bands-1 failed at 'files':")
    assert "checksum mismatch" in engine["detail"]
    assert "sudo appliance engine rollback" in engine["fix"]


def test_disk_fails_below_the_free_space_it_needs(tmp_path):
    import os

    free = os.statvfs(tmp_path).f_bavail * os.statvfs(tmp_path).f_frsize
    ok = check_disk([tmp_path / "events"], min_free=max(1, free // 2))
    assert ok.ok and f"{free / 2**30:.1f} GB free" in ok.detail
    short = check_disk([tmp_path / "events"], min_free=free + (1 << 30))
    assert not short.ok and short.detail.startswith("only ")
    assert "delete old show logs" in short.fix


def test_clock_fails_when_set_before_this_software_was_installed():
    installed = software_time()
    back = check_clock(now=datetime(1970, 1, 1, 0, 1).astimezone())
    assert not back.ok
    assert back.detail.startswith("the clock says 1970-01-01 00:01, before this software was "
                                  f"installed ({installed:%Y-%m-%d})")
    assert "sudo timedatectl set-time" in back.fix
    assert check_clock().ok  # this machine's clock
    assert check_clock(now=installed + timedelta(hours=1)).ok


def test_watchdog_fails_without_the_daemon_and_without_systemd_watching():
    gone = check_watchdog(None, "no running show answers at /run/appliance/control.sock")
    assert not gone.ok and "the show is not running (no running show answers" in gone.detail
    assert "sudo systemctl start appliance" in gone.fix
    unwatched = check_watchdog({"watchdog_s": None, "stalled": []})
    assert not unwatched.ok and "without systemd's watchdog" in unwatched.detail
    stalled = check_watchdog({"watchdog_s": 15.0, "stalled": ["listen"]})
    assert not stalled.ok and "loop(s) listen stalled" in stalled.detail
    assert check_watchdog({"watchdog_s": 15.0, "stalled": []}).ok


def _drm_stand_in(root: Path, connectors: dict[str, str]) -> Path:
    for name, status in connectors.items():
        (root / f"card0-{name}").mkdir(parents=True)
        (root / f"card0-{name}" / "status").write_text(status + "\n")
    (root / "card0").mkdir(exist_ok=True)  # the card itself has no status
    return root


def test_display_check_on_a_stand_in_sysfs_tree(tmp_path):
    """Stand-in: a /sys/class/drm tree written here (this machine has none; the Jetson's
    real one is read by the same code)."""
    plugged = _drm_stand_in(tmp_path / "a", {"HDMI-A-1": "connected", "DP-1": "disconnected"})
    assert check_display("kms", plugged).ok
    assert "screen connected on HDMI-A-1; the show draws on it (kms)" == \
        check_display("kms", plugged).detail
    off = check_display("offscreen", plugged)
    assert not off.ok and "the show draws offscreen" in off.detail
    assert "grep output:" in off.fix
    unplugged = check_display("kms", _drm_stand_in(tmp_path / "b", {"HDMI-A-1": "disconnected"}))
    assert not unplugged.ok and unplugged.detail == "no screen connected (HDMI-A-1 disconnected)"
    assert "HDMI/DisplayPort cable" in unplugged.fix
    assert check_display(None, plugged).ok  # the show is not running: the cable still counts


def test_display_check_on_this_machine_reads_the_real_sysfs():
    result = check_display("kms", DRM)
    if not DRM.is_dir():  # this machine: no display hardware at all
        assert not result.ok and "no display connector found" in result.detail


KEY_AT_S = 4.0  # after the film has started (the listener needs ~2 s of music, then the show)


def test_selftest_key_stand_in_posted_key_event_shows_the_card_in_the_real_daemon(
        tmp_path, band_bundle):
    """A T key press posted into pygame's event queue 4 s after start (where a USB keyboard's
    arrives on the box) runs the self-test inside the show; the recorded output shows the
    card over the film, and the result reaches `appliance status` and the events file.
    On the box: plug a keyboard in, press T, read the screen."""
    import av

    rec = tmp_path / "screen.mp4"
    config = make_box(tmp_path, band_bundle, size=(640, 360), record=rec, main_s=20.0)
    d = Daemon(config, tmp_path, APPLIANCE_TEST_KEY=f"t@{KEY_AT_S:g}")
    d.wait_for("READY=1", timeout=60)
    reading = Collecting(d)
    try:
        s = wait_status(config, lambda s: s["selftest"] is not None, timeout=40)
        time.sleep(1.0)  # the card stays up: a few more frames of it
    finally:
        reading.stop()
        rc, _ = d.stop()
        log = d.close()
    assert rc == 0
    checks = {c["check"]: c for c in s["selftest"]["checks"]}
    assert list(checks) == ["mic", "display", "engine", "show", "disk", "clock", "watchdog"]
    assert checks["mic"]["ok"] and checks["engine"]["ok"] and checks["show"]["ok"]
    assert not checks["watchdog"]["ok"]  # started by hand here, not by systemd
    assert "self-test asked for on the box's keyboard" in log
    (events,) = (tmp_path / "events").glob("*.jsonl")
    lines = [json.loads(x) for x in events.read_text().splitlines()]
    (result,) = [e for e in lines if e["event"] == "selftest"]
    assert [c["check"] for c in result["checks"]] == list(checks)
    main_at = next(e["t"] for e in lines if e.get("state") == "main")
    assert main_at < 3.0  # the film was on screen when the key came

    # the screen: the film (grey) before the key, the card (near black, white title) after
    with av.open(str(rec)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    fps = 10
    film, card = frames[int((main_at + KEY_AT_S) / 2 * fps)], frames[-3]  # film: before the key

    def background(frame: np.ndarray) -> float:  # share of the picture in the card's colour
        square = frame[:, 140:500].reshape(-1, 3).astype(int)  # where the 32×32 film shows
        return float((np.abs(square - (12, 12, 16)).sum(1) < 30).mean())

    assert background(film) < 0.05           # grey film (80) and its overlay
    assert background(card) > 0.6            # the card covers it
    title = card[15:60, 20:200]
    assert (title > 200).all(axis=2).mean() > 0.02  # "Self-test" in white
    body = card[60:320].reshape(-1, 3).astype(int)
    assert (np.abs(body - (70, 210, 90)).sum(1) < 90).mean() > 0.002   # green PASS lines
    assert (np.abs(body - (235, 70, 60)).sum(1) < 90).mean() > 0.002   # red FAIL lines


def test_the_card_goes_after_a_minute_and_the_film_comes_back():
    """The self-test screen's own clock (a fake one here): the card covers the film while the
    checks run and for SHOW_RESULT_S after, then nothing is drawn over the film."""
    import pygame

    from appliance.config import default_config
    from appliance.service.selftest_screen import SHOW_RESULT_S, SelfTestScreen

    now = [100.0]
    facts = Facts(default_config(), Path("/nonexistent"), Path("/nonexistent"), "config",
                  "no input: unplugged", daemon=None, daemon_why="test")
    finished = threading.Event()
    screen = SelfTestScreen(lambda: facts, lambda s: iter(()), clock=lambda: now[0],
                            on_done=lambda checks: finished.set())
    assert screen.card() is None
    screen.take_keys(["a", "space"])
    assert screen.card() is None  # not a self-test key
    screen.take_keys(["t"])
    assert finished.wait(60)
    draw = screen.card()
    assert draw is not None
    surface = pygame.Surface((320, 180))
    surface.fill((80, 80, 80))
    draw(surface)
    assert surface.get_at((300, 170))[:3] == (12, 12, 16)
    assert screen.last is not None and not screen.last["passed"]
    now[0] += SHOW_RESULT_S - 1
    assert screen.card() is not None
    now[0] += 2
    assert screen.card() is None


def test_check_lines_say_pass_or_fail_and_the_fix():
    assert Check("disk", True, "9 GB free").line() == "PASS  disk     9 GB free"
    assert Check("mic", False, "silent", "turn it on").line() == \
        "FAIL  mic      silent — fix: turn it on"
