"""Displays, with stand-ins for what only the box has: a folder laid out like
/sys/class/drm stands in for the kernel's connectors, SDL's dummy driver for the screen, and a
display opened at another size for a screen whose preferred mode differs from the show's.
The real KMS checks are in docs/technicians.md ("Checks only the Jetson can make")."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pygame
import pytest

os.environ["SDL_VIDEODRIVER"] = "dummy"

from appliance.player import Player  # noqa: E402
from appliance.player.output import DisplayOutput, letterbox  # noqa: E402
from appliance.show.cues import PlayFilm  # noqa: E402
from tests.test_player import FPS, SIZE, solid  # noqa: E402

FILM = (30, 160, 90)


def test_letterbox_keeps_the_aspect_and_centres():
    assert letterbox((1920, 1080), (1920, 1080)) == pygame.Rect(0, 0, 1920, 1080)
    assert letterbox((1920, 1080), (1280, 1024)) == pygame.Rect(0, 152, 1280, 720)  # 5:4
    assert letterbox((1280, 720), (1024, 768)) == pygame.Rect(0, 96, 1024, 576)
    assert letterbox((1440, 1080), (1920, 1080)) == pygame.Rect(240, 0, 1440, 1080)  # 4:3


def connector(drm: Path, status: str) -> None:
    d = drm / "card0-HDMI-A-1"
    d.mkdir(parents=True, exist_ok=True)
    (d / "status").write_text(status + "\n")


def colour(surface: pygame.Surface, xy: tuple[int, int]) -> tuple[int, int, int]:
    return tuple(surface.get_at(xy))[:3]


def near(a, b, tol: int = 8) -> bool:
    return all(abs(int(x) - int(y)) <= tol for x, y in zip(a, b, strict=True))


def test_a_screen_that_goes_and_comes_back(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(DisplayOutput, "CHECK_EVERY_S", 0.0)
    drm = tmp_path / "drm"
    connector(drm, "connected")
    out = DisplayOutput("offscreen", SIZE, FPS, drm=drm)
    player = Player(out, SIZE, FPS, realtime=False)
    flips = []
    monkeypatch.setattr(out, "_headless", False)  # count real flips on the dummy screen
    monkeypatch.setattr(pygame.display, "flip", lambda: flips.append(1))
    try:
        player.apply(PlayFilm(0.0, solid(tmp_path / "f.mp4", FILM, n=60), "main", loop=True))
        with caplog.at_level(logging.INFO, logger="appliance.player"):
            player.present(0.0)
            assert not out.lost and len(flips) == 1
            assert near(colour(pygame.display.get_surface(), (5, 5)), FILM)
            connector(drm, "disconnected")  # the projector is unplugged
            for i in range(1, 10):
                player.present(i / FPS)
            assert out.lost and len(flips) == 1  # nothing presented, the show went on
            assert player.stats["presented"] == 10
            connector(drm, "connected")  # and plugged in again
            player.present(10 / FPS)
            assert not out.lost and len(flips) == 2
            assert near(colour(pygame.display.get_surface(), (5, 5)), FILM)
        said = [r.getMessage() for r in caplog.records]
        assert sum("screen is gone" in m for m in said) == 1
        assert sum("screen is back" in m for m in said) == 1
    finally:
        player.close()


def test_a_failed_flip_is_survived_and_retried(tmp_path, monkeypatch):
    monkeypatch.setattr(DisplayOutput, "CHECK_EVERY_S", 0.0)
    out = DisplayOutput("offscreen", SIZE, FPS)
    player = Player(out, SIZE, FPS, realtime=False)
    monkeypatch.setattr(out, "_headless", False)

    def broken() -> None:
        raise pygame.error("DRM page flip failed")

    try:
        monkeypatch.setattr(pygame.display, "flip", broken)
        player.present(0.0)
        assert out.lost
        monkeypatch.setattr(pygame.display, "flip", lambda: None)
        player.present(1 / FPS)  # reopened on the next frame, presenting again
        assert not out.lost and player.stats["presented"] == 2
    finally:
        player.close()


class OtherScreen(DisplayOutput):
    """Stand-in for a screen whose own mode is not the show's size: SDL's dummy display
    opened at SCREEN instead (on KMS, set_mode((0, 0)) gives the screen's mode)."""

    SCREEN = (64, 64)

    def _open_display(self) -> None:
        pygame.display.quit()
        pygame.display.init()
        self._display = pygame.display.set_mode(self.SCREEN)
        self._box = letterbox(self._size, self._display.get_size())


@pytest.mark.parametrize("screen,inside,bar", [((64, 64), (32, 32), (32, 4)),
                                               ((96, 48), (48, 24), (4, 24))])
def test_the_show_is_letterboxed_on_a_screen_of_another_shape(tmp_path, monkeypatch, screen,
                                                              inside, bar):
    monkeypatch.setattr(OtherScreen, "SCREEN", screen)
    out = OtherScreen("offscreen", SIZE, FPS)
    player = Player(out, SIZE, FPS, realtime=False)
    try:
        player.apply(PlayFilm(0.0, solid(tmp_path / "f.mp4", FILM, n=10), "main"))
        player.present(0.0)
        shown = pygame.display.get_surface()
        assert shown.get_size() == screen
        assert near(colour(shown, inside), FILM)  # the picture, aspect kept
        assert colour(shown, bar) == (0, 0, 0)  # the bars
    finally:
        player.close()
