"""One JSON line per show event, flushed as it happens (a power cut loses at most a line).

The daemon keeps one events file per show (``<show>.jsonl`` in the events folder), not one
per start: a box restarted every night for months would otherwise fill its disk with small
files, and one long file with ``heard`` lines (one per hop while music plays) grows without
bound. So the file is rotated by size into numbered files (``<show>.000042.jsonl``, higher is
newer), and only the newest ``keep`` of those are kept: oldest removed first. A rotation
waits for the start of a performance, so a performance stays in one file, unless the file
has grown past twice its limit.

A disk that is full or read-only never stops the show: the events go to the log (the
journal on the box) with one plain-words line saying so, and the file is tried again every
``RETRY_S`` seconds; when it works again that is said once too.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import IO

log = logging.getLogger("appliance.events")

RETRY_S = 10.0  # a full or read-only disk is tried again this often (monotonic clock)


class EventLog:
    """``wall_clock``: stamp each event with the local time (``"wall"``), as the daemon does;
    a simulation's events carry only its own clock ``t``.

    ``max_bytes``/``keep``: rotate the file once it is this big, keeping this many rotated
    files (0: never rotate). ``clock``: the monotonic clock the retry timer reads (tests)."""

    def __init__(self, path: Path | None, *, wall_clock: bool = False, max_bytes: int = 0,
                 keep: int = 8, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self.wall_clock = wall_clock
        self.max_bytes = max_bytes
        self.keep = keep
        self.clock = clock
        self.to_journal = 0  # events that went to the log only while the file could not be used
        self.failures = 0  # times the file stopped working
        self._f: IO[str] | None = None
        self._size = 0
        self._retry_at: float | None = None
        if path is not None:
            try:
                self._open()
            except OSError as e:  # a full or read-only disk at start: the journal, and retry
                self._fail(e)

    @property
    def degraded(self) -> bool:
        """True while events go to the journal only (disk full, read-only, removed)."""
        return self.path is not None and self._f is None

    def _open(self) -> None:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "a", buffering=1, encoding="utf-8")
        self._size = self._f.tell()

    def write(self, event: dict) -> dict:
        """Write one event (flushed) and return it as written. Never raises for the disk."""
        if self.wall_clock:
            event = {**event, "wall": datetime.now().astimezone().isoformat(timespec="seconds")}
        line = json.dumps(event, separators=(",", ":"), default=_plain)
        written = self._write_line(line, event) if self.path is not None else False
        level = logging.INFO if (not written and self.path is not None) or \
            event.get("event") in ("state", "ending", "overlay") else logging.DEBUG
        log.log(level, "%s", line)
        return event

    def _write_line(self, line: str, event: dict) -> bool:
        if self._f is None:
            if self._retry_at is None or self.clock() < self._retry_at:
                self.to_journal += 1
                return False
            try:
                self._open()
            except OSError as e:
                self._retry_at = self.clock() + RETRY_S
                log.debug("show events still cannot be written to %s (%s)", self.path, e)
                self.to_journal += 1
                return False
            log.warning("show events are written to %s again (%d went to the journal only "
                        "meanwhile)", self.path, self.to_journal)
            self._retry_at = None
        try:
            if self.max_bytes and self._size >= self.max_bytes and (
                    self._size >= 2 * self.max_bytes
                    or (event.get("event") == "state" and event.get("state") == "main")):
                self._rotate()
            data = line + "\n"
            assert self._f is not None
            self._f.write(data)
            self._size += len(data.encode("utf-8"))
            return True
        except OSError as e:
            self._fail(e)
            self.to_journal += 1
            return False

    def _fail(self, e: OSError) -> None:
        self.failures += 1
        log.warning("show events cannot be written to %s (%s); they go to the journal until "
                    "it works again (tried every %g s)", self.path,
                    e.strerror or e, RETRY_S)
        if self._f is not None:
            try:
                self._f.close()
            except OSError:
                pass  # the unwritten buffer is lost; its events were logged
        self._f = None
        self._retry_at = self.clock() + RETRY_S

    def _rotate(self) -> None:
        assert self.path is not None and self._f is not None
        self._f.close()
        self._f = None
        numbers = [n for n, _ in rotated_files(self.path)]
        number = (numbers[-1] + 1) if numbers else 1
        os.replace(self.path, self._numbered(number))
        numbers.append(number)
        for n in numbers[:max(0, len(numbers) - self.keep)]:  # oldest first
            self._numbered(n).unlink(missing_ok=True)
        self._open()

    def _numbered(self, n: int) -> Path:
        assert self.path is not None
        return self.path.with_name(f"{self.path.stem}.{n:06d}.jsonl")

    def close(self) -> None:
        if self._f is not None:
            try:
                self._f.close()
            except OSError:
                pass
            self._f = None


def rotated_files(path: Path) -> list[tuple[int, Path]]:
    """The rotated files of ``path`` (``<stem>.NNNNNN.jsonl``), oldest first."""
    pattern = re.compile(re.escape(path.stem) + r"\.(\d{6,})\.jsonl")
    found = []
    if path.parent.is_dir():
        for p in path.parent.iterdir():
            m = pattern.fullmatch(p.name)
            if m:
                found.append((int(m.group(1)), p))
    return sorted(found)


def show_events_path(events_dir: Path, show_folder: Path) -> Path:
    """``<events_dir>/<show folder name>.jsonl``: one file per show."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(show_folder).resolve().name).strip("._")
    return Path(events_dir) / f"{name or 'show'}.jsonl"


def _plain(o: object) -> object:
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "item"):
        return o.item()
    return str(o)
