"""`appliance status` and `appliance listen` against the real daemon (`appliance run`, a tone
in a WAV file paced in real time as the mic, SDL's offscreen output, the real control socket
and notify socket), and without it. The meter runs in a real terminal: tmux, 80×24,
send-keys and capture-pane.

The tone sits in the test bundle's band 3, which that bundle calls jazz; its level is
computed here from its amplitude. On the Jetson the same commands run against the unit:
`appliance status` (temperatures and power mode then read from its sysfs and nvpmodel
files) and `ssh box appliance listen`.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest
from rich.console import Console

from appliance.journal import JOURNAL_SOCKET, SYSTEMD_RUNNING
from appliance.service.board import read_board
from appliance.status_cli import describe
from tests.boxes import TONE_AMPLITUDE, appliance, make_box, status_json, wait_status
from tests.conftest import REPO
from tests.test_daemon import Daemon

TONE_DB = 20 * math.log10(TONE_AMPLITUDE / math.sqrt(2))  # RMS of a sine, in dBFS


@pytest.fixture(scope="module")
def show(tmp_path_factory, band_bundle):
    """A daemon watched by a (test-bound) systemd notify socket with a 2 s watchdog."""
    root = tmp_path_factory.mktemp("status")
    config = make_box(root, band_bundle, seconds=240.0)
    d = Daemon(config, root, WATCHDOG_USEC="2000000", WATCHDOG_PID="")
    done = threading.Event()
    # read the notify socket all along, as systemd does: a full socket queue would block the
    # daemon's sd_notify call (and, with it, every thread of the daemon)
    reader = threading.Thread(target=lambda: [d.collect(0.3) for _ in iter(done.is_set, True)],
                              daemon=True)
    try:
        d.wait_for("READY=1", timeout=60)
        reader.start()
        yield config, root
        done.set()
        reader.join()
        rc, _ = d.stop()
        assert rc == 0
    finally:
        done.set()
        d.close()


def test_status_names_state_style_level_engine_frames_uptime_and_last_shows(show):
    config, root = show
    # a whole show: film 6 s, ending 2 s, rest 1 s, then attract again
    s = wait_status(config, lambda s: any(x["length_s"] for x in s["shows"]), timeout=60)
    assert s["hearing"] == "jazz" and s["music"] and s["confidence"] > 0.5
    assert s["level_db"] == pytest.approx(TONE_DB, abs=0.5)
    assert s["input"] == "ok" and s["source"].endswith("mic.wav")
    assert s["engine"] == "bands-test-1" and s["runs_on"] == "ONNX Runtime FP32"
    assert s["state"] in ("attract", "main", "ending", "rest") and s["output"] == "offscreen"
    assert s["watchdog_s"] == 2.0 and s["stalled"] == []
    assert s["board"] == read_board()  # on this machine: "not exposed" for each
    assert s["uptime_s"] > 0 and datetime.fromisoformat(s["started"])
    time.sleep(1.0)
    later = status_json(config)
    assert later["frames"]["presented"] > s["frames"]["presented"]  # the film runs on
    assert later["uptime_s"] > s["uptime_s"]

    # the last shows are the events file's performances, with their wall-clock times
    (events,) = (root / "events").glob("*.jsonl")
    lines = [json.loads(x) for x in events.read_text().splitlines()]
    done = next(x for x in reversed(later["shows"]) if x["length_s"])
    start = next(e for e in lines if e["event"] == "state" and e["state"] == "main"
                 and e["t"] == done["start_t"])
    ending = next(e for e in lines if e["event"] == "ending" and e["t"] >= start["t"])
    back = next(e for e in lines if e["event"] == "state" and e["state"] == "attract"
                and e["t"] > start["t"])
    assert done["started"] == start["wall"] and done["ended"] == back["wall"]
    assert done["ending"] == ending["genre"] == "jazz"
    assert done["reason"] == ending["evidence"]["reason"] == "confident"
    assert done["length_s"] == pytest.approx(back["t"] - start["t"], abs=0.1)

    # the words people read: the command itself, and rich into a captured 80-column console
    r = appliance("status", "--config", str(config))
    assert r.returncode == 0, r.stderr
    for words in ("jazz", f"level {round(TONE_DB)} dBFS", "bands-test-1 on ONNX Runtime FP32",
                  "watchdog armed (2 s)", "last shows", "confident", "presented"):
        assert words in r.stdout, (words, r.stdout)
    console = Console(record=True, width=80, file=open(os.devnull, "w"))
    console.print(describe(later))
    text = console.export_text()
    assert all(len(line) <= 80 for line in text.splitlines())
    assert "not exposed" in text and "jazz" in text


def test_status_without_a_daemon_says_so_and_why(tmp_path, band_bundle):
    config = make_box(tmp_path, band_bundle, seconds=1.0)
    r = appliance("status", "--config", str(config))
    assert r.returncode == 1
    words = " ".join(r.stdout.split())  # as read, whatever the terminal's width
    assert "the show is not running" in words
    assert "no running show answers at" in words and "(No such file or directory)" in words
    if not JOURNAL_SOCKET.exists():  # this machine: no journald
        assert "journald is not running on this machine" in words
    else:  # the box: the unit's own last lines, or that there are none
        assert "last journal lines of appliance.service" in words or "no lines" in words
    if not SYSTEMD_RUNNING.is_dir():
        assert "systemd is not running on this machine" in words
    j = json.loads(appliance("status", "--json", "--config", str(config)).stdout)
    assert j["running"] is False and j["board"] == read_board()
    assert j["error"] == (f"no running show answers at {tmp_path / 'run' / 'control.sock'} "
                          "(No such file or directory)")
    assert j["unit"]["unit"] == "appliance"


class Tmux:
    """A real terminal: a private tmux server, one 80×24 window."""

    def __init__(self, command: str) -> None:
        self.server = f"appliance-test-{os.getpid()}"
        self._tmux("new-session", "-d", "-s", "meter", "-x", "80", "-y", "24", "-c", str(REPO),
                   f"{command}; echo EXIT=$?; sleep 60")

    def _tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.server, *args], check=True,
                              capture_output=True, text=True).stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "meter")

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", "meter", *keys)

    def wait_for(self, want, timeout: float = 30.0) -> str:
        end = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < end:
            screen = self.screen()
            if want(screen):
                return screen
            time.sleep(0.3)
        raise AssertionError(f"the terminal never showed what was expected:\n{screen}")

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.server, "kill-server"], capture_output=True)


def _row(screen: str, label: str) -> float:
    """The probability printed at the end of a style's bar row."""
    line = next(x for x in screen.splitlines() if x.startswith(label + " "))
    return float(line.split()[-1])


