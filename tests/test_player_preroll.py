"""Preroll: the films a cue may start soon are opened and their first frames decoded before
the cue, so the cut itself does no decoding work.

Proof by counting: ``VideoDecoder.opened`` (decoders created) does not move at the cut, the
ending's decoder had its first frame converted before it, and the frame shown at the cut
was waiting in its queue (``waits`` stays 0). The same show with preroll switched off opens
the ending at the cut, so the count can tell the difference.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.listen.estimate import GENRES, NONE, GenreEstimate
from appliance.player import Player, open_output
from appliance.player.decoder import VideoDecoder
from appliance.service.events import EventLog
from appliance.service.showloop import ShowLoop
from appliance.show.director import PREROLL_S, Director
from appliance.show.showfile import load_show
from tests.conftest import make_tiny_show

FPS = 10


def jazz() -> GenreEstimate:
    probs = {g: (0.85 if g == "jazz" else 0.05) for g in GENRES} | {NONE: 0.0}
    return GenreEstimate(0.0, probs, True, "jazz", 0.85)


@pytest.fixture(scope="module")
def show_dir(tmp_path_factory) -> Path:
    # main film longer than PREROLL_S, so there is a "before the preroll" to look at
    return make_tiny_show(tmp_path_factory.mktemp("show"), main_s=PREROLL_S + 4, ending_s=2.0,
                          fps=FPS)


def play_to_the_cut(show_dir: Path, *, preroll: bool) -> dict:
    """Run the show to its ending cue; what the counters said around it."""
    show, _ = load_show(show_dir)
    player = Player(open_output("offscreen", show.size, show.fps), show.size, show.fps,
                    realtime=False)
    if not preroll:
        player.preroll = lambda films: None  # type: ignore[method-assign]
    loop = ShowLoop(Director(show), player, EventLog(None))
    seen: dict = {"prerolled": set()}
    try:
        for n in range(round(30 * FPS)):
            heard = [jazz()] if n % 5 == 0 else []
            if loop.director.state == "main" and loop.director.decision is None:
                seen["prerolled"] |= {p.name for (p, _) in player.prerolled}
            opened = VideoDecoder.opened
            ending = player.prerolled.get((show.endings["jazz"].path, False))
            converted_before = ending.converted if ending is not None else 0
            loop.step(n / FPS, heard)
            if loop.director.state == "ending":
                clip = player._base[-1]
                seen.update(opened_at_cut=VideoDecoder.opened - opened,
                            converted_before=converted_before,
                            same_decoder=clip.decoder is ending,
                            waits=clip.decoder.waits, card=clip.failed)
                return seen
    finally:
        player.close()
    raise AssertionError("the show never reached its ending")


def test_every_candidate_ending_is_prerolled_before_the_decision(show_dir):
    seen = play_to_the_cut(show_dir, preroll=True)
    endings = {f"{g}.mp4" for g in (*GENRES, "default")}
    assert endings <= seen["prerolled"], seen["prerolled"]


def test_the_cut_to_the_ending_does_no_decoding(show_dir):
    seen = play_to_the_cut(show_dir, preroll=True)
    assert seen["card"] is None
    assert seen["same_decoder"]  # the prerolled decoder is the one on screen
    assert seen["opened_at_cut"] == 0  # nothing opened at the cut
    assert seen["converted_before"] >= 1  # its first frame was decoded before it
    assert seen["waits"] == 0  # and was waiting when the cut asked for it


def test_without_preroll_the_cut_opens_and_decodes(show_dir):
    seen = play_to_the_cut(show_dir, preroll=False)
    assert seen["opened_at_cut"] == 1 and not seen["same_decoder"]


def test_upcoming_names_the_next_films(show_dir):
    show, _ = load_show(show_dir)
    d = Director(show)
    d.advance(0.0)
    assert d.upcoming() == [(show.main.path, False)]  # attract: the film may start any time
    for i in range(5):
        d.hear(jazz())
        d.advance(i * 0.5)
    assert d.state == "main"
    assert d.upcoming() == []  # early in the film: nothing yet
    d.advance(d.decision_due - PREROLL_S + 0.1)
    assert {p.name for p, _ in d.upcoming()} == {f"{g}.mp4" for g in (*GENRES, "default")}
