"""What the listener tells the rest of the box, once per hop."""

from __future__ import annotations

from dataclasses import dataclass, field

GENRES: tuple[str, ...] = ("baroque", "classical", "ragtime", "jazz")
NONE = "none"


@dataclass(frozen=True)
class GenreEstimate:
    """One smoothed reading of the room.

    ``t`` is audio time in seconds (samples heard / rate). ``probs`` maps each engine label
    (the four genres and ``none``) to a smoothed probability. ``genre`` is the smoothed
    decision: one of GENRES, or ``none`` while no music is present. ``level_db`` is the RMS
    level of the newest hop of audio in dBFS (the input meter).
    """

    t: float
    probs: dict[str, float]
    music_present: bool
    genre: str
    confidence: float
    raw_probs: dict[str, float] = field(default_factory=dict)
    level_db: float | None = None