def _listen(config: Path, *extra: str) -> str:
    return shlex.join([sys.executable, "-m", "appliance", "listen", "--config", str(config),
                       *extra])


def test_listen_meter_in_a_real_terminal_follows_the_running_show(show):
    config, _root = show
    term = Tmux(_listen(config))
    try:
        screen = term.wait_for(lambda s: "ending" in s and "jazz if decided now" in s)
        lines = screen.rstrip("\n").splitlines()
        assert len(lines) <= 24 and all(len(x) <= 80 for x in lines)
        assert "the running show (bands-test-1 on ONNX Runtime FP32" in screen
        assert _row(screen, "jazz") > 0.5
        assert all(_row(screen, g) < 0.2 for g in ("baroque", "classical", "ragtime", "none"))
        level = next(x for x in lines if x.startswith("input"))
        assert float(level.split()[-2]) == pytest.approx(TONE_DB, abs=0.5)
        assert "mic delivers" in screen and "style     jazz" in screen

        def clock(s: str) -> str:
            return next(x for x in s.splitlines() if "Ctrl-C to quit" in x)

        # it refreshes at the hop rate (0.5 s): the reading's time moves on
        first = clock(screen)
        term.wait_for(lambda s: "Ctrl-C" in s and clock(s) != first, timeout=5)
        term.keys("C-c")
        term.wait_for(lambda s: "EXIT=0" in s, timeout=10)
    finally:
        term.close()


