"""SIGHUP / `appliance reload`: read the config file and the show again, and refuse them
whole when anything is wrong, so the running show is never swapped for a broken one.

A config file that parses into problems (a typo, a bad value) is refused even though the
box would start on it with defaults: on a running show a technician's half-finished edit
must not change anything. The new show must load and be playable, at the running show's
size and frame rate (the screen's mode is set once, at start). It takes over at the next
attract loop, never in the middle of a performance.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

from appliance.config import Config, load_config
from appliance.show.showfile import SHOW_FILE, Show, ShowError, load_show_or_raise

log = logging.getLogger("appliance.service")


@dataclass
class Reloaded:
    """What a reload found: the new config and show, or why they were refused."""

    config: Config | None = None
    show: Show | None = None  # None: the show is unchanged (or refused)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def show_fingerprint(folder: Path) -> str:
    """The show file's bytes and folder: a show that did not change is not reloaded."""
    try:
        data = (Path(folder) / SHOW_FILE).read_bytes()
    except OSError:
        data = b""
    return hashlib.sha256(str(Path(folder).resolve()).encode() + b"\0" + data).hexdigest()


def reload_config_and_show(running: Config, show: Show) -> Reloaded:
    """Read ``running.source`` and its show again; never raises."""
    if running.source is None:
        return Reloaded(running)
    config, problems = load_config(running.source)
    if problems:
        return Reloaded(errors=[str(p) for p in problems])
    if show_fingerprint(config.show.path) == show_fingerprint(show.folder):
        return Reloaded(config)
    try:
        new, _livable = load_show_or_raise(config.show.path)
    except ShowError as e:
        return Reloaded(errors=[str(p) for p in e.problems] or [str(e)])
    except Exception as e:  # anything else wrong with it is still a refusal, not a crash
        return Reloaded(errors=[f"{config.show.path}: {e}"])
    if (new.size, new.fps) != (show.size, show.fps):
        return Reloaded(errors=[
            f"{config.show.path}: the new show is {new.size[0]}x{new.size[1]} at {new.fps} fps "
            f"and the running one {show.size[0]}x{show.size[1]} at {show.fps} fps; restart "
            "the service to change the screen's mode (sudo systemctl restart appliance)"])
    for p in _livable:
        log.warning("%s", p)
    return Reloaded(config, new)
