"""Player tests on tiny generated videos (SDL dummy driver, no display needed)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import av
import numpy as np
import pytest

os.environ["SDL_VIDEODRIVER"] = "dummy"
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

from appliance.player import Player, open_output  # noqa: E402
from appliance.player.card import BACKGROUND  # noqa: E402
from appliance.show.cues import PlayFilm, SetOverlay  # noqa: E402

SIZE = (64, 48)
FPS = 30
TOL = 8  # H.264 (yuv420p) round trip of flat colours


def colour_of(i: int) -> tuple[int, int, int]:
    """A distinct, codec-robust colour for frame number ``i``."""
    return ((i * 37) % 200 + 30, (i * 91) % 200 + 30, (i * 53) % 200 + 30)


def make_video(
    path: Path, colours: list[tuple[int, ...]], size: tuple[int, int] = SIZE, *, alpha=False
) -> Path:
    """One flat-coloured frame per entry. ``alpha``: rgba frames in a QTRLE .mov."""
    w, h = size
    with av.open(str(path), "w") as c:
        if alpha:
            s = c.add_stream("qtrle", rate=FPS)
            s.pix_fmt = "argb"
        else:
            s = c.add_stream("libx264", rate=FPS)
            s.pix_fmt = "yuv420p"
            s.options = {"crf": "1", "g": "5", "preset": "ultrafast"}
        s.width, s.height = w, h
        for i, col in enumerate(colours):
            img = np.empty((h, w, len(col)), np.uint8)
            img[:] = col
            frame = av.VideoFrame.from_ndarray(img, format="rgba" if alpha else "rgb24")
            frame.pts = i
            c.mux(s.encode(frame))
        c.mux(s.encode(None))
    return path


def solid(path: Path, col: tuple[int, ...], n: int = 30, **kw) -> Path:
    return make_video(path, [col] * n, **kw)


@pytest.fixture
def player(tmp_path, request):
    record = getattr(request, "param", None)
    out = open_output("offscreen", SIZE, FPS, record=str(tmp_path / record) if record else None)
    p = Player(out, SIZE, FPS, realtime=False)
    yield p
    p.close()


def pixel(p: Player) -> tuple[int, int, int]:
    c = p.output.surface.get_at((SIZE[0] // 2, SIZE[1] // 2))
    return (c.r, c.g, c.b)


def close_to(got, want, tol=TOL) -> bool:
    return all(abs(int(a) - int(b)) <= tol for a, b in zip(got, want, strict=False))


def test_presented_frame_is_the_source_frame_for_t(tmp_path, player):
    video = make_video(tmp_path / "f.mp4", [colour_of(i) for i in range(40)])
    player.apply(PlayFilm(1.0, video, "main"))
    for k in (0, 1, 5, 17, 18, 39):
        player.present(1.0 + k / FPS)
        assert close_to(pixel(player), colour_of(k)), k
    player.present(5.0)  # past the end of a non-looping film: its last frame holds
    assert close_to(pixel(player), colour_of(39))


def test_looping_film_wraps_around(tmp_path, player):
    video = make_video(tmp_path / "l.mp4", [colour_of(i) for i in range(10)])
    player.apply(PlayFilm(0.0, video, "attract", loop=True))
    for k in (0, 9, 10, 13, 27, 30):
        player.present(k / FPS)
        assert close_to(pixel(player), colour_of(k % 10)), k


def test_cue_applied_late_starts_mid_film(tmp_path, player):
    video = make_video(tmp_path / "s.mp4", [colour_of(i) for i in range(60)])
    player.present(5.0)  # the show is already at t=5 when the cue (for t=4) arrives
    player.apply(PlayFilm(4.0, video, "main"))
    player.present(5.0)
    assert close_to(pixel(player), colour_of(30))


def test_crossfade_midpoint_is_a_mix(tmp_path, player):
    red = solid(tmp_path / "r.mp4", (200, 20, 20))
    blue = solid(tmp_path / "b.mp4", (20, 20, 200))
    player.apply(PlayFilm(0.0, red, "attract", loop=True))
    player.apply(PlayFilm(1.0, blue, "main", fade_s=1.0))
    player.present(0.9)
    assert close_to(pixel(player), (200, 20, 20))
    player.present(1.5)
    assert close_to(pixel(player), (110, 20, 110), tol=10)
    player.present(2.1)
    assert close_to(pixel(player), (20, 20, 200))


def test_add_overlay_fades_in_and_out_over_the_base(tmp_path, player):
    base = solid(tmp_path / "base.mp4", (100, 50, 20))
    over = solid(tmp_path / "over.mp4", (80, 80, 80))
    player.apply(PlayFilm(0.0, base, "main", loop=True))
    player.apply(SetOverlay(1.0, over, "jazz", fade_s=1.0, blend="add"))
    player.present(0.5)
    assert close_to(pixel(player), (100, 50, 20))
    player.present(1.5)  # half-way: base + overlay/2
    assert close_to(pixel(player), (140, 90, 60), tol=10)
    player.present(3.0)
    assert close_to(pixel(player), (180, 130, 100))
    player.apply(SetOverlay(4.0, None, None, fade_s=0.5))
    player.present(5.0)
    assert close_to(pixel(player), (100, 50, 20))


def test_black_in_an_add_overlay_is_transparent(tmp_path, player):
    base = solid(tmp_path / "base.mp4", (120, 60, 30))
    over = solid(tmp_path / "black.mp4", (0, 0, 0))
    player.apply(PlayFilm(0.0, base, "main", loop=True))
    player.apply(SetOverlay(0.0, over, "baroque", fade_s=0.0))
    player.present(0.5)
    assert close_to(pixel(player), (120, 60, 30))


def test_screen_and_alpha_blends(tmp_path, player):
    base = solid(tmp_path / "base.mp4", (100, 100, 100))
    grey = solid(tmp_path / "grey.mp4", (100, 100, 100))
    player.apply(PlayFilm(0.0, base, "main", loop=True))
    player.apply(SetOverlay(0.0, grey, "classical", fade_s=0.0, blend="screen"))
    player.present(0.1)  # 255 - (155 * 155) / 255 = 161
    assert close_to(pixel(player), (161, 161, 161))
    half = solid(tmp_path / "a.mov", (250, 0, 0, 128), n=10, alpha=True)
    player.apply(SetOverlay(1.0, half, "ragtime", fade_s=0.0, blend="alpha"))
    player.present(1.1)  # 50% red over grey
    assert close_to(pixel(player), (175, 50, 50), tol=6)


def test_media_of_another_size_are_scaled_to_fit(tmp_path, player):
    big = solid(tmp_path / "big.mp4", (30, 160, 90), size=(128, 96))
    player.apply(PlayFilm(0.0, big, "main"))
    player.present(0.0)
    assert close_to(pixel(player), (30, 160, 90))
    assert close_to(player.output.surface.get_at((1, 1))[:3], (30, 160, 90))


def test_missing_or_corrupt_media_do_not_crash(tmp_path, player, caplog):
    base = solid(tmp_path / "base.mp4", (90, 90, 90))
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(4000))
    player.apply(PlayFilm(0.0, base, "main", loop=True))
    with caplog.at_level(logging.ERROR, logger="appliance.player"):
        player.apply(SetOverlay(0.0, tmp_path / "nope.mp4", "jazz", fade_s=0.0))
        player.present(0.2)
        assert close_to(pixel(player), (90, 90, 90))  # no overlay, base still shows
        player.apply(PlayFilm(1.0, corrupt, "ending", duration_s=1.0))
        player.present(1.2)  # the "unavailable" card, still running
        assert close_to(player.output.surface.get_at((1, 1))[:3], BACKGROUND, tol=2)
        player.present(2.1)  # its second is over: black
        assert close_to(player.output.surface.get_at((1, 1))[:3], (0, 0, 0), tol=2)
    assert "nope.mp4" in caplog.text and "corrupt.mp4" in caplog.text
    assert player.stats["presented"] == 3 and player.stats["unavailable"] == 1


@pytest.mark.parametrize("player", ["rec.mp4"], indirect=True)
def test_recording_has_one_frame_per_present(tmp_path, player):
    video = make_video(tmp_path / "f.mp4", [colour_of(i) for i in range(20)])
    ready = []
    player.output.on_first_frame = lambda: ready.append(True)
    player.apply(PlayFilm(0.0, video, "main", loop=True))
    n = 45
    for i in range(n):
        player.present(i / FPS)
    assert ready == [True] and player.output.first_frame_presented
    player.close()
    with av.open(str(tmp_path / "rec.mp4")) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == n == player.stats["presented"]
    for i in (0, 7, 19, 20, 44):
        got = frames[i][SIZE[1] // 2, SIZE[0] // 2]
        assert close_to(got, colour_of(i % 20), tol=12), i


def test_realtime_counts_skipped_frames_as_dropped(tmp_path, tmp_path_factory):
    video = make_video(tmp_path / "f.mp4", [colour_of(i) for i in range(30)])
    out = open_output("offscreen", SIZE, FPS)
    p = Player(out, SIZE, FPS, realtime=True)
    try:
        p.preload(video)
        p.apply(PlayFilm(0.0, video, "main"))
        p.present(0.0)
        p.present(4 / FPS)  # the loop skipped three show frames
        assert p.stats["dropped"] == 3
        assert p.stats["presented"] == 2
    finally:
        p.close()


def test_auto_output_falls_back_and_says_why(monkeypatch, caplog):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    with caplog.at_level(logging.INFO, logger="appliance.player"):
        out = open_output("auto", SIZE, FPS)
    try:
        assert out.kind in ("kms", "offscreen")
        if out.kind == "offscreen":
            assert "offscreen" in caplog.text and "window" in caplog.text
    finally:
        out.close()
