"""The preview's HUD read back from the MP4 against the events of the same run; the board's
temperatures and power mode (a Jetson sysfs/nvpmodel tree written here as a stand-in, and
this machine's real /sys); the live feed and the director's "ending if decided now"; the
control socket's streams."""

from __future__ import annotations

import json
import math
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from appliance.hud import COLOURS, bar_rects
from appliance.listen.estimate import GenreEstimate
from appliance.service.board import NOT_EXPOSED, power_mode, read_board, temperatures
from appliance.service.control import ControlServer, request, watch
from appliance.service.live import LiveFeed, make_reading
from appliance.show.director import Director
from appliance.show.showfile import load_show
from tests.boxes import appliance
from tests.conftest import band_tone_hz, make_tiny_show, write_wav


def test_simulate_hud_bars_follow_the_heard_probabilities(tmp_path, band_bundle):
    import av
    import pygame

    show = make_tiny_show(tmp_path / "show", main_s=12.0)
    toml = show / "show.toml"
    toml.write_text(toml.read_text().replace("size = [32, 32]", "size = [640, 360]"))
    t = np.arange(16000 * 10) / 16000
    k = np.where(t < 5, 0, 3)  # baroque for 5 s, then jazz
    freq = np.array([band_tone_hz(0), band_tone_hz(3)])[(k > 0).astype(int)]
    write_wav(tmp_path / "a.wav", 0.3 * np.sin(2 * np.pi * np.cumsum(freq) / 16000))
    runs = {}
    for hud in (True, False):
        out, log = tmp_path / f"hud-{hud}.mp4", tmp_path / f"hud-{hud}.jsonl"
        r = appliance("simulate", "--audio", str(tmp_path / "a.wav"), "--show", str(show),
                      "--engine", str(band_bundle), "--log", str(log), "--out", str(out),
                      *(["--hud"] if hud else []))
        assert r.returncode == 0, r.stderr
        with av.open(str(out)) as c:
            frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        runs[hud] = frames, [json.loads(x) for x in log.read_text().splitlines()]
    frames, events = runs[True]
    heard = [e for e in events if e["event"] == "heard"]
    fps = 10
    checked = 0
    for e in heard[2::3]:  # the bars show the last reading until the next one
        i = round(e["t"] * fps)
        if i >= len(frames):
            continue
        frame = frames[i]
        for label, rect in bar_rects((640, 360)).items():
            row = frame[rect.centery, rect.left:rect.right].astype(int)
            lit = (np.abs(row - COLOURS[label]).sum(1) < 60).mean()
            assert lit == pytest.approx(e["probs"][label], abs=0.06), (e["t"], label)
        checked += 1
    assert checked >= 5
    # without --hud the same place shows the film, and nothing like the bars
    plain = runs[False][0][40]
    rect = bar_rects((640, 360))["jazz"]
    assert not (np.abs(plain[rect.centery, rect.left:rect.right].astype(int)
                       - COLOURS["jazz"]).sum(1) < 60).any()
    assert pygame  # the HUD draws with pygame, as the player does


def _jetson_stand_in(root: Path) -> Path:
    """Stand-in: the files a Jetson Orin exposes, written here (no board sensors on this
    machine)."""
    zones = {"cpu-thermal": 47500, "gpu-thermal": 45300, "tj-thermal": 48000,
             "cv0-thermal": -256000}  # an idle sensor reads -256 °C on a Jetson
    for i, (name, milli) in enumerate(zones.items()):
        z = root / "sys/class/thermal" / f"thermal_zone{i}"
        z.mkdir(parents=True)
        (z / "type").write_text(name + "\n")
        (z / "temp").write_text(f"{milli}\n")
    (root / "var/lib/nvpmodel").mkdir(parents=True)
    (root / "var/lib/nvpmodel/status").write_text("pmode:0002 fmode:cool\n")
    (root / "etc").mkdir()
    (root / "etc/nvpmodel.conf").write_text(
        "< POWER_MODEL ID=0 NAME=MAXN >\nCPU_ONLINE CORE_0 1\n"
        "< POWER_MODEL ID=2 NAME=15W >\nCPU_ONLINE CORE_0 1\n< PM_CONFIG DEFAULT=2 >\n")
    (root / "proc/device-tree").mkdir(parents=True)
    (root / "proc/device-tree/model").write_bytes(b"NVIDIA Jetson Orin Nano Developer Kit\x00")
    return root


def test_board_stand_in_jetson_tree_gives_temperatures_and_power_mode(tmp_path):
    root = _jetson_stand_in(tmp_path)
    assert temperatures(root) == {"cpu-thermal": 47.5, "gpu-thermal": 45.3, "tj-thermal": 48.0}
    assert power_mode(root) == "15W (mode 2)"
    assert read_board(root)["model"] == "NVIDIA Jetson Orin Nano Developer Kit"
    (root / "var/lib/nvpmodel/status").unlink()
    assert power_mode(root) == NOT_EXPOSED


