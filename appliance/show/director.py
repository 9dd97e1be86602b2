"""The director: a pure state machine from (show clock, genre estimates) to cues and events.

No I/O, no threads, no wall clock: the service feeds it estimates with :meth:`Director.hear`
and calls :meth:`Director.advance` with the show clock; every rule is testable with a fake
clock. States::

    attract --(music for start_after_music_s)--> main --(film end)--> ending --> rest --> attract
       ^                                          |
       +-------------(silence for idle_return_s)--+

An estimate counts from the show time at which the director takes it in (the next
``advance``), not from its audio time ``t``: the show clock is the only clock here.
Transitions that fall due between two ``advance`` calls (film end, ending end, rest end) are
stamped with their exact time, so films stay aligned even when ``advance`` runs late.
"""

from __future__ import annotations

import math
from collections import deque
from pathlib import Path
from typing import Any

from appliance.listen.estimate import GENRES, NONE, GenreEstimate
from appliance.show.cues import Cue, PlayFilm, SetOverlay
from appliance.show.showfile import DEFAULT_ENDING, MediaInfo, Show

ATTRACT, MAIN, ENDING, REST = "attract", "main", "ending", "rest"

# Decision reasons, as written in the ending event's evidence.
CONFIDENT = "confident"
UNCERTAIN = "uncertain"
TOO_LITTLE_MUSIC = "too_little_music"
NO_ENDING_FILM = "no_ending_film"

_HISTORY_MARGIN_S = 10.0  # estimates kept beyond listen_s, for decisions stamped in the past
PREROLL_S = 8.0  # films a cue may start within this long are named by `upcoming`


