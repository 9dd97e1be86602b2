"""The live feed: one reading per hop (what is heard, and what the show would do with it),
fanned out to every `appliance listen` and self-test watching over the control socket.

A slow watcher never holds up the show: each has a small queue, and when it is full the
oldest reading is dropped.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

from appliance.listen.estimate import GenreEstimate
from appliance.show.director import Director

WATCHERS_MAX = 8


def make_reading(t: float, estimate: GenreEstimate, director: Director | None,
                 input_status: str) -> dict:
    """One reading, as the meter and the self-test get it (from the daemon or made locally).
    ``t`` is the show's clock; ``heard_t`` the audio time of the hop the estimate ends at."""
    r = {"t": round(t, 3), "heard_t": round(estimate.t, 3),
         "probs": {k: round(v, 4) for k, v in estimate.probs.items()},
         "genre": estimate.genre, "confidence": round(estimate.confidence, 4),
         "music": estimate.music_present, "level_db": estimate.level_db,
         "input": input_status}
    if director is not None:
        ending, evidence = director.ending_now()
        due = director.decision_due
        r.update({"state": director.state, "overlay": director.overlay,
                  "wanted_overlay": director.wanted_overlay,
                  "ending_now": {"genre": ending, **evidence},
                  "decision_in": None if due is None else round(max(0.0, due - t), 1)})
    return r


class LiveFeed:
    """Readings in, every watcher gets each one (or misses the oldest when too slow)."""

    def __init__(self, per_watcher: int = 32) -> None:
        self._per_watcher = per_watcher
        self._watchers: list[queue.Queue] = []
        self._lock = threading.Lock()

    def publish(self, reading: dict) -> None:
        with self._lock:
            watchers = list(self._watchers)
        for q in watchers:
            while True:
                try:
                    q.put_nowait(reading)
                    break
                except queue.Full:
                    try:
                        q.get_nowait()
                    except queue.Empty:
                        pass

    @property
    def watchers(self) -> int:
        with self._lock:
            return len(self._watchers)

    def watch(self, idle_s: float = 1.0, stop: threading.Event | None = None
              ) -> Iterator[dict | None]:
        """Readings as they come; ``None`` after ``idle_s`` without one (so the caller can tell
        a quiet feed from a dead client). Stops when ``stop`` is set or the caller stops."""
        q: queue.Queue = queue.Queue(maxsize=self._per_watcher)
        with self._lock:
            if len(self._watchers) >= WATCHERS_MAX:
                raise RuntimeError(f"{WATCHERS_MAX} watchers already; try again later")
            self._watchers.append(q)
        try:
            while stop is None or not stop.is_set():
                try:
                    yield q.get(timeout=idle_s)
                except queue.Empty:
                    yield None
        finally:
            with self._lock:
                self._watchers.remove(q)