def test_board_on_this_machine_reads_the_real_files():
    board = read_board()
    zones = sorted(Path("/sys/class/thermal").glob("thermal_zone*"))
    if not zones:  # this machine: no sensors, no nvpmodel
        assert board["temperatures_c"] == NOT_EXPOSED
    else:
        assert isinstance(board["temperatures_c"], dict)
    if not Path("/var/lib/nvpmodel/status").exists():
        assert board["power_mode"] == NOT_EXPOSED


def _estimate(genre: str, p: float, level: float = -20.0) -> GenreEstimate:
    probs = dict.fromkeys(("baroque", "classical", "ragtime", "jazz", "none"),
                          (1 - p) / 4)
    probs[genre] = p
    return GenreEstimate(0.0, probs, genre != "none", genre, p, level_db=level)


def test_the_ending_if_decided_now_is_the_ending_then_chosen(tmp_path):
    show, _ = load_show(make_tiny_show(tmp_path / "show", main_s=6.0, listen_s=3.0))
    d = Director(show)
    t = 0.0
    previews = []
    while d.decision is None and t < 20:
        d.hear(_estimate("ragtime" if t < 4 else "classical", 0.8))
        d.advance(t)
        previews.append((t, d.ending_now(), make_reading(t, _estimate("jazz", 0.9), d, "ok")))
        t += 0.5
    (decision,) = [e for e in d.drain_events() if e["event"] == "ending"]
    at = decision["t"]
    before = [p for p in previews if p[0] == at - 0.5][0]
    genre, evidence = before[1]
    # half a second before the decision the preview already names what is then chosen
    assert genre == decision["genre"] == "classical"
    assert evidence["reason"] == decision["evidence"]["reason"]
    reading = before[2]
    assert reading["ending_now"]["genre"] == "classical"
    assert reading["decision_in"] == pytest.approx(at - before[0], abs=0.06)
    assert reading["level_db"] == -20.0 and reading["genre"] == "jazz"
    assert decision["evidence"]["from"] == pytest.approx(at - show.listen_s)


def test_the_listener_reports_the_level_of_each_hop(band_bundle):
    """The level is the newest hop's, not the window's: one quiet hop after loud ones reads
    quiet at once."""
    from appliance.listen import open_listener

    listener = open_listener(band_bundle)
    rate = listener.fe.sample_rate
    hop = listener.bundle.hop_samples
    n = 0

    def hops(amplitude: float, count: int) -> float:
        nonlocal n
        x = amplitude * np.sin(2 * np.pi * 440 * np.arange(n, n + hop * count) / rate)
        n += hop * count
        return listener.feed(x.astype(np.float32))[-1].level_db

    assert hops(0.5, 4) == pytest.approx(20 * math.log10(0.5 / math.sqrt(2)), abs=0.2)
    assert hops(0.05, 1) == pytest.approx(20 * math.log10(0.05 / math.sqrt(2)), abs=0.5)
    assert hops(0.0, 1) == -120.0


def test_the_live_feed_drops_the_oldest_for_a_slow_watcher():
    feed = LiveFeed(per_watcher=3)
    watch_it = feed.watch(idle_s=0.05)
    assert next(watch_it) is None and feed.watchers == 1  # nothing yet: an idle beat
    for i in range(5):
        feed.publish({"i": i})
    assert [next(watch_it)["i"] for _ in range(3)] == [2, 3, 4]
    watch_it.close()
    assert feed.watchers == 0


def test_a_watching_client_never_keeps_status_waiting_and_hanging_up_ends_its_stream(
        tmp_path):
    feed = LiveFeed()

    def handle(req):
        if req["cmd"] == "watch":
            return ({"n": i} if i is not None else {"idle": True}
                    for i in (r.get("n") if r else None for r in feed.watch(idle_s=0.2)))
        return {"ok": True, "watchers": feed.watchers}

    server = ControlServer(tmp_path / "c.sock", handle)
    server.start()
    stop = threading.Event()

    def publish():
        n = 0
        while not stop.is_set():
            feed.publish({"n": n})
            n += 1
            time.sleep(0.05)

    threading.Thread(target=publish, daemon=True).start()
    try:
        streams = [watch(tmp_path / "c.sock", timeout=5) for _ in range(3)]
        got = [[next(s) for _ in range(5)] for s in streams]
        assert all(all("n" in x for x in g) for g in got)
        assert request(tmp_path / "c.sock", "status", timeout=2)["watchers"] == 3
        for s in streams:
            s.close()  # the client hangs up
        end = time.monotonic() + 5
        while feed.watchers and time.monotonic() < end:
            time.sleep(0.05)
        assert feed.watchers == 0
    finally:
        stop.set()
        server.close()
