"""One JSON line per show event, flushed as it happens (a power cut loses at most a line)."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path
from typing import IO

log = logging.getLogger("appliance.events")


class EventLog:
    """``wall_clock``: stamp each event with the local time (``"wall"``), as the daemon does;
    a simulation's events carry only its own clock ``t``."""

    def __init__(self, path: Path | None, *, wall_clock: bool = False) -> None:
        self.path = path
        self.wall_clock = wall_clock
        self._f: IO[str] | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._f = open(path, "a", buffering=1)

    def write(self, event: dict) -> dict:
        """Write one event (flushed) and return it as written."""
        if self.wall_clock:
            event = {**event, "wall": datetime.now().astimezone().isoformat(timespec="seconds")}
        line = json.dumps(event, separators=(",", ":"), default=_plain)
        if self._f is not None:
            self._f.write(line + "\n")
        level = logging.INFO if event.get("event") in ("state", "ending", "overlay") else \
            logging.DEBUG
        log.log(level, "%s", line)
        return event

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


def _plain(o: object) -> object:
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "item"):
        return o.item()
    return str(o)
