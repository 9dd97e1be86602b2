"""Show events read back: which performances happened, how each ended, what was heard.

One performance runs from the main film's start to the show's return to the attract loop
(through its ending and rest, or straight back when the room fell silent). The daemon feeds
its events in as they happen (``appliance status`` lists the last shows); ``appliance
report`` reads whole event files. Both use :class:`Performances`, so they cannot disagree.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

LEAD_IN_S = 15.0  # what was heard this long before a film started belongs to its picture


@dataclass
class Performance:
    """One performance: the main film, the decision, the ending (if any)."""

    start_t: float  # show time the main film started
    source: str = ""  # the events file it came from
    start_wall: str | None = None  # local time, when the daemon stamped it
    end_t: float | None = None  # show time it was back in the attract loop
    end_wall: str | None = None
    ending: str | None = None  # the ending chosen ("default" or a style); None: no decision
    ending_t: float | None = None  # show time of the decision
    evidence: dict = field(default_factory=dict)
    events: list[dict] = field(default_factory=list)  # every event of it, lead-in included

    @property
    def complete(self) -> bool:
        return self.end_t is not None

    def summary(self) -> dict:
        """The few facts `appliance status` shows for a past performance."""
        return {"started": self.start_wall, "start_t": self.start_t, "ending": self.ending,
                "reason": self.evidence.get("reason") if self.ending else
                ("silence" if self.complete else "playing"),
                "ended": self.end_wall, "end_t": self.end_t,
                "length_s": None if self.end_t is None else round(self.end_t - self.start_t, 1)}


class Performances:
    """Splits a stream of show events into performances.

    ``keep_events``: keep each performance's own events (the report draws them); the daemon
    keeps only the summaries, and only the last ``keep_last``.
    """

    def __init__(self, *, keep_events: bool = False, keep_last: int | None = None,
                 source: str = "") -> None:
        self.keep_events = keep_events
        self.source = source
        self.done: deque[Performance] = deque(maxlen=keep_last)
        self.current: Performance | None = None
        self._lead_in: deque[dict] = deque()
        self._lock = threading.Lock()

    def take(self, event: dict) -> None:
        """One event, in the order written."""
        with self._lock:
            self._take(event)

    def _take(self, event: dict) -> None:
        kind, t = event.get("event"), event.get("t")
        if not isinstance(t, int | float):
            return
        if kind == "state" and event.get("state") == "main":
            if self.current is not None:  # a film restarted without attract in between
                self._close(t, event.get("wall"))
            self.current = Performance(float(t), self.source, start_wall=event.get("wall"))
            if self.keep_events:
                self.current.events = [e for e in self._lead_in if e["t"] >= t - LEAD_IN_S]
            self._lead_in.clear()
        perf = self.current
        if perf is None:
            if self.keep_events:
                self._lead_in.append(event)
                while self._lead_in and self._lead_in[0]["t"] < t - LEAD_IN_S:
                    self._lead_in.popleft()
            return
        if self.keep_events:
            perf.events.append(event)
        if kind == "ending":
            perf.ending = event.get("genre")
            perf.ending_t = float(t)
            evidence = event.get("evidence")
            perf.evidence = evidence if isinstance(evidence, dict) else {}
        elif kind == "state" and event.get("state") == "attract":
            self._close(t, event.get("wall"))

    def _close(self, t: float, wall: str | None) -> None:
        assert self.current is not None
        self.current.end_t = float(t)
        self.current.end_wall = wall
        self.done.append(self.current)
        self.current = None

    def all(self) -> list[Performance]:
        """Finished performances, oldest first, then the one under way (if any)."""
        with self._lock:
            return [*self.done, *([self.current] if self.current else [])]

    def recent(self, n: int = 5) -> list[dict]:
        """Summaries of the last ``n`` performances, newest first."""
        return [p.summary() for p in reversed(self.all()[-n:])]


@dataclass
class EventFile:
    """One events file read back."""

    path: Path
    events: list[dict]
    unreadable: int  # lines that were not a JSON object with a time (a cut-off last line...)
    performances: list[Performance]

    @property
    def end_t(self) -> float:
        return max((e["t"] for e in self.events), default=0.0)


def read_events(path: Path | str) -> EventFile:
    """Read an events file written by the daemon or by simulate. Lines that cannot be read
    are counted, not fatal: a power cut may leave half a line at the end."""
    path = Path(path)
    events, bad = [], 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                e = json.loads(line)
            except ValueError:
                bad += 1
                continue
            if (not isinstance(e, dict) or not isinstance(e.get("t"), int | float)
                    or isinstance(e.get("t"), bool) or not isinstance(e.get("event"), str)):
                bad += 1
                continue
            events.append(e)
    split = Performances(keep_events=True, source=path.name)
    for e in events:
        split.take(e)
    return EventFile(path, events, bad, split.all())


def style_seconds(events: Iterable[dict]) -> dict[str, float]:
    """How long each style was heard (from the ``genre`` events: a style lasts until the next
    reading; the last one until the file's last event). ``none`` is not a style."""
    events = list(events)
    end = max((e["t"] for e in events), default=0.0)
    changes = [(e["t"], e.get("genre")) for e in events if e.get("event") == "genre"]
    out: dict[str, float] = {}
    if not changes:
        return out
    for (t, genre), nxt in zip(changes, [*changes[1:], (end, None)], strict=True):
        if isinstance(genre, str) and genre != "none":
            out[genre] = out.get(genre, 0.0) + max(0.0, nxt[0] - t)
    return out