def test_listen_without_a_daemon_listens_to_the_mic_directly_in_a_real_terminal(
        tmp_path, band_bundle):
    """No show running: the meter says so and why, and listens to the config's source itself
    (here a recording of band 0, which the test bundle calls baroque)."""
    config = make_box(tmp_path, band_bundle, band=0, seconds=60.0)
    term = Tmux(_listen(config))
    try:
        screen = term.wait_for(lambda s: "baroque if decided now" in s)
        words = " ".join(screen.split())
        assert "the show is not running (no running show answers" in words
        assert "mic.wav directly with bands-test-1" in words
        assert _row(screen, "baroque") > 0.5
        term.keys("C-c")
        term.wait_for(lambda s: "EXIT=0" in s, timeout=10)
    finally:
        term.close()


def test_listen_json_gives_one_reading_per_hop_from_the_running_show(show, band_bundle):
    config, _root = show
    r = appliance("listen", "--json", "--count", "4", "--config", str(config), timeout=30)
    assert r.returncode == 0, r.stderr
    readings = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(readings) == 4
    # one reading per hop of audio: none skipped, none repeated, whatever the machine's load
    hop_s = json.loads((band_bundle / "manifest.json").read_text())["hop_s"]
    gaps = [b["heard_t"] - a["heard_t"] for a, b in zip(readings, readings[1:], strict=False)]
    assert gaps == pytest.approx([hop_s] * 3), gaps
    assert all(b["t"] >= a["t"] for a, b in zip(readings, readings[1:], strict=False))
    for x in readings:
        assert set(x["probs"]) == {"baroque", "classical", "ragtime", "jazz", "none"}
        assert x["ending_now"]["genre"] in ("jazz", "default")
        assert x["state"] in ("attract", "main", "ending", "rest")


def test_the_meter_fits_80x24_and_keeps_labels_and_numbers_with_a_long_input_status():
    """A missing mic gives the longest words the meter shows: they wrap under the level;
    the labels, bars and numbers keep their widths (once they were squeezed to 'i…')."""
    from appliance.audio import open_source
    from appliance.meter import render

    # the words the real ALSA source gives for a mic that is not there (it does not raise)
    src = open_source("alsa:stage_mic_that_is_not_there", rate=16000)
    status = src.status
    src.close()
    assert status.startswith("no input:") and len(status) > 60
    reading = {"t": 1.0, "probs": {"none": 0.97, "jazz": 0.03}, "genre": "none",
               "confidence": 0.97, "music": False, "level_db": -120.0, "input": status,
               "state": "main", "overlay": "jazz", "wanted_overlay": "ragtime",
               "ending_now": {"genre": "default", "reason": "too_little_music",
                              "leading": "ragtime", "music_fraction": 0.123,
                              "n_estimates": 400, "mean_probs": {"ragtime": 0.41}},
               "decision_in": 123.0}
    header = "the running show (genre-10.10 on ONNX Runtime INT8; " + "A" * 60 + ") at /x"
    console = Console(record=True, width=80, height=24, file=open(os.devnull, "w"))
    console.print(render(reading, header, "no reading for a second: is the show listening?"))
    lines = console.export_text().rstrip("\n").splitlines()
    assert len(lines) <= 24 and all(len(x) <= 80 for x in lines), lines
    assert " ".join(" ".join(lines).split()).count(" ".join(status.split())) == 1
    assert next(x for x in lines if x.startswith("input ")).rstrip().endswith("-120.0 dBFS")
    assert _row("\n".join(lines), "none") == 0.97 and _row("\n".join(lines), "jazz") == 0.03
    assert "music 12 % of 400 readings" in " ".join(" ".join(lines).split())
