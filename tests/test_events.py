"""Show events kept bounded (one file per show, rotated by size and count, oldest removed
first) and a full or read-only state disk survived (events go to the journal, then back).

The disk is a real filesystem: a 64 KiB tmpfs mounted here (root only; skipped elsewhere),
filled for real and remounted read-only for real.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from pathlib import Path

import pytest

from appliance.service.events import RETRY_S, EventLog, rotated_files, show_events_path
from appliance.service.performances import read_events


def _show(log: EventLog, t: float, hops: int) -> float:
    """One performance: attract → main, ``hops`` heard lines, ending, attract."""
    log.write({"t": t, "event": "state", "state": "main"})
    for i in range(hops):
        log.write({"t": t + i * 0.5, "event": "heard", "genre": "jazz", "probs": {"jazz": 0.9}})
    log.write({"t": t + hops * 0.5, "event": "ending", "genre": "jazz"})
    log.write({"t": t + hops * 0.5 + 1, "event": "state", "state": "attract"})
    return t + hops * 0.5 + 2


def test_one_file_per_show_named_after_the_show_folder(tmp_path: Path) -> None:
    assert show_events_path(tmp_path, tmp_path / "My Show!") == tmp_path / "My_Show.jsonl"
    assert show_events_path(tmp_path, Path("/srv/shows/demo")).name == "demo.jsonl"


def test_file_filled_past_its_limit_rotates_and_the_oldest_go_first(tmp_path: Path) -> None:
    path = tmp_path / "events" / "demo.jsonl"
    log = EventLog(path, max_bytes=4096, keep=3)
    t = 0.0
    for _ in range(60):  # ~60 x 1.5 KiB: about 20 rotations
        t = _show(log, t, hops=15)
    log.close()
    rotated = rotated_files(path)
    assert len(rotated) == 3  # only the newest three kept
    numbers = [n for n, _ in rotated]
    assert numbers == sorted(numbers) and numbers[0] > 10  # the oldest were removed
    files = [p for _, p in rotated] + [path]
    total = sum(p.stat().st_size for p in files)
    assert total <= 4 * 2 * 4096  # bounded: keep+1 files of at most twice the limit
    for p in files:
        read = read_events(p)
        assert read.unreadable == 0
        # a rotation waits for a performance's start: every file holds whole performances
        assert all(perf.complete and perf.ending == "jazz" for perf in read.performances)
        assert read.events[0]["event"] == "state" and read.events[0]["state"] == "main"
    # the events are in time order across the kept files, newest in demo.jsonl
    ts = [json.loads(line)["t"] for p in files for line in p.read_text().splitlines()]
    assert ts == sorted(ts) and ts[-1] == t - 1


def test_a_film_that_never_ends_is_still_cut_at_twice_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "demo.jsonl"
    log = EventLog(path, max_bytes=2048, keep=2)
    log.write({"t": 0, "event": "state", "state": "main"})
    for i in range(2000):
        log.write({"t": i, "event": "heard", "genre": "jazz"})
    log.close()
    sizes = [p.stat().st_size for _, p in rotated_files(path)] + [path.stat().st_size]
    assert len(sizes) == 3 and max(sizes) <= 2 * 2048 + 200


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def small_disk(tmp_path: Path):
    """A real 64 KiB filesystem (tmpfs), or a skip where this process may not mount."""
    mnt = tmp_path / "state"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip()})")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_full_disk_sends_events_to_the_journal_then_back(small_disk: Path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="appliance.events")
    clock = _Clock()
    log = EventLog(small_disk / "events" / "demo.jsonl", clock=clock)
    filler = small_disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)  # fill the disk for real
    try:
        while os.write(fd, b"x" * 512):
            pass
    except OSError:
        pass
    os.close(fd)
    for i in range(200):  # the show plays on; none of this raises
        log.write({"t": i, "event": "heard", "genre": "jazz", "probs": {"jazz": 0.5}})
    assert log.degraded and log.to_journal > 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "No space left on device" in warnings[0]
    assert "go to the journal" in warnings[0]
    journal_lines = [r.getMessage() for r in caplog.records
                     if r.levelno == logging.INFO and '"heard"' in r.getMessage()]
    assert len(journal_lines) >= log.to_journal  # every lost line is in the journal
    filler.unlink()  # space returns
    log.write({"t": 200, "event": "heard"})
    assert log.degraded  # not before the retry time: no open() per event on a full disk
    clock.now += RETRY_S
    log.write({"t": 201, "event": "ending", "genre": "jazz"})
    assert not log.degraded
    log.close()
    assert '"t":201' in (small_disk / "events" / "demo.jsonl").read_text()
    back = [r.getMessage() for r in caplog.records if "are written to" in r.getMessage()]
    assert len(back) == 1 and "went to the journal" in back[0]


def test_read_only_disk_at_start_then_writable(small_disk: Path, caplog) -> None:
    # (a mount cannot be made read-only under an open file, so this is the boot case: the
    # kernel left the state disk read-only after an unclean shutdown)
    caplog.set_level(logging.INFO, logger="appliance.events")
    clock = _Clock()
    path = small_disk / "events" / "demo.jsonl"
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    try:
        log = EventLog(path, clock=clock)
        for i in range(50):
            log.write({"t": i, "event": "heard"})
        assert log.degraded and log.to_journal == 50
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    clock.now += RETRY_S
    log.write({"t": 99, "event": "state", "state": "attract"})
    assert not log.degraded
    log.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and "Read-only file system" in warnings[0]
    assert path.read_text().count("\n") == 1 and '"t":99' in path.read_text()
