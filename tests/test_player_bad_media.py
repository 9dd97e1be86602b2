"""Bad media never stop the show: a film that is missing, truncated, not a video at all, or
breaks mid-decode becomes the calm "unavailable" card for the time the show gives it, it is
logged once, and the show still reaches its ending.

The show runs as on the box (director → player, the show clock stepping frame by frame,
a listener stand-in hearing jazz throughout) on a tiny generated show; what the audience
sees is read back from the composed frames' pixels.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import av
import numpy as np
import pytest

from appliance.listen.estimate import GENRES, NONE, GenreEstimate
from appliance.player import Player, open_output
from appliance.player.card import BACKGROUND
from appliance.service.events import EventLog
from appliance.service.showloop import ShowLoop
from appliance.show.director import Director
from appliance.show.showfile import load_show
from tests.conftest import make_tiny_show

FPS = 10
MAIN_S, ENDING_S = 6.0, 2.0


def jazz() -> GenreEstimate:
    probs = {g: (0.85 if g == "jazz" else 0.05) for g in GENRES} | {NONE: 0.0}
    return GenreEstimate(0.0, probs, True, "jazz", 0.85)


def film(path: Path, seconds: float, colour: tuple[int, int, int]) -> Path:
    """An H.264 film with its index up front (faststart), as a careful export writes it:
    cut short, it still opens and says how long it should be. Its lower half is noise, so
    the frames have some size and a cut lands between them, not in the header."""
    rng = np.random.default_rng(1)
    with av.open(str(path), "w", options={"movflags": "+faststart"}) as c:
        s = c.add_stream("libx264", rate=FPS)
        s.width, s.height, s.pix_fmt = 32, 32, "yuv420p"
        s.options = {"g": "10", "preset": "ultrafast"}
        img = np.zeros((32, 32, 3), np.uint8)
        img[:] = colour
        for _ in range(round(seconds * FPS)):
            img[16:] = rng.integers(0, 256, (16, 32, 3), np.uint8)
            c.mux(s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        c.mux(s.encode(None))
    return path


def good_frames(path: Path) -> int:
    """How many frames FFmpeg gets out of ``path`` before it gives up."""
    n = 0
    try:
        with av.open(str(path)) as c:
            for _ in c.decode(video=0):
                n += 1
    except av.FFmpegError:
        pass
    return n


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def corrupt_middle(path: Path) -> None:
    data = bytearray(path.read_bytes())
    mdat = data.find(b"mdat")
    mid = mdat + (len(data) - mdat) // 2
    data[mid:mid + 400] = b"\xff" * 400
    path.write_bytes(bytes(data))


def looks_like_card(rgb: tuple[int, int, int]) -> bool:
    return all(abs(a - b) <= 3 for a, b in zip(rgb, BACKGROUND, strict=True))


def run(show_dir: Path, after_load=None) -> tuple[list[bool], list[dict], dict]:
    """Play the show to its rest; per frame whether the card was on screen, the events and
    the player's stats. ``after_load(show)`` breaks a file once the show is checked."""
    show, problems = load_show(show_dir)
    assert show.playable, problems
    if after_load is not None:
        after_load(show)
    log = show_dir / "events.jsonl"
    events = EventLog(log)
    player = Player(open_output("offscreen", show.size, show.fps), show.size, show.fps,
                    realtime=False)
    loop = ShowLoop(Director(show), player, events)
    card = []
    try:
        for n in range(round(20 * FPS)):
            loop.step(n / FPS, [jazz()] if n % 5 == 0 else [])
            c = player.output.surface.get_at((0, 0))
            card.append(looks_like_card((c.r, c.g, c.b)))
            if loop.director.state == "rest":
                break
    finally:
        player.close()
        events.close()
    written = [json.loads(x) for x in log.read_text().splitlines()]
    return card, written, dict(player.stats)


@pytest.fixture
def tiny(tmp_path) -> Path:
    folder = make_tiny_show(tmp_path / "show", main_s=MAIN_S, ending_s=ENDING_S, fps=FPS)
    film(folder / "film.mp4", MAIN_S, (80, 80, 80))
    return folder


def ended_with(events: list[dict], genre: str) -> bool:
    endings = [e for e in events if e["event"] == "ending"]
    states = [e["state"] for e in events if e["event"] == "state"]
    return [e["genre"] for e in endings] == [genre] and states[-2:] == ["ending", "rest"]


