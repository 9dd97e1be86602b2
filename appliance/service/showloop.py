"""One step of the show: what was heard → the director → the player."""

from __future__ import annotations

from collections.abc import Callable

from appliance.listen.estimate import GenreEstimate
from appliance.service.events import EventLog
from appliance.service.performances import Performances


def heard_event(t: float, estimate: GenreEstimate) -> dict:
    """The ``heard`` line of the events file: one smoothed reading (what reports draw)."""
    return {"t": round(t, 4), "event": "heard",
            "probs": {k: round(v, 3) for k, v in estimate.probs.items()},
            "genre": estimate.genre, "music": estimate.music_present,
            "level_db": estimate.level_db}


class ShowLoop:
    """The same step runs in the daemon (wall clock) and in simulate (audio clock).

    Every reading heard while music plays or a film runs goes into the events file as a
    ``heard`` line (an empty room in the attract loop writes nothing); ``shows`` keeps the
    last performances for `appliance status`."""

    def __init__(self, director, player, events: EventLog,
                 on_event: Callable[[dict], None] | None = None) -> None:
        self.director = director
        self.player = player
        self.events = events
        self.endings: list[str] = []
        self.last: GenreEstimate | None = None  # the newest reading
        self.shows = Performances(keep_last=20)
        self.on_event = on_event  # also told every event written (the daemon's metrics)

    def step(self, t: float, heard: list[GenreEstimate]) -> None:
        for estimate in heard:
            self.director.hear(estimate)
        if heard:
            self.last = heard[-1]
        cues = self.director.advance(t)
        for cue in cues:
            self.player.apply(cue)
        preroll = getattr(self.player, "preroll", None)
        if preroll is not None and not cues:  # a frame that cuts does nothing more
            preroll(self.director.upcoming())  # the next films, decoded before their cue
        self.player.present(t)
        for event in self.director.drain_events():
            if event.get("event") == "ending":
                self.endings.append(event.get("genre"))
            self._write(event)
        for estimate in heard:
            if estimate.music_present or self.performing:
                self._write(heard_event(t, estimate))

    def _write(self, event: dict) -> None:
        written = self.events.write(event)
        self.shows.take(written)
        if self.on_event is not None:
            self.on_event(written)

    @property
    def performing(self) -> bool:
        """True while a performance is under way (main film or its ending)."""
        return self.director.state in ("main", "ending")
