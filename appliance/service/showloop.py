"""One step of the show: what was heard → the director → the player."""

from __future__ import annotations

from appliance.listen.estimate import GenreEstimate
from appliance.service.events import EventLog


class ShowLoop:
    """The same step runs in the daemon (wall clock) and in simulate (audio clock)."""

    def __init__(self, director, player, events: EventLog) -> None:
        self.director = director
        self.player = player
        self.events = events
        self.endings: list[str] = []

    def step(self, t: float, heard: list[GenreEstimate]) -> None:
        for estimate in heard:
            self.director.hear(estimate)
        for cue in self.director.advance(t):
            self.player.apply(cue)
        self.player.present(t)
        for event in self.director.drain_events():
            if event.get("event") == "ending":
                self.endings.append(event.get("genre"))
            self.events.write(event)

    @property
    def performing(self) -> bool:
        """True while a performance is under way (main film or its ending)."""
        return self.director.state in ("main", "ending")
