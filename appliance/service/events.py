"""One JSON line per show event, flushed as it happens (a power cut loses at most a line)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import IO

log = logging.getLogger("appliance.events")


class EventLog:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._f: IO[str] | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._f = open(path, "a", buffering=1)

    def write(self, event: dict) -> None:
        line = json.dumps(event, separators=(",", ":"), default=_plain)
        if self._f is not None:
            self._f.write(line + "\n")
        level = logging.INFO if event.get("event") in ("state", "ending", "overlay") else \
            logging.DEBUG
        log.log(level, "%s", line)

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
