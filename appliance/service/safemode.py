"""Safe mode: after repeated failed starts, play the film without listening.

systemd restarts the daemon for ever (``Restart=always``). If something in the listening
half (a wedged engine, a driver, a bad config value) kills every start, the screen would
blink black every few seconds for weeks. So each start is written down (``starts.json`` in
the state folder, stamped with the boot and the monotonic clock, so a wall-clock step cannot
age or revive one), a clean stop clears the list, and when ``after`` starts within
``window_s`` died without a clean stop, the next start runs :func:`run_safe`: the attract
loop and the default ending, in turn, no engine and no mic, and a status line that says so.
A technician's ``systemctl restart appliance`` (a clean stop) leaves safe mode.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from pathlib import Path

from appliance.service.pacing import wait_for_next_frame
from appliance.show.cues import PlayFilm
from appliance.show.showfile import Show

log = logging.getLogger("appliance.service")

SAFE_ATTRACT_S = 120.0  # the attract loop this long, then the default ending, then again


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


class StartRecord:
    """The daemon's recent starts, to tell a crash loop from a box that simply restarted."""

    def __init__(self, path: Path, *, after: int, window_s: float,
                 clock=time.monotonic) -> None:
        self.path = Path(path)
        self.after = after
        self.window_s = window_s
        self.clock = clock
        self.boot = boot_id()
        self.failed = 0  # starts in the window that ended without a clean stop

    def _read(self) -> list[dict]:
        try:
            starts = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return []
        return [s for s in starts if isinstance(s, dict)] if isinstance(starts, list) else []

    def _write(self, starts: list[dict]) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(starts))
            os.replace(tmp, self.path)
        except OSError as e:  # a full or read-only disk: no crash count, never a crash
            log.warning("cannot record this start in %s (%s)", self.path, e)

    def begin(self) -> bool:
        """Record this start; True when the daemon should run in safe mode."""
        now = self.clock()
        recent = [s for s in self._read() if s.get("boot") == self.boot
                  and isinstance(s.get("mono"), int | float) and now - s["mono"] <= self.window_s]
        self.failed = len(recent)  # every start still listed ended without a clean stop
        self._write([*recent, {"boot": self.boot, "mono": now, "pid": os.getpid()}])
        return self.after > 0 and self.failed >= self.after

    def clean_stop(self) -> None:
        """A clean stop (SIGTERM): the crash count starts again from nothing."""
        self._write([])


class SafeShow:
    """What safe mode plays instead of the director: the attract loop, then the default
    ending, in turn, hearing nothing (the director needs someone to play to start a film)."""

    def __init__(self, show: Show, attract_s: float = SAFE_ATTRACT_S) -> None:
        self.show = show
        self.attract_s = attract_s
        self.state = "safe"
        self._next: float | None = None
        self._in_ending = False
        self._events: list[dict] = []

    def advance(self, t: float) -> list:
        if self._next is not None and t < self._next:
            return []
        ending = self.show.endings.get("default")
        attract = self.show.attract or self.show.main
        if self._in_ending or self._next is None or ending is None:
            self._in_ending = False
            self._next = t + self.attract_s
            self._events.append({"t": round(t, 3), "event": "state", "state": "safe-attract"})
            return [PlayFilm(t, attract.path, "attract", loop=True)]
        self._in_ending = True
        self._next = t + ending.duration_s
        self._events.append({"t": round(t, 3), "event": "state", "state": "safe-ending"})
        return [PlayFilm(t, ending.path, "ending", duration_s=ending.duration_s)]

    def drain_events(self) -> list[dict]:
        out, self._events = self._events, []
        return out


def run_safe(config, show: Show, starts: StartRecord) -> int:
    """The safe-mode daemon: film only, READY after the first frame, WATCHDOG from the one
    loop there is, STATUS saying why it is in safe mode."""
    from appliance.player import Player, open_output
    from appliance.service.daemon import _events_log
    from appliance.service.notify import Watchdog, notify, watchdog_interval

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGHUP, lambda *_: log.warning(
        "safe mode: a reload changes nothing; restart the service to leave safe mode"))
    why = (f"safe mode: {starts.failed} failed starts within {starts.window_s / 60:g} min; "
           "not listening, playing the attract loop and the default ending; see the journal "
           "for the failures, then: sudo systemctl restart appliance")
    log.error("%s", why)
    output = open_output(config.display.output, show.size, show.fps, record=None)
    player = Player(output, show.size, show.fps, realtime=True)
    output.on_first_frame = lambda: notify("READY=1")
    events = _events_log(config, show)
    safe = SafeShow(show)
    watchdog = Watchdog(["render"], watchdog_interval())
    notify(f"STATUS={why}")
    t0 = time.monotonic()
    frame = 0
    clean = False
    try:
        while not stop.is_set():
            t = time.monotonic() - t0
            for cue in safe.advance(t):
                player.apply(cue)
            player.present(t)
            for event in safe.drain_events():
                events.write(event)
            watchdog.beat("render")
            watchdog.tick()
            frame = wait_for_next_frame(stop, t0, frame, show.fps)
        clean = True
    finally:
        notify("STOPPING=1")
        player.close()
        events.close()
        if clean:
            starts.clean_stop()
    return 0
