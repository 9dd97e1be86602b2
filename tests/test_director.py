"""The director's rules, with a fake clock and synthetic estimates (no media, no I/O)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from appliance.listen.estimate import GENRES, NONE, GenreEstimate
from appliance.show.cues import PlayFilm, SetOverlay
from appliance.show.director import Director
from appliance.show.showfile import MediaInfo, Show

STEP = 0.5


def media(name: str, duration: float = 5.0) -> MediaInfo:
    return MediaInfo(Path("/show") / name, duration, 30.0, (32, 32))


def make_show(**changes: object) -> Show:
    show = Show(
        folder=Path("/show"),
        title="test",
        fps=30,
        size=(32, 32),
        attract=media("attract.mp4", 3.0),
        start_after_music_s=2.0,
        main=media("film.mp4", 40.0),
        idle_return_s=30.0,
        overlay_blend="add",
        overlay_fade_s=1.5,
        overlay_min_dwell_s=4.0,
        overlays={g: media(f"overlays/{g}.mp4") for g in GENRES},
        decision_at_s=0.0,
        listen_s=20.0,
        min_confidence=0.45,
        min_music_fraction=0.5,
        ending_fade_s=0.5,
        endings={g: media(f"endings/{g}.mp4", 6.0) for g in (*GENRES, "default")},
        then="attract",
        rest_s=10.0,
    )
    return replace(show, **changes)


def estimate(genre: str, p: float = 0.8) -> GenreEstimate:
    """A reading where ``genre`` leads with probability ``p`` (``none``: silence)."""
    if genre == NONE:
        probs = {g: 0.0 for g in GENRES} | {NONE: 1.0}
        return GenreEstimate(0.0, probs, False, NONE, 1.0)
    rest = (1.0 - p) / (len(GENRES) - 1)
    probs = {g: (p if g == genre else rest) for g in GENRES} | {NONE: 0.0}
    return GenreEstimate(0.0, probs, True, genre, p)


class Sim:
    """Drives a Director on a fake clock: one estimate per STEP, then advance."""

    def __init__(self, show: Show | None = None) -> None:
        self.director = Director(show or make_show())
        self.t = 0.0
        self.cues: list[tuple[float, object]] = []
        self.events: list[dict] = []
        self._tick(None)

    def _tick(self, genre: str | None, p: float = 0.8) -> None:
        if genre is not None:
            self.director.hear(estimate(genre, p))
        for cue in self.director.advance(self.t):
            self.cues.append((self.t, cue))
        self.events.extend(self.director.drain_events())

    def play(self, genre: str | None, until: float, p: float = 0.8) -> None:
        """Hear ``genre`` every STEP up to and including time ``until``."""
        while self.t + STEP <= until + 1e-9:
            self.t = round(self.t + STEP, 6)
            self._tick(genre, p)

    @property
    def state(self) -> str:
        return self.director.state

    def events_of(self, kind: str) -> list[dict]:
        return [e for e in self.events if e["event"] == kind]

    def cues_of(self, kind: type) -> list:
        return [c for _, c in self.cues if isinstance(c, kind)]


def test_starts_in_attract_with_looping_film() -> None:
    sim = Sim()
    assert sim.state == "attract"
    (film,) = sim.cues_of(PlayFilm)
    assert film.role == "attract" and film.loop and film.path.name == "attract.mp4"
    assert sim.events_of("state") == [{"t": 0.0, "event": "state", "state": "attract"}]


def test_main_starts_after_continuous_music() -> None:
    sim = Sim()
    sim.play("jazz", until=2.0)  # music since 0.5 (first estimate)
    assert sim.state == "attract"
    sim.play("jazz", until=2.5)
    assert sim.state == "main"
    main = sim.cues_of(PlayFilm)[-1]
    assert main.role == "main" and not main.loop and main.t == 2.5
    assert sim.events_of("state")[-1] == {"t": 2.5, "event": "state", "state": "main"}


def test_a_blip_of_music_does_not_start_the_show() -> None:
    sim = Sim()
    sim.play("jazz", until=1.5)
    sim.play(NONE, until=3.0)
    sim.play("jazz", until=4.5)  # music again since 3.5: only 1 s
    assert sim.state == "attract"
    sim.play("jazz", until=5.5)
    assert sim.state == "main"


def test_attract_falls_back_to_main_film_when_missing() -> None:
    sim = Sim(make_show(attract=None))
    (film,) = sim.cues_of(PlayFilm)
    assert film.role == "attract" and film.loop and film.path.name == "film.mp4"


def test_first_overlay_waits_for_the_genre_to_persist() -> None:
    sim = Sim()
    sim.play("jazz", until=4.0)  # main at 2.5; jazz heard since 0.5
    assert sim.cues_of(SetOverlay) == []
    sim.play("jazz", until=4.5)
    (cue,) = sim.cues_of(SetOverlay)
    assert cue.genre == "jazz" and cue.path.name == "jazz.mp4" and cue.t == 4.5
    assert sim.events_of("overlay") == [{"t": 4.5, "event": "overlay", "genre": "jazz"}]


def test_crossfade_uses_fade_s_and_blend() -> None:
    sim = Sim(make_show(overlay_fade_s=2.25, overlay_blend="screen"))
    sim.play("jazz", until=5.0)
    (cue,) = sim.cues_of(SetOverlay)
    assert cue.fade_s == 2.25 and cue.blend == "screen"


def test_dwell_holds_an_overlay_and_ignores_blips() -> None:
    sim = Sim()
    sim.play("jazz", until=4.5)  # jazz overlay at 4.5
    sim.play("ragtime", until=5.5)  # a 1 s blip
    sim.play("jazz", until=12.0)
    assert [c.genre for c in sim.cues_of(SetOverlay)] == ["jazz"]
    sim.play("ragtime", until=15.5)  # ragtime heard since 12.5: 3 s
    assert sim.director.overlay == "jazz"
    sim.play("ragtime", until=16.5)
    assert sim.director.overlay == "ragtime"
    assert sim.cues_of(SetOverlay)[-1].t == 16.5


def test_every_overlay_stays_on_screen_at_least_min_dwell() -> None:
    sim = Sim(make_show(main=media("film.mp4", 100.0)))
    t = 0.0
    for genre in ["jazz", "ragtime", "baroque", NONE, "classical"] * 3:
        t += 4.5
        sim.play(genre, until=t)
    switches = [c.t for c in sim.cues_of(SetOverlay)]
    assert len(switches) >= 5
    assert all(b - a >= 4.0 for a, b in zip(switches, switches[1:], strict=False))


def test_silence_fades_the_overlay_out_after_dwell() -> None:
    sim = Sim()
    sim.play("jazz", until=10.0)
    sim.play(NONE, until=14.0)  # silence since 10.5
    assert sim.director.overlay == "jazz"
    sim.play(NONE, until=14.5)
    cue = sim.cues_of(SetOverlay)[-1]
    assert cue.path is None and cue.genre is None and cue.fade_s == 1.5
    assert sim.events_of("overlay")[-1] == {"t": 14.5, "event": "overlay", "genre": None}
    assert sim.state == "main"


def test_genre_without_overlay_film_shows_no_overlay() -> None:
    overlays = {g: media(f"overlays/{g}.mp4") for g in GENRES if g != "jazz"}
    sim = Sim(make_show(overlays=overlays))
    sim.play("jazz", until=10.0)
    assert sim.state == "main" and sim.cues_of(SetOverlay) == []


def test_genre_events_follow_the_heard_genre() -> None:
    sim = Sim()
    sim.play("jazz", until=1.0)
    sim.play(NONE, until=2.0)
    genres = [(e["t"], e["genre"], e["confidence"]) for e in sim.events_of("genre")]
    assert genres == [(0.5, "jazz", 0.8), (1.5, NONE, 1.0)]


def test_silence_returns_to_attract_after_idle_return_s() -> None:
    sim = Sim(make_show(idle_return_s=3.0))
    sim.play("jazz", until=6.0)  # jazz overlay at 4.5
    sim.play(NONE, until=9.0)  # silent since 6.5; the overlay would fade at 10.5
    assert sim.state == "main"
    sim.play(NONE, until=9.5)
    assert sim.state == "attract"
    last_two = [c for t, c in sim.cues if t == 9.5]
    assert isinstance(last_two[0], SetOverlay) and last_two[0].path is None
    assert isinstance(last_two[1], PlayFilm) and last_two[1].role == "attract"
    assert sim.events_of("ending") == []


def test_idle_return_zero_means_never() -> None:
    sim = Sim(make_show(idle_return_s=0.0, main=media("film.mp4", 100.0)))
    sim.play("jazz", until=3.0)
    sim.play(NONE, until=90.0)
    assert sim.state == "main"


def test_stalled_listener_counts_as_silence() -> None:
    sim = Sim(make_show(idle_return_s=5.0))
    sim.play("jazz", until=6.0)
    sim.play(None, until=12.0)  # no estimates at all after 6.0: silent from 8.0
    assert sim.state == "main"
    sim.play(None, until=13.0)
    assert sim.state == "attract"
    assert sim.events_of("genre")[-1]["genre"] == NONE


def test_decision_picks_the_leading_genre_at_the_films_end() -> None:
    sim = Sim()
    sim.play("ragtime", until=48.0)  # main 2.5 .. 42.5, ending to 48.5
    (ending,) = sim.events_of("ending")
    assert ending["t"] == 42.5 and ending["genre"] == "ragtime"
    evidence = ending["evidence"]
    assert evidence["reason"] == "confident"
    assert evidence["music_fraction"] == 1.0
    assert evidence["n_estimates"] == 41  # 22.5 .. 42.5 every 0.5 s
    assert evidence["mean_probs"]["ragtime"] == pytest.approx(0.8)
    film = [c for c in sim.cues_of(PlayFilm) if c.role == "ending"][0]
    assert film.path.name == "ragtime.mp4" and film.t == 42.5 and film.fade_s == 0.5
    assert sim.state == "ending"


def test_decision_weighs_only_the_last_listen_s() -> None:
    sim = Sim()
    sim.play("baroque", until=20.0)
    sim.play("jazz", until=45.0)  # the last 20 s before 42.5 are all jazz
    assert sim.events_of("ending")[0]["genre"] == "jazz"


def test_uncertain_music_gets_the_default_ending() -> None:
    sim = Sim()
    sim.play("classical", until=45.0, p=0.4)
    (ending,) = sim.events_of("ending")
    assert ending["genre"] == "default"
    assert ending["evidence"]["reason"] == "uncertain"
    assert ending["evidence"]["leading"] == "classical"
    film = [c for c in sim.cues_of(PlayFilm) if c.role == "ending"][0]
    assert film.path.name == "default.mp4"


def test_too_little_music_gets_the_default_ending() -> None:
    sim = Sim(make_show(idle_return_s=0.0))
    sim.play("jazz", until=30.0)
    sim.play(NONE, until=45.0)  # 22.5..42.5: jazz up to 30 (16 of 41 estimates)
    (ending,) = sim.events_of("ending")
    assert ending["genre"] == "default"
    assert ending["evidence"]["reason"] == "too_little_music"
    assert ending["evidence"]["music_fraction"] == pytest.approx(16 / 41, abs=1e-3)


def test_genre_without_ending_film_gets_the_default_ending() -> None:
    endings = {g: media(f"endings/{g}.mp4") for g in ("baroque", "classical", "default")}
    sim = Sim(make_show(endings=endings))
    sim.play("jazz", until=45.0)
    (ending,) = sim.events_of("ending")
    assert ending["genre"] == "default" and ending["evidence"]["reason"] == "no_ending_film"


def test_decision_at_s_decides_early_but_the_ending_waits_for_the_film() -> None:
    sim = Sim(make_show(decision_at_s=10.0))
    sim.play("baroque", until=12.5)  # decided at 12.5 on baroque
    sim.play("jazz", until=45.0)
    (ending,) = sim.events_of("ending")
    assert ending["t"] == 12.5 and ending["genre"] == "baroque"
    film = [c for c in sim.cues_of(PlayFilm) if c.role == "ending"][0]
    assert film.t == 42.5 and film.path.name == "baroque.mp4"


def test_exactly_one_ending_event_per_performance() -> None:
    show = make_show(rest_s=2.0)
    sim = Sim(show)
    sim.play("jazz", until=70.0)  # main 2.5, ending 42.5-48.5, rest to 50.5, main again 52.5
    assert len(sim.events_of("ending")) == 1
    sim.play("jazz", until=95.0)  # second film ends at 92.5
    assert len(sim.events_of("ending")) == 2
    states = [e["state"] for e in sim.events_of("state")]
    assert states == ["attract", "main", "ending", "rest", "attract", "main", "ending"]


def test_ending_fades_out_the_overlay() -> None:
    sim = Sim()
    sim.play("jazz", until=43.0)
    at_end = [c for t, c in sim.cues if t == 42.5]
    assert isinstance(at_end[0], SetOverlay) and at_end[0].path is None
    assert at_end[0].fade_s == 0.5
    assert isinstance(at_end[1], PlayFilm) and at_end[1].role == "ending"


def test_rest_ignores_music_then_returns_to_attract() -> None:
    sim = Sim()  # ending 42.5-48.5, rest 48.5-58.5
    sim.play("jazz", until=58.0)
    assert sim.state == "rest"
    sim.play("jazz", until=58.5)
    assert sim.state == "attract"
    film = sim.cues_of(PlayFilm)[-1]
    assert film.role == "attract" and film.loop and film.t == 58.5
    sim.play("jazz", until=60.0)  # music during rest does not count: needs 2 s from 58.5
    assert sim.state == "attract"
    sim.play("jazz", until=60.5)
    assert sim.state == "main"


def test_hold_stays_on_the_ending_frame() -> None:
    sim = Sim(make_show(then="hold"))
    sim.play("jazz", until=58.5)
    assert sim.state == "attract"
    assert sim.events_of("state")[-1] == {
        "t": 58.5, "event": "state", "state": "attract", "holding": True}
    assert sim.cues_of(PlayFilm)[-1].role == "ending"  # no attract film over the held frame


def test_missing_default_ending_goes_to_rest_then_attract() -> None:
    endings = {g: media(f"endings/{g}.mp4") for g in GENRES}
    sim = Sim(make_show(endings=endings, rest_s=1.0))
    sim.play("jazz", until=45.0, p=0.3)  # uncertain -> default, which is missing
    assert sim.events_of("ending")[0]["genre"] == "default"
    assert [c.role for c in sim.cues_of(PlayFilm)] == ["attract", "main", "attract"]
    assert [e["state"] for e in sim.events_of("state")][-2:] == ["rest", "attract"]


def test_late_advance_stamps_transitions_at_their_exact_time() -> None:
    director = Director(make_show(rest_s=1.0))
    director.advance(0.0)
    for t in (0.5, 1.0, 1.5, 2.0, 2.5):
        director.hear(estimate("jazz"))
        director.advance(t)
    director.hear(estimate("jazz"))
    director.advance(100.0)  # film end 42.5, ending 48.5, rest end 49.5 all crossed
    states = [(e["t"], e["state"]) for e in director.drain_events() if e["event"] == "state"]
    assert states[-3:] == [(42.5, "ending"), (48.5, "rest"), (49.5, "attract")]


def test_show_without_main_film_is_refused() -> None:
    with pytest.raises(ValueError):
        Director(make_show(main=None))
