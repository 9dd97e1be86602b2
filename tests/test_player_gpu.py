"""The GPU compositor (SDL's renderer through pygame._sdl2.video) against the software one,
the reference: the same cues rendered both ways must give the same frames.

Here SDL's software renderer stands in for the Jetson's OpenGL ES one (no GPU on this
machine): it runs the same blend and modulation code paths SDL offers every renderer.
Tolerance: each frame within 2 levels (of 255) on average and 6 at any pixel: the two
round alpha and colour modulation differently (x*a/255 against (x*a+x)>>8), never more.
"Screen" is left out: SDL's software renderer has no custom blend modes (the GPU draws it;
here it falls back to add, tested apart).
"""

from __future__ import annotations

import os

import numpy as np
import pygame
import pytest

os.environ["SDL_VIDEODRIVER"] = "dummy"

from appliance.player import Player, open_output  # noqa: E402
from appliance.show.cues import PlayFilm, SetOverlay  # noqa: E402
from tests.test_player import FPS, SIZE, colour_of, make_video, solid  # noqa: E402

MEAN_TOL, MAX_TOL = 2.0, 6


def frames_of(surface: pygame.Surface) -> np.ndarray:
    w, h = surface.get_size()
    return np.frombuffer(pygame.image.tobytes(surface, "RGB"), np.uint8).reshape(h, w, 3)


def render(compositor: str, cues, times: list[float]) -> list[np.ndarray]:
    out = open_output("offscreen", SIZE, FPS, compositor=compositor)
    assert out.compositor_name == compositor
    player = Player(out, SIZE, FPS, realtime=False)
    frames = []
    try:
        pending = sorted(cues, key=lambda c: c.t)
        for t in times:
            while pending and pending[0].t <= t:
                player.apply(pending.pop(0))
            player.present(t)
            picture = out._picture()
            frames.append(frames_of(picture).astype(np.int16))
    finally:
        player.close()
    return frames


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("media")
    return {
        "a": make_video(d / "a.mp4", [colour_of(i) for i in range(60)]),
        "b": make_video(d / "b.mp4", [colour_of(i + 7) for i in range(60)]),
        "glow": make_video(d / "glow.mp4", [(i * 4 % 120, 60, 120 - i * 2) for i in range(60)]),
        "rays": solid(d / "rays.mp4", (90, 90, 30), n=60),
        "half": solid(d / "half.mov", (250, 0, 0, 128), n=30, alpha=True),
    }


def compare(cues, times):
    soft = render("software", cues, times)
    gpu = render("gpu", cues, times)
    for t, s, g in zip(times, soft, gpu, strict=True):
        d = np.abs(s - g)
        assert d.mean() <= MEAN_TOL and d.max() <= MAX_TOL, (t, d.mean(), d.max())
    return soft, gpu


def test_films_crossfades_and_additive_overlays_match_the_software_compositor(media):
    cues = [PlayFilm(0.0, media["a"], "attract", loop=True),
            SetOverlay(0.2, media["glow"], "jazz", fade_s=0.5),
            PlayFilm(0.6, media["b"], "main", fade_s=0.5),
            SetOverlay(1.0, media["rays"], "ragtime", fade_s=0.4),
            SetOverlay(1.6, None, None, fade_s=0.3)]
    times = [i / FPS for i in range(0, 60)]
    soft, _ = compare(cues, times)
    # and the comparison is not empty: the frames do change through the fades
    assert np.abs(soft[10] - soft[30]).mean() > 10


def test_alpha_overlays_and_the_unavailable_card_match(media, tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a film\n")
    cues = [PlayFilm(0.0, media["a"], "main", loop=True),
            SetOverlay(0.1, media["half"], "baroque", fade_s=0.3, blend="alpha"),
            PlayFilm(0.8, bad, "ending", fade_s=0.2, duration_s=0.5)]
    compare(cues, [i / FPS for i in range(0, 45)])


def test_the_gpu_compositor_draws_on_top_hooks():
    out = open_output("offscreen", SIZE, FPS, compositor="gpu")
    player = Player(out, SIZE, FPS, realtime=False)
    try:
        player.on_top = lambda s: s.fill((200, 10, 10), pygame.Rect(0, 0, 8, 8))
        player.present(0.0)
        got = frames_of(out._picture())
        assert tuple(got[2, 2]) == (200, 10, 10) and tuple(got[30, 30]) == (0, 0, 0)
    finally:
        player.close()
