"""Telling systemd the truth: READY, STATUS, WATCHDOG (only while every loop progresses),
STOPPING. Uses systemd-python's sd_notify; a no-op when not started by systemd."""

from __future__ import annotations

import logging
import os
import threading
import time

log = logging.getLogger("appliance.service")

try:
    from systemd import daemon as _sd_daemon
except ImportError:  # pragma: no cover - systemd-python is a runtime dependency
    _sd_daemon = None


def notify(message: str) -> bool:
    if _sd_daemon is None or not os.environ.get("NOTIFY_SOCKET"):
        return False
    return bool(_sd_daemon.notify(message))


def watchdog_interval() -> float | None:
    """Seconds of systemd's WatchdogSec for this process, or None when not watched.
    (systemd-python has no watchdog_enabled(); WATCHDOG_USEC/WATCHDOG_PID say it.)"""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid.isdigit() and int(pid) != os.getpid()):
        return None
    try:
        return int(usec) / 1e6
    except ValueError:
        return None


class Watchdog:
    """Heartbeats from each loop; pings systemd only while all of them are fresh.

    A loop counts as stalled when it has not beaten for ``stall_s``. The ping goes out at
    half the watchdog interval, from the render loop, so a frozen render loop stops it too.
    """

    def __init__(self, loops: list[str], interval_s: float | None,
                 clock=time.monotonic) -> None:
        self.interval_s = interval_s
        self.stall_s = max(2.0, (interval_s or 10.0) / 2)
        self._clock = clock
        now = clock()
        self._beats = {name: now for name in loops}
        self._lock = threading.Lock()
        self._last_ping = 0.0
        self._stalled: list[str] = []

    def beat(self, loop: str, at: float | None = None) -> None:
        with self._lock:
            self._beats[loop] = self._clock() if at is None else at

    def stalled(self) -> list[str]:
        now = self._clock()
        with self._lock:
            return [n for n, t in self._beats.items() if now - t > self.stall_s]

    def tick(self) -> None:
        """Call often from the render loop."""
        if self.interval_s is None:
            return
        now = self._clock()
        if now - self._last_ping < self.interval_s / 2:
            return
        stalled = self.stalled()
        if stalled != self._stalled:
            if stalled:
                log.error("loop(s) stalled: %s — withholding the systemd watchdog ping",
                          ", ".join(stalled))
            else:
                log.info("all loops progressing again")
            self._stalled = stalled
        if not stalled:
            notify("WATCHDOG=1")
            self._last_ping = now
