"""The self-test on the box itself: a key on a USB keyboard plugged into the box (T or F1)
runs it, the screen asks the pianist for a few notes, then shows one line per check for a
minute; then the show's own picture comes back. The show keeps running underneath."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

import pygame

from appliance.player.card import GREEN, RED, WHITE, draw_card
from appliance.service.selftest import Check, Facts, run_checks

log = logging.getLogger("appliance.service")

KEYS = ("t", "f1")
SHOW_RESULT_S = 60.0


class SelfTestScreen:
    def __init__(self, facts: Callable[[], Facts],
                 levels: Callable[[float], Iterable[tuple[float | None, str]]], *,
                 listen_s: float = 10.0, on_done: Callable[[list[Check]], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._facts, self._levels, self.listen_s = facts, levels, listen_s
        self._on_done = on_done
        self._clock = clock
        self._lock = threading.Lock()
        self._running = False
        self._checks: list[Check] = []
        self._until: float | None = None  # the result shows until then
        self.last: dict | None = None  # the last result, for `appliance status`

    def take_keys(self, keys: list[str]) -> None:
        """Start the self-test when one of KEYS was pressed (and none is under way)."""
        if not any(k in KEYS for k in keys):
            return
        with self._lock:
            if self._running:
                return
            self._running, self._checks, self._until = True, [], None
        log.info("self-test asked for on the box's keyboard")
        threading.Thread(target=self._run, name="selftest", daemon=True).start()

    def _run(self) -> None:
        try:
            checks = run_checks(self._facts(), lambda: self._levels(self.listen_s),
                                listen_s=self.listen_s, on_check=self._add)
        except Exception as e:  # never leave the card up for ever
            log.exception("self-test failed to run")
            checks = [*self._checks, Check("selftest", False, f"could not finish: {e}")]
        with self._lock:
            self._checks = checks
            self._running = False
            self._until = self._clock() + SHOW_RESULT_S
        self.last = {"at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                     "passed": all(c.ok for c in checks),
                     "checks": [c.to_dict() for c in checks]}
        for c in checks:
            (log.info if c.ok else log.error)("self-test: %s", c.line())
        if self._on_done is not None:
            self._on_done(checks)

    def _add(self, check: Check) -> None:
        with self._lock:
            self._checks = [*self._checks, check]

    def card(self) -> Callable[[pygame.Surface], None] | None:
        """What to draw over the film now: the self-test card, or None (the film alone)."""
        with self._lock:
            running, checks, until = self._running, list(self._checks), self._until
        if not running and (until is None or self._clock() >= until):
            return None
        rows = [(("PASS  " if c.ok else "FAIL  ") + f"{c.name}: {c.detail}"
                 + ("" if c.ok or not c.fix else f" — {c.fix}"), GREEN if c.ok else RED)
                for c in checks]
        if running:
            if not checks:
                rows = [("Play a few notes on the piano now…", WHITE)]
            footer = "checking…"
        else:
            ok = all(c.ok for c in checks)
            rows.insert(0, ("All checks passed." if ok else
                            "Some checks failed: tell the technician what the red lines say.",
                            WHITE if ok else RED))
            left = max(0, round((until or 0) - self._clock()))
            footer = f"The show comes back in {left} s."

        def draw(surface: pygame.Surface) -> None:
            draw_card(surface, "Self-test", rows, footer)
        return draw