def logged_once(caplog, name: str) -> bool:
    return sum(name in r.getMessage() for r in caplog.records
               if r.levelno >= logging.ERROR) == 1


def test_a_good_show_never_shows_the_card(tiny):
    card, events, stats = run(tiny)
    assert not any(card) and stats["unavailable"] == 0
    assert ended_with(events, "jazz")


@pytest.mark.parametrize("damage", [truncate, corrupt_middle], ids=["truncated", "mid-decode"])
def test_a_main_film_that_breaks_midway_shows_the_card_until_its_end(tiny, damage, caplog):
    main = tiny / "film.mp4"
    damage(main)
    good = good_frames(main)
    assert 0 < good < MAIN_S * FPS  # it opens and plays a while, then fails
    with caplog.at_level(logging.ERROR, logger="appliance.player"):
        card, events, stats = run(tiny)
    # the card covers the rest of the film's time (± a frame), then the ending plays
    assert abs(sum(card) - (MAIN_S * FPS - good)) <= 1, (sum(card), good)
    start = next(e["t"] for e in events if e.get("state") == "main")
    first = card.index(True)
    assert abs(first - (start * FPS + good)) <= 1
    assert not any(card[first + sum(card):])  # one stretch, gone for the ending
    assert ended_with(events, "jazz")
    assert logged_once(caplog, "film.mp4")


@pytest.mark.parametrize("how", ["missing", "text file named .mp4", "truncated"])
def test_a_bad_ending_shows_the_card_for_the_ending_s_length(tiny, how, caplog):
    def spoil(show):
        path = show.endings["jazz"].path
        if how == "missing":
            path.unlink()
        elif how == "truncated":
            truncate(path)
            path.write_bytes(path.read_bytes()[:200])  # too short even to open
        else:
            path.write_text("this is not a film\n")

    with caplog.at_level(logging.ERROR, logger="appliance.player"):
        card, events, stats = run(tiny, after_load=spoil)
    assert ended_with(events, "jazz")
    # the card fades in with the ending (fade_s 0.2: two frames are mixes) and stays for
    # the ending's 2 s
    fade_frames = math.ceil(0.2 * FPS)
    assert abs(sum(card) - (ENDING_S * FPS - fade_frames + 1)) <= 1, sum(card)
    assert stats["unavailable"] == ENDING_S * FPS
    assert logged_once(caplog, "jazz.mp4")


def test_a_bad_overlay_is_left_out_and_logged_once(tiny, caplog):
    def spoil(show):
        show.overlays["jazz"].path.write_text("not a film either\n")

    with caplog.at_level(logging.ERROR, logger="appliance.player"):
        card, events, stats = run(tiny, after_load=spoil)
    assert [e["genre"] for e in events if e["event"] == "overlay"][0] == "jazz"
    assert not any(card) and stats["errors"] >= 1 and ended_with(events, "jazz")
    assert logged_once(caplog, "jazz.mp4")


def test_check_show_decodes_every_film_and_names_what_is_wrong(tiny, capsys):
    from appliance.cli import main

    assert main(["check-show", str(tiny)]) == 0  # the good show first
    good = capsys.readouterr().out
    assert "film.mp4" in good and "PROBLEM" not in good and "show playable" in good
    truncate(tiny / "film.mp4")
    film(tiny / "endings" / "baroque.mp4", ENDING_S, (40, 200, 40))
    corrupt_middle(tiny / "endings" / "baroque.mp4")
    (tiny / "overlays" / "jazz.mp4").write_text("not a film\n")
    (tiny / "endings" / "ragtime.mp4").unlink()
    assert main(["check-show", str(tiny)]) == 1
    out = capsys.readouterr().out
    table = {line.split()[0]: line for line in out.splitlines() if line.endswith(
        ("ok", "PROBLEM", "note"))}
    assert table["film.mp4"].endswith("PROBLEM") and table["endings/jazz.mp4"].endswith("ok")
    assert table["endings/baroque.mp4"].endswith("PROBLEM")
    said = {line.split(": ", 1)[0]: line for line in out.splitlines() if ": " in line}
    assert "cut short" in said["film.mp4"]  # in plain words, with where it stops
    assert "s of 6.0 s" in said["film.mp4"] or "says it lasts 6.0 s" in said["film.mp4"]
    assert "cut short" in said["endings/baroque.mp4"]
    assert "overlays/jazz.mp4" in out and "ragtime.mp4" in out  # named by the loader
    assert "show playable, 4 problem(s)" in out
