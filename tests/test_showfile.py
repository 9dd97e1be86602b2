"""Loading show folders: validation with line numbers, media probing, graceful degradation."""

from __future__ import annotations

import shutil
from pathlib import Path

import av
import numpy as np
import pytest

from appliance.show.showfile import ShowError, load_show, load_show_or_raise, probe_media

SHOW_TOML = """\
[show]
title = "Datacosm demo"
fps = 30
size = [1280, 720]
[attract]
film = "attract.mp4"          # loops while nobody plays
start_after_music_s = 2.0
[main]
film = "film.mp4"
idle_return_s = 30.0
[overlays]
blend = "add"
fade_s = 1.5
min_dwell_s = 4.0
baroque = "overlays/baroque.mp4"
classical = "overlays/classical.mp4"
ragtime = "overlays/ragtime.mp4"
jazz = "overlays/jazz.mp4"
[decision]
at_s = 0.0
listen_s = 20.0
min_confidence = 0.45
min_music_fraction = 0.5
[endings]
fade_s = 0.5
baroque = "endings/baroque.mp4"
classical = "endings/classical.mp4"
ragtime = "endings/ragtime.mp4"
jazz = "endings/jazz.mp4"
default = "endings/default.mp4"
[after_ending]
then = "attract"
rest_s = 10.0
"""

FILMS = ["attract.mp4", "film.mp4"] + [
    f"{kind}/{name}.mp4"
    for kind in ("overlays", "endings")
    for name in ("baroque", "classical", "ragtime", "jazz")
] + ["endings/default.mp4"]


def make_film(path: Path, seconds: float = 1.0, fps: int = 10,
              codec: str = "mpeg4", pix_fmt: str = "yuv420p") -> None:
    """A tiny 32x32 film of ``seconds`` at ``fps``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = 32, 32, pix_fmt
        for i in range(round(seconds * fps)):
            image = np.full((32, 32, 4), (i * 20) % 255, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgba")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.fixture(scope="module")
def films(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One short film and one 2 s film, encoded once for the module."""
    folder = tmp_path_factory.mktemp("films")
    make_film(folder / "one.mp4", seconds=1.0)
    make_film(folder / "two.mp4", seconds=2.0)
    return folder


@pytest.fixture
def show_dir(tmp_path: Path, films: Path) -> Path:
    """A complete, valid show folder."""
    for name in FILMS:
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(films / ("two.mp4" if name == "film.mp4" else "one.mp4"), target)
    (tmp_path / "show.toml").write_text(SHOW_TOML)
    return tmp_path


def edit(show_dir: Path, old: str, new: str) -> None:
    path = show_dir / "show.toml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_complete_show_loads_with_absolute_paths_and_durations(show_dir: Path) -> None:
    show, problems = load_show(show_dir)
    assert problems == [] and show.playable
    assert show.title == "Datacosm demo" and show.fps == 30 and show.size == (1280, 720)
    assert show.main is not None and show.main.path == show_dir / "film.mp4"
    assert show.main.path.is_absolute()
    assert show.main.duration_s == pytest.approx(2.0, abs=0.15)
    assert show.main.fps == pytest.approx(10) and show.main.size == (32, 32)
    assert not show.main.has_alpha
    assert show.attract is not None and show.attract.duration_s == pytest.approx(1.0, abs=0.15)
    assert set(show.overlays) == {"baroque", "classical", "ragtime", "jazz"}
    assert set(show.endings) == {"baroque", "classical", "ragtime", "jazz", "default"}
    assert show.overlay_fade_s == 1.5 and show.overlay_min_dwell_s == 4.0
    assert show.listen_s == 20.0 and show.min_confidence == 0.45
    assert show.then == "attract" and show.rest_s == 10.0


def test_misspelled_key_has_did_you_mean_and_line(show_dir: Path) -> None:
    edit(show_dir, "min_dwell_s = 4.0", "min_dwel_s = 4.0")
    show, problems = load_show(show_dir)
    (problem,) = problems
    assert problem.line == 14 and problem.key == "overlays.min_dwel_s"
    assert str(problem).endswith(
        "show.toml:14: overlays.min_dwel_s: unknown key — did you mean 'overlays.min_dwell_s'?")
    assert show.playable and show.overlay_min_dwell_s == 4.0


