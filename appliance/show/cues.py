"""Cues: what the director tells the player. Plain data, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PlayFilm:
    """Switch the base layer to ``path``, whose first frame belongs at show time ``t``.

    ``duration_s``: how long the show gives it (the probed length; None for a loop). If the
    file turns out bad, the player shows its "unavailable" card for that long."""

    t: float
    path: Path
    role: str  # "attract" | "main" | "ending"
    loop: bool = False
    fade_s: float = 0.0
    duration_s: float | None = None


@dataclass(frozen=True)
class SetOverlay:
    """Crossfade the overlay layer to ``path`` (None: no overlay) starting at show time ``t``."""

    t: float
    path: Path | None
    genre: str | None
    fade_s: float
    blend: str = "add"  # "add" | "alpha" | "screen"


Cue = PlayFilm | SetOverlay