class Director:
    """Turns what is heard into what is shown. See the module docstring for the rules.

    ``stale_after_s``: if no estimate arrives for this long (listener stalled), the room
    counts as silent, so a dead listener cannot hold the show in "music" forever.
    """

    def __init__(self, show: Show, *, stale_after_s: float = 2.0) -> None:
        if show.main is None:
            raise ValueError("the show has no main film; it cannot be directed")
        self.show = show
        self.state: str = ATTRACT
        self._main: MediaInfo = show.main
        self._stale_after_s = stale_after_s
        self._started = False
        self._now = -math.inf
        self._pending: list[GenreEstimate] = []
        self._history: deque[tuple[float, GenreEstimate]] = deque()
        self._events: list[dict[str, Any]] = []
        # what is heard, stamped with show time
        self._last_heard: float | None = None
        self._music_since: float | None = None
        self._silence_since: float | None = None
        self._heard_genre: str | None = None
        self._target: str | None = None  # the overlay the music asks for
        self._target_since = -math.inf
        # the performance
        self._listen_from = -math.inf  # music heard before this is ignored (after a rest)
        self._main_start = 0.0
        self._main_end = 0.0
        self._decision_t = 0.0
        self._decision: str | None = None
        self._ending_end = 0.0
        self._rest_end = 0.0
        self._overlay: str | None = None
        self._overlay_since = -math.inf

    # --- the interface ---------------------------------------------------------------

    def hear(self, estimate: GenreEstimate) -> None:
        """Take in one listener estimate; it counts from the next :meth:`advance`."""
        self._pending.append(estimate)

    def advance(self, t: float) -> list[Cue]:
        """Move the show clock to ``t`` (seconds, monotonic) and return the cues due now."""
        t = max(t, self._now)  # the clock never runs back
        self._now = t
        cues: list[Cue] = []
        if not self._started:
            self._started = True
            self._enter_attract(t, cues)
        for estimate in self._pending:
            self._take_in(t, estimate)
        self._pending.clear()
        self._check_stale(t)
        for _ in range(32):  # a late advance may cross several boundaries at once
            if not self._step(t, cues):
                break
        if self.state == MAIN:
            self._update_overlay(t, cues)
        return cues

    def drain_events(self) -> list[dict[str, Any]]:
        """Show events since the last call, oldest first (one JSON line each in the log)."""
        events, self._events = self._events, []
        return events

    @property
    def overlay(self) -> str | None:
        """The genre whose overlay is shown (or fading in), None when there is none."""
        return self._overlay

    @property
    def genre(self) -> str | None:
        """What the room sounds like now (a genre or "none"); None before anything is heard."""
        return self._heard_genre

    @property
    def now(self) -> float:
        """The show clock as of the last :meth:`advance` (0 before the first)."""
        return self._now if math.isfinite(self._now) else 0.0

    @property
    def wanted_overlay(self) -> str | None:
        """The overlay the music asks for now (shown once the dwell rules allow)."""
        return self._target

    @property
    def decision_due(self) -> float | None:
        """Show time at which this performance's ending will be chosen; None outside the film
        or once it is chosen."""
        return self._decision_t if self.state == MAIN and self._decision is None else None

    def upcoming(self) -> list[tuple[Path, bool]]:
        """The films a cue may start soon, as (path, loop), so the player can open them and
        decode their first frames ahead (preroll) and the cut needs no decoding.

        In attract: the main film (music may start it any moment). In the film: every
        candidate ending from PREROLL_S before the decision, only the chosen one once it is
        decided; the attract film once the silence is near idle_return_s. In the ending and
        the rest: the attract film (the main film when the show holds its last frame)."""
        show, t = self.show, self.now
        attract = ((show.attract or self._main).path, True)
        main = (self._main.path, False)
        if self.state == ATTRACT:
            return [main]
        if self.state == MAIN:
            films: list[tuple[Path, bool]] = []
            if self._decision is not None:
                chosen = show.endings.get(self._decision) or show.endings.get(DEFAULT_ENDING)
                if chosen is not None:
                    films.append((chosen.path, False))
            elif t >= self._decision_t - PREROLL_S:
                for info in show.endings.values():
                    if (info.path, False) not in films:
                        films.append((info.path, False))
            quiet = self._quiet_since()
            if (self._decision is None and show.idle_return_s > 0 and quiet is not None
                    and t - quiet >= show.idle_return_s - PREROLL_S):
                films.append(attract)
            return films
        return [main] if show.then == "hold" else [attract]

    @property
    def decision(self) -> str | None:
        """The ending chosen for this performance, once decided ("default" or a genre)."""
        return self._decision

    # --- hearing ---------------------------------------------------------------------

    def _take_in(self, t: float, estimate: GenreEstimate) -> None:
        self._check_stale(t)  # a gap before this estimate breaks the music, too
        self._last_heard = t
        self._history.append((t, estimate))
        horizon = t - self.show.listen_s - _HISTORY_MARGIN_S
        while self._history and self._history[0][0] < horizon:
            self._history.popleft()
        if estimate.music_present:
            if self._music_since is None:
                self._music_since = t
            self._silence_since = None
        else:
            if self._silence_since is None:
                self._silence_since = t
            self._music_since = None
        genre = estimate.genre if estimate.music_present else NONE
        self._hear_genre(t, genre, estimate.confidence)

    def _hear_genre(self, t: float, genre: str, confidence: float) -> None:
        if genre != self._heard_genre:
            self._heard_genre = genre
            self._event(t, "genre", genre=genre, confidence=round(confidence, 4))
        target = genre if genre in self.show.overlays else None
        if target != self._target:
            self._target = target
            self._target_since = t

    def _check_stale(self, t: float) -> None:
        if self._last_heard is None or t - self._last_heard <= self._stale_after_s:
            return
        if self._heard_genre != NONE or self._music_since is not None:
            quiet_from = self._last_heard + self._stale_after_s
            self._music_since = None
            if self._silence_since is None:
                self._silence_since = quiet_from
            self._hear_genre(quiet_from, NONE, 0.0)

    def _quiet_since(self) -> float | None:
        """Since when the room has been silent in this film; None while music plays."""
        if self._music_since is not None:
            return None
        since = self._silence_since if self._silence_since is not None else self._main_start
        return max(since, self._main_start)

    # --- states ----------------------------------------------------------------------

    def _step(self, t: float, cues: list[Cue]) -> bool:
        """Make at most one due transition; True if one was made."""
        show = self.show
        if self.state == ATTRACT:
            if self._music_since is not None:
                since = max(self._music_since, self._listen_from)
                if t - since >= show.start_after_music_s:
                    self._enter_main(t, cues)
                    return True
        elif self.state == MAIN:
            if self._decision is None and t >= self._decision_t:
                self._decide(self._decision_t)
                return True
            if self._decision is not None and t >= self._main_end:
                self._enter_ending(self._main_end, cues)
                return True
            if self._decision is None and show.idle_return_s > 0:
                quiet = self._quiet_since()
                if quiet is not None and t - quiet >= show.idle_return_s:
                    self._enter_attract(t, cues)
                    return True
        elif self.state == ENDING:
            if t >= self._ending_end:
                self._enter_rest(self._ending_end)
                return True
        elif self.state == REST:
            if t >= self._rest_end:
                self._enter_attract(self._rest_end, cues, hold=show.then == "hold")
                return True
        return False

    def _set_state(self, t: float, state: str, **extra: Any) -> None:
        self.state = state
        self._event(t, "state", state=state, **extra)

    def _enter_attract(self, t: float, cues: list[Cue], hold: bool = False) -> None:
        if self._overlay is not None:
            self._set_overlay(t, None, self.show.overlay_fade_s, cues)
        self._listen_from = t
        self._decision = None
        if hold:  # the ending's last frame stays up; music may start the next show
            self._set_state(t, ATTRACT, holding=True)
            return
        film = self.show.attract or self._main
        cues.append(PlayFilm(t, film.path, "attract", loop=True))
        self._set_state(t, ATTRACT)

    def _enter_main(self, t: float, cues: list[Cue]) -> None:
        show = self.show
        self._main_start = t
        self._main_end = t + self._main.duration_s
        at = show.decision_at_s
        self._decision_t = t + (min(at, self._main.duration_s) if at > 0 else
                                self._main.duration_s)
        self._decision = None
        self._overlay = None
        self._overlay_since = -math.inf  # "no overlay yet" needs no dwell
        cues.append(PlayFilm(t, self._main.path, "main", duration_s=self._main.duration_s))
        self._set_state(t, MAIN)

    def _enter_ending(self, t: float, cues: list[Cue]) -> None:
        show = self.show
        if self._overlay is not None:
            self._set_overlay(t, None, show.ending_fade_s, cues)
        ending = show.endings.get(self._decision or DEFAULT_ENDING)
        if ending is None:  # no default ending either: the main film's last frame, then rest
            self._enter_rest(t)
            return
        self._ending_end = t + ending.duration_s
        cues.append(PlayFilm(t, ending.path, "ending", fade_s=show.ending_fade_s,
                             duration_s=ending.duration_s))
        self._set_state(t, ENDING)

    def _enter_rest(self, t: float) -> None:
        self._rest_end = t + self.show.rest_s
        self._set_state(t, REST)

    # --- the decision ----------------------------------------------------------------

    def _choose(self, t: float) -> tuple[str, dict[str, Any]]:
        """The ending the rules pick from what was heard up to ``t``, with its evidence."""
        show = self.show
        start = max(t - show.listen_s, self._listen_from)
        window = [e for ts, e in self._history if start <= ts <= t]
        music = [e for e in window if e.music_present]
        fraction = len(music) / len(window) if window else 0.0
        labels = (*GENRES, NONE)
        mean = {
            g: (sum(e.probs.get(g, 0.0) for e in music) / len(music) if music else 0.0)
            for g in labels
        }
        leading = max(GENRES, key=lambda g: mean[g]) if music else None
        if leading is None or fraction < show.min_music_fraction:
            genre, reason = DEFAULT_ENDING, TOO_LITTLE_MUSIC
        elif mean[leading] < show.min_confidence:
            genre, reason = DEFAULT_ENDING, UNCERTAIN
        elif leading not in show.endings:
            genre, reason = DEFAULT_ENDING, NO_ENDING_FILM
        else:
            genre, reason = leading, CONFIDENT
        evidence = {
            "music_fraction": round(fraction, 4),
            "mean_probs": {g: round(p, 4) for g, p in mean.items()},
            "n_estimates": len(window),
            "leading": leading,
            "reason": reason,
            "from": round(max(start, 0.0) if math.isfinite(start) else 0.0, 4),
        }
        return genre, evidence

    def _decide(self, t: float) -> None:
        genre, evidence = self._choose(t)
        self._decision = genre
        self._event(t, "ending", genre=genre, evidence=evidence)

    def ending_now(self) -> tuple[str, dict[str, Any]]:
        """The ending the rules would pick if the decision fell now (for meters and HUDs; it
        changes nothing): ``(genre, evidence)`` as in the ending event."""
        return self._choose(self.now)

    # --- overlays --------------------------------------------------------------------

    def _update_overlay(self, t: float, cues: list[Cue]) -> None:
        """Follow the heard genre, with hysteresis: a new target must have been asked for
        min_dwell_s, and the overlay on screen stays at least min_dwell_s."""
        dwell = self.show.overlay_min_dwell_s
        if self._target == self._overlay:
            return
        if t - self._target_since < dwell or t - self._overlay_since < dwell:
            return
        self._set_overlay(t, self._target, self.show.overlay_fade_s, cues)

    def _set_overlay(self, t: float, genre: str | None, fade_s: float, cues: list[Cue]) -> None:
        path = self.show.overlays[genre].path if genre is not None else None
        cues.append(SetOverlay(t, path, genre, fade_s, blend=self.show.overlay_blend))
        self._overlay = genre
        self._overlay_since = t
        self._event(t, "overlay", genre=genre)

    def _event(self, t: float, event: str, **fields: Any) -> None:
        self._events.append({"t": round(t, 4), "event": event, **fields})