def test_wrong_type_and_range_fall_back_to_defaults(show_dir: Path) -> None:
    edit(show_dir, "fade_s = 1.5", 'fade_s = "slow"')
    edit(show_dir, "min_confidence = 0.45", "min_confidence = 1.5")
    edit(show_dir, 'then = "attract"', 'then = "atract"')
    show, problems = load_show(show_dir)
    assert [(p.line, p.key) for p in problems] == [
        (13, "overlays.fade_s"), (22, "decision.min_confidence"), (32, "after_ending.then")]
    assert "expected a number, got the text 'slow'" in problems[0].message
    assert "between 0 and 1, got 1.5" in problems[1].message
    assert "did you mean 'attract'?" in problems[2].message
    assert show.overlay_fade_s == 1.5 and show.min_confidence == 0.45 and show.then == "attract"


def test_toml_syntax_error_has_its_line(show_dir: Path) -> None:
    edit(show_dir, "fps = 30", "fps = 30 30")
    show, problems = load_show(show_dir)
    assert problems[0].line == 3 and "not valid TOML" in problems[0].message
    assert not show.playable  # nothing could be read, not even the main film


def test_missing_overlay_keeps_the_rest_playable(show_dir: Path) -> None:
    (show_dir / "overlays" / "jazz.mp4").unlink()
    show, problems = load_show(show_dir)
    (problem,) = problems
    assert problem.key == "overlays.jazz" and problem.line == 18
    assert "overlays/jazz.mp4" in problem.message and "not found" in problem.message
    assert "jazz will have no overlay" in problem.message
    assert show.playable and set(show.overlays) == {"baroque", "classical", "ragtime"}


def test_corrupt_ending_is_named_and_falls_back_to_default(show_dir: Path) -> None:
    (show_dir / "endings" / "ragtime.mp4").write_bytes(b"not a film" * 50)
    show, problems = load_show(show_dir)
    (problem,) = problems
    assert problem.key == "endings.ragtime" and "endings/ragtime.mp4" in problem.message
    assert "cannot be decoded" in problem.message and "default ending" in problem.message
    assert show.playable and "ragtime" not in show.endings and "default" in show.endings


def test_missing_default_ending_is_a_problem_but_playable(show_dir: Path) -> None:
    (show_dir / "endings" / "default.mp4").unlink()
    show, problems = load_show(show_dir)
    assert [p.key for p in problems] == ["endings.default"]
    assert "back to attract" in problems[0].message
    assert show.playable and "default" not in show.endings


def test_missing_main_film_makes_the_show_unplayable(show_dir: Path) -> None:
    (show_dir / "film.mp4").unlink()
    (show_dir / "overlays" / "baroque.mp4").unlink()
    show, problems = load_show(show_dir)
    assert not show.playable
    assert {p.key for p in problems} == {"main.film", "overlays.baroque"}
    with pytest.raises(ShowError) as raised:
        load_show_or_raise(show_dir)
    assert len(raised.value.problems) == 2
    assert "film.mp4" in str(raised.value) and "cannot be played" in str(raised.value)


def test_main_film_key_missing_is_reported(show_dir: Path) -> None:
    edit(show_dir, 'film = "film.mp4"\n', "")
    show, problems = load_show(show_dir)
    assert not show.playable
    assert problems[0].key == "main.film" and "missing" in problems[0].message
    assert problems[0].line == 8  # the [main] header


def test_missing_show_file(tmp_path: Path) -> None:
    show, problems = load_show(tmp_path)
    assert not show.playable and "show file not found" in str(problems[0])


def test_load_show_or_raise_returns_livable_problems(show_dir: Path) -> None:
    (show_dir / "attract.mp4").unlink()
    show, problems = load_show_or_raise(show_dir)
    assert show.attract is None and "main film loops" in problems[0].message


def test_alpha_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "alpha.mov"
    make_film(path, seconds=0.5, codec="qtrle", pix_fmt="argb")
    info = probe_media(path)
    assert info.has_alpha and info.size == (32, 32)
