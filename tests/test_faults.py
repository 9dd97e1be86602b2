"""Faults survived by the daemon's real parts, each said once in plain words.

The engine faults run the daemon's own listen thread (``ListenThread``), engine source and
hot swap on real ONNX Runtime engines; only the failing engine itself is a stand-in (an
engine does not return NaN on demand). The mic fault runs the real ALSA source through real
libasound (see tests/test_audio_alsa.py for the ``file`` PCM stand-in for a sound card).
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from appliance.audio import open_source
from appliance.config import default_config, default_engine_dir
from appliance.listen.engine import OnnxEngine
from appliance.service.daemon import ListenThread
from appliance.service.hotswap import EngineSource, HotSwap
from appliance.service.notify import Watchdog
from tests.conftest import band_tone_hz, make_band_bundle, write_wav
from tests.test_daemon import box  # noqa: F401  (the fixture is used by name)


def _config(engine: Path):
    import dataclasses

    c = default_config()
    return dataclasses.replace(c, listen=dataclasses.replace(c.listen, engine=engine))


def _bundle_with_int8(folder: Path, name: str) -> Path:
    """A band bundle (tests/conftest.py) that also carries an "INT8" model: a copy of its FP32
    one, so that it passes its test vectors on any CPU (the shipped INT8 does not on every
    x86 CPU, docs/MODEL.md)."""
    import json
    import shutil

    from appliance.listen.bundle import write_manifest

    make_band_bundle(folder, name=name)
    shutil.copy(folder / "model.onnx", folder / "model.int8.onnx")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["models"] = {"fp32": "model.onnx", "int8": "model.int8.onnx"}
    keep = {k: v for k, v in manifest.items() if k not in ("files", "sha256")}
    write_manifest(folder, keep)
    return folder


def _tone_file(path: Path, seconds: float = 120.0) -> str:
    t = np.arange(int(16000 * seconds)) / 16000
    write_wav(path, 0.3 * np.sin(2 * np.pi * band_tone_hz(3) * t))
    return f"file:{path}"


class _Running:
    """The daemon's listen thread + hot swap around one engine source (no player)."""

    def __init__(self, source: EngineSource, audio: str) -> None:
        self.loaded = source.open_initial()
        self.stop = threading.Event()
        self.src = open_source(audio, self.loaded.listener.fe.sample_rate, realtime=False)
        self.listen = ListenThread(self.loaded.listener, self.src, Watchdog(["listen"], None),
                                   self.stop)
        self.hotswap = HotSwap(source, self.loaded, self.listen)
        self.listen.on_failing = self.hotswap.fall_back
        self.heard: list = []

    def __enter__(self) -> _Running:
        self.listen.start()
        return self

    def until(self, what, timeout: float = 20.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.heard += self.listen.drain()
            if what():
                return
            time.sleep(0.02)
        raise AssertionError("timed out")

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.listen.join(2)
        self.src.close()


def test_nan_from_the_int8_engine_is_ignored_then_it_falls_back_to_fp32(tmp_path, caplog,
                                                                         monkeypatch):
    caplog.set_level(logging.INFO)
    mine = _bundle_with_int8(tmp_path / "bands-8", "bands-8")
    source = EngineSource(_config(mine), shipped=default_engine_dir())
    real_infer = OnnxEngine.infer
    broken = threading.Event()  # set once the show runs: the engine passed its checks at start

    def nan_when_int8(self, features):  # stand-in for an INT8 engine gone bad mid-show
        probs, emb = real_infer(self, features)
        if self.precision == "int8" and broken.is_set():
            probs = np.full_like(probs, np.nan)
        return probs, emb

    monkeypatch.setattr(OnnxEngine, "infer", nan_when_int8)
    with _Running(source, _tone_file(tmp_path / "mic.wav")) as r:
        assert r.loaded.runs_on == "ONNX Runtime INT8"
        broken.set()
        r.until(lambda: r.hotswap.running.runs_on == "ONNX Runtime FP32")
        r.until(lambda: any(not isinstance(h, dict) for h in r.heard))
    estimates = [h for h in r.heard if not isinstance(h, dict)]
    assert all(np.isfinite(list(e.probs.values())).all() for e in estimates)
    assert r.listen.bad_windows >= ListenThread.FALLBACK_AFTER
    said = [m for m in caplog.messages if "returned NaN or infinity" in m]
    assert len(said) == 2, said  # the first bad window, and the fallback
    assert "ignored and counted" in said[0]
    assert "fell back to bands-8-1 ONNX Runtime FP32" in said[1]
    assert "fell back from" in r.hotswap.running.why  # and the status line says so
    assert r.hotswap.running.manifest_sha256 == r.loaded.manifest_sha256  # the same bundle


def test_an_engine_that_raises_in_fp32_too_falls_back_to_the_shipped_one(tmp_path, caplog,
                                                                          monkeypatch):
    caplog.set_level(logging.INFO)
    mine = make_band_bundle(tmp_path / "bands-mine", name="bands-mine")
    shipped = make_band_bundle(tmp_path / "bands-shipped", name="bands-shipped")
    source = EngineSource(_config(mine), shipped=shipped)
    real_infer = OnnxEngine.infer
    broken = threading.Event()

    def raise_for_mine(self, features):  # stand-in for a driver error on every window
        if self.bundle.name == "bands-mine" and broken.is_set():
            raise RuntimeError("CUDA error 700: illegal address")
        return real_infer(self, features)

    monkeypatch.setattr(OnnxEngine, "infer", raise_for_mine)
    with _Running(source, _tone_file(tmp_path / "mic.wav")) as r:
        broken.set()
        r.until(lambda: r.hotswap.running.origin == "shipped")
        r.until(lambda: any(not isinstance(h, dict) and h.music_present for h in r.heard))
    assert r.hotswap.running.label.startswith("bands-shipped")
    said = [m for m in caplog.messages if "CUDA error 700" in m]
    assert len(said) == 2 and "ignored and counted" in said[0]
    assert not [m for m in caplog.messages if "Traceback" in m]


def test_windows_the_engine_fails_on_do_not_move_the_reading(band_bundle):
    from appliance.listen import Listener, load_bundle

    listener = Listener(OnnxEngine(load_bundle(band_bundle)))
    t = np.arange(16000 * 3) / 16000
    tone = (0.3 * np.sin(2 * np.pi * band_tone_hz(3) * t)).astype(np.float32)
    before = listener.feed(tone)[-1]
    real = listener.engine.infer
    listener.engine.infer = lambda f: (np.full((1, 5), np.inf), real(f)[1])  # stand-in
    assert listener.feed(tone) == []
    assert listener.bad_windows == listener.bad_in_a_row == 6
    listener.engine.infer = real
    after = listener.feed(tone[:8000])[-1]
    assert after.genre == before.genre and np.isfinite(list(after.probs.values())).all()
    assert listener.bad_in_a_row == 0 and listener.bad_windows == 6


@pytest.mark.parametrize("outage_s", [9.0])
def test_mic_that_vanishes_and_returns_is_heard_again_within_two_seconds(
        tmp_path, monkeypatch, caplog, outage_s):
    """A yanked USB mic: reads fail (ALSA 'No such device'), then the mic is back. However long
    it was gone, the source reopens it within 2 s of its return."""
    from appliance.audio import alsa as alsa_mod
    from tests.test_audio_alsa import pcm_block, write_stereo_sine

    caplog.set_level(logging.INFO, logger="appliance.audio")
    conf = tmp_path / "asound.conf"
    infile = tmp_path / "in.raw"
    write_stereo_sine(infile, "S16_LE", 30.0, 440.0, [0.5])
    conf.write_text(pcm_block("stagemic", infile, tmp_path / "out.raw"))
    monkeypatch.setenv("ALSA_CONFIG_PATH", f"/usr/share/alsa/alsa.conf:{conf}")
    present = threading.Event()
    present.set()
    real_pcm = alsa_mod.alsaaudio.PCM

    class Yankable:  # the real PCM; its reads fail while the mic is "unplugged"
        def __init__(self, *a, **k):
            if not present.is_set():
                raise alsa_mod.alsaaudio.ALSAAudioError("No such device [stagemic]")
            self.real = real_pcm(*a, **k)

        def read(self):
            if not present.is_set():
                raise alsa_mod.alsaaudio.ALSAAudioError("No such device [stagemic]")
            time.sleep(0.02)  # pace the unpaced file PCM a little
            return self.real.read()

        def __getattr__(self, name):
            return getattr(self.real, name)

    monkeypatch.setattr(alsa_mod.alsaaudio, "PCM", Yankable)
    src = open_source("alsa:stagemic", 16000)
    try:
        assert src.status == "ok"
        present.clear()
        end = time.monotonic() + outage_s
        while time.monotonic() < end:  # the show keeps reading: zeros, never an exception
            assert src.read(800).shape == (800,)
        assert src.status.startswith("no input") and "not found" in src.status
        present.set()
        back = time.monotonic()
        while src.status != "ok" and time.monotonic() - back < 5:
            src.read(800)
        took = time.monotonic() - back
        assert src.status == "ok" and took <= 2.0, f"heard again after {took:.1f} s"
    finally:
        src.close()
    lost = [m for m in caplog.messages if "no input" in m]
    assert len(lost) == 1, lost  # said once, not at every retry


def test_repeated_crashes_bring_safe_mode_and_a_clean_restart_leaves_it(box, tmp_path):  # noqa: F811
    """The real daemon killed twice after READY (as systemd's watchdog would) starts a third
    time in safe mode: film on screen, no engine, no mic, the status line says so."""
    from tests.test_daemon import Daemon

    config = tmp_path / "appliance.toml"
    config.write_text((box / "appliance.toml").read_text().replace(
        "[service]\n", "[service]\nsafe_mode_after = 2\n").replace(
        str(box / "events"), str(tmp_path / "events")))

    def start(i: int) -> Daemon:
        (tmp_path / f"d{i}").mkdir()
        return Daemon(config, tmp_path / f"d{i}", WATCHDOG_USEC="2000000", WATCHDOG_PID="")

    for i in range(2):
        d = start(i)
        try:
            d.wait_for("READY=1", timeout=60)
            d.proc.kill()  # a crash: no clean stop
            d.proc.wait()
        finally:
            d.close()
    d = start(2)
    try:
        d.wait_for("READY=1", timeout=60)
        d.collect(1.5)
        msgs = [m for _, m in d.messages]
        status = [m for m in msgs if m.startswith("STATUS=")]
        assert status and status[0].startswith("STATUS=safe mode: 2 failed starts"), status
        assert "not listening" in status[0] and "WATCHDOG=1" in msgs
        rc, _ = d.stop()
    finally:
        log = d.close()
    assert rc == 0, log
    assert log.count("safe mode: 2 failed starts") == 1
    assert "listening on" not in log  # no engine, no mic
    events = (tmp_path / "events" / "show.jsonl").read_text()
    assert '"state":"safe-attract"' in events
    d = start(3)  # the clean stop above cleared the count: a normal start
    try:
        d.wait_for("READY=1", timeout=60)
        d.collect(1.5)
        status = [m for _, m in d.messages if m.startswith("STATUS=")]
        assert status and "safe mode" not in status[0] and "input ok" in status[0], status
    finally:
        d.stop()
        d.close()


_WALL_STEP = '''
import datetime as _dt
import os
import time

_step = float(os.environ["APPLIANCE_TEST_WALL_STEP"])
_after = int(os.environ["APPLIANCE_TEST_WALL_STEP_AFTER"])  # stamps (datetime.now calls)
_real_time, _stamps = time.time, [0]


def _stepped():
    return _real_time() + (_step if _stamps[0] > _after else 0.0)


class _SteppedDatetime(_dt.datetime):
    @classmethod
    def now(cls, tz=None):
        _stamps[0] += 1
        return _dt.datetime.fromtimestamp(_stepped(), tz)


time.time = _stepped
_dt.datetime = _SteppedDatetime
'''


def test_a_wall_clock_step_changes_no_timer(tmp_path, band_bundle):
    """The real daemon, its wall clock (time.time and datetime.now, what NTP or an RTC-less
    boot steps) thrown back a year mid-film: the film, the decision and the rest keep their
    lengths, the watchdog keeps beating. (The step is made inside the daemon's process by a
    sitecustomize stand-in, after its sixth time stamp, i.e. early in the first film however
    slowly the machine starts it: stepping this machine's clock would step every test's.)"""
    import json

    from tests.conftest import make_tiny_show
    from tests.test_daemon import Daemon

    make_tiny_show(tmp_path / "show", main_s=4.0, ending_s=2.0, listen_s=2.0, rest_s=1.0)
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(_WALL_STEP)
    mic = _tone_file(tmp_path / "mic.wav", seconds=40.0)
    (tmp_path / "appliance.toml").write_text(f"""\
[audio]
source = "{mic}"
[listen]
engine = "{band_bundle}"
[show]
path = "{tmp_path / 'show'}"
[display]
output = "offscreen"
[service]
events_dir = "{tmp_path / 'events'}"
control_socket = ""
metrics_file = "{tmp_path / 'metrics.prom'}"
""")
    (tmp_path / "d").mkdir()
    d = Daemon(tmp_path / "appliance.toml", tmp_path / "d", WATCHDOG_USEC="2000000",
               WATCHDOG_PID="", PYTHONPATH=str(tmp_path / "site"),
               APPLIANCE_TEST_WALL_STEP=str(-365 * 86400), APPLIANCE_TEST_WALL_STEP_AFTER="6")
    try:
        ready = d.wait_for("READY=1", timeout=60)
        d.collect(16.0)
        pings = [t for t, m in d.messages if m == "WATCHDOG=1" and t > ready + 4]
        assert len(pings) >= 6, d.messages  # every second, through and after the step
    finally:
        d.stop()
        d.close()
    events = [json.loads(x) for x in (tmp_path / "events" / "show.jsonl").read_text().split()]
    years = {e["wall"][:4] for e in events}
    assert len(years) == 2, years  # the step happened, as the daemon saw it
    states = [(e["t"], e["state"]) for e in events if e["event"] == "state"]
    mains = [t for t, s in states if s == "main"]
    endings = [t for t, s in states if s == "ending"]
    assert len(mains) >= 2 and endings, states  # a whole show, and the next one started
    assert endings[0] - mains[0] == pytest.approx(4.0, abs=0.25)  # the film kept its length
    ts = [e["t"] for e in events]
    assert ts == sorted(ts)


def test_sighup_refuses_a_broken_config_or_show_and_takes_a_good_show(tmp_path, band_bundle):
    """The real daemon reloads on SIGHUP: a config with a typo and a show that does not parse
    are refused with their line numbers while the running show plays on; a good new show
    takes over at the attract loop (the room is silent here, so at once)."""
    import shutil
    import signal

    from tests.conftest import make_tiny_show
    from tests.test_daemon import Daemon

    make_tiny_show(tmp_path / "showA")
    shutil.copytree(tmp_path / "showA", tmp_path / "showB")
    (tmp_path / "showB" / "show.toml").write_text(
        (tmp_path / "showA" / "show.toml").read_text().replace('"tiny"', '"second"'))
    shutil.copytree(tmp_path / "showA", tmp_path / "broken")
    (tmp_path / "broken" / "show.toml").write_text("[show]\ntitle = 'x'\nfps = = 3\n")
    write_wav(tmp_path / "mic.wav", np.zeros(16000 * 60))
    good = f"""\
[audio]
source = "file:{tmp_path / 'mic.wav'}"
[listen]
engine = "{band_bundle}"
[show]
path = "{tmp_path / 'showA'}"
[display]
output = "offscreen"
[service]
events_dir = "{tmp_path / 'events'}"
control_socket = ""
metrics_file = "{tmp_path / 'metrics.prom'}"
"""
    config = tmp_path / "appliance.toml"
    config.write_text(good)
    (tmp_path / "d").mkdir()
    d = Daemon(config, tmp_path / "d")

    def hup_and_wait(contains: str) -> str:
        d.proc.send_signal(signal.SIGHUP)
        end = time.monotonic() + 15
        while time.monotonic() < end:
            d.collect(0.2)
            found = [m for _, m in d.messages if m.startswith("STATUS=") and contains in m]
            if found:
                return found[-1]
        raise AssertionError(f"no status with {contains!r}: {d.messages[-5:]}")

    try:
        d.wait_for("READY=1", timeout=60)
        config.write_text(good.replace("[display]\n", "[display]\noutptu = 'kms'\n"))
        status = hup_and_wait("reload refused")
        assert "appliance.toml:8" in status and "did you mean" in status
        config.write_text(good.replace("showA", "broken"))
        status = hup_and_wait("show.toml:3")
        assert "reload refused" in status and "show.toml:3" in status
        assert d.proc.poll() is None  # still playing
        config.write_text(good.replace("showA", "showB"))
        d.proc.send_signal(signal.SIGHUP)
        end = time.monotonic() + 15
        while time.monotonic() < end and not (tmp_path / "events" / "showB.jsonl").exists():
            time.sleep(0.2)
        d.collect(1.5)
        last = [m for _, m in d.messages if m.startswith("STATUS=")][-1]
        assert "reload refused" not in last
    finally:
        d.stop()
        log = d.close()
    assert (tmp_path / "events" / "showB.jsonl").exists()
    assert log.count("SIGHUP: reload refused") == 2
    assert "now playing show second" in log
    assert "Traceback" not in log
