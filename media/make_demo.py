"""Generate the demo show: procedural animation drawn with pygame, encoded with PyAV.

    python media/make_demo.py [--size 1920x1080] [--out media/demo] [--crf 30]

Every loop (attract, overlays) is periodic in its own length, so it loops without a seam.
Overlays are drawn on black for the "add" blend (black = transparent).
"""

from __future__ import annotations

import argparse
import math
import os
import random
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import av  # noqa: E402
import numpy as np  # noqa: E402
import pygame  # noqa: E402

FPS = 30
TAU = 2 * math.pi
GENRES = ("baroque", "classical", "ragtime", "jazz")
Draw = Callable[[pygame.Surface, float], None]

SHOW_TOML = """\
[show]
title = "Datacosm demo"
fps = {fps}
size = [{w}, {h}]

[attract]
film = "attract.mp4"
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


def encode(path: Path, size: tuple[int, int], seconds: float, draw: Draw, crf: int) -> None:
    """Render ``draw(surface, t)`` for every frame of ``seconds`` into an H.264 MP4."""
    path.parent.mkdir(parents=True, exist_ok=True)
    surf = pygame.Surface(size)
    n = round(seconds * FPS)
    started = time.monotonic()
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        # keyframe every 2 s so the player can seek to a start offset cheaply
        stream.options = {"preset": "medium", "crf": str(crf), "g": str(2 * FPS)}
        for i in range(n):
            draw(surf, i / FPS)
            rgb = np.frombuffer(pygame.image.tobytes(surf, "RGB"), np.uint8)
            frame = av.VideoFrame.from_ndarray(rgb.reshape(size[1], size[0], 3), format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    kib = path.stat().st_size / 1024
    print(f"{path}: {n} frames, {kib:.0f} KiB, {time.monotonic() - started:.0f} s")


def font(size: tuple[int, int], fraction: float) -> pygame.font.Font:
    return pygame.font.Font(None, max(12, round(size[1] * fraction)))


def label(surf: pygame.Surface, text: str, colour: tuple[int, int, int]) -> None:
    """The genre name, small, bottom-right corner."""
    w, h = surf.get_size()
    img = font((w, h), 0.045).render(text, True, colour)
    surf.blit(img, (w - img.get_width() - h // 30, h - img.get_height() - h // 30))


def gradient(surf: pygame.Surface, corners: list[tuple[float, float, float]]) -> None:
    """Smooth four-corner gradient: a 2x2 image scaled up bilinearly."""
    small = pygame.Surface((2, 2))
    for (x, y), c in zip(((0, 0), (1, 0), (0, 1), (1, 1)), corners, strict=True):
        small.set_at((x, y), [max(0, min(255, round(v))) for v in c])
    big = pygame.transform.smoothscale(small, (8, 8))  # bilinear with soft edges
    big = big.subsurface((2, 2, 4, 4))
    pygame.transform.smoothscale(big, surf.get_size(), surf)


# -- the main film and the attract loop -------------------------------------------------


def film(size: tuple[int, int]) -> Draw:
    w, h = size
    rng = random.Random(1)
    motes = [
        (rng.random(), rng.random(), rng.uniform(0.01, 0.04), rng.uniform(1.5, 5), rng.random())
        for _ in range(70)
    ]
    title = font(size, 0.05)

    def draw(surf: pygame.Surface, t: float) -> None:
        p = t / 70.0  # a slow dusk-to-night journey over the film's length
        corners = [
            (40 + 60 * math.sin(0.11 * t), 30 + 20 * p, 90 + 40 * math.sin(0.07 * t + 1)),
            (20 + 30 * p, 50 + 40 * math.sin(0.09 * t + 2), 110 - 30 * p),
            (90 - 50 * p, 40 + 30 * math.sin(0.05 * t), 60 + 50 * p),
            (30, 20 + 50 * math.sin(0.08 * t + 3) ** 2, 80 + 60 * p),
        ]
        gradient(surf, corners)
        for x0, y0, speed, radius, phase in motes:
            x = (x0 + 0.02 * math.sin(TAU * (phase + 0.03 * t))) * w
            y = ((y0 - speed * t) % 1.0) * h
            glow = 120 + 100 * math.sin(TAU * (phase + 0.2 * t)) ** 2
            r = max(1, round(radius * h / 720))
            pygame.draw.circle(surf, (glow, glow * 0.9, glow * 0.7), (x, y), r)
        ring = (0.5 + 0.5 * math.sin(0.3 * t)) * h * 0.25 + h * 0.1
        pygame.draw.circle(surf, (120, 130, 170), (w / 2, h / 2), ring, max(1, h // 360))
        img = title.render("Datacosm", True, (200, 200, 220))
        img.set_alpha(110)
        surf.blit(img, (h // 30, h // 30))

    return draw


def attract(size: tuple[int, int], period: float = 10.0) -> Draw:
    w, h = size
    big = font(size, 0.09)
    text = big.render("Play something\u2026", True, (235, 235, 245))

    def draw(surf: pygame.Surface, t: float) -> None:
        a = TAU * t / period  # everything periodic in `period`: a seamless loop
        gradient(
            surf,
            [
                (20 + 15 * math.sin(a), 20, 50 + 20 * math.cos(a)),
                (30, 15 + 10 * math.sin(a + 1), 45),
                (15, 25 + 10 * math.cos(a), 40),
                (25 + 15 * math.cos(a + 2), 20, 55 + 15 * math.sin(a)),
            ],
        )
        for k in range(3):
            r = (0.15 + 0.12 * k + 0.04 * math.sin(a + k)) * h
            shade = 70 + 30 * math.sin(a + 2 * k)
            pygame.draw.circle(surf, (shade, shade, shade + 40), (w / 2, h / 2), r, 2)
        breath = 0.75 + 0.25 * math.sin(a)
        img = text.copy()
        img.set_alpha(round(255 * breath))
        surf.blit(img, ((w - img.get_width()) // 2, (h - img.get_height()) // 2))

    return draw


# -- overlays (on black, periodic) -------------------------------------------------------


def baroque(size: tuple[int, int], period: float = 8.0) -> Draw:
    w, h = size
    gold = (212, 165, 60)

    def draw(surf: pygame.Surface, t: float) -> None:
        surf.fill((0, 0, 0))
        a = TAU * t / period
        width = max(2, h // 240)
        for cx, cy, s in ((0.2, 0.3, 1), (0.8, 0.3, -1), (0.2, 0.75, -1), (0.8, 0.75, 1)):
            for k in range(5):
                r = (0.05 + 0.035 * k) * h
                start = s * a + k * 0.7
                rect = pygame.Rect(0, 0, 2 * r, 2 * r)
                rect.center = (cx * w, cy * h)
                pygame.draw.arc(surf, gold, rect, start, start + 2.2, width)
        # a filigree scroll along the top and bottom
        for y in (0.08, 0.92):
            pts = [
                (x * w / 60, (y + 0.025 * math.sin(x * 0.7 + a)) * h) for x in range(61)
            ]
            pygame.draw.lines(surf, gold, False, pts, width)
        label(surf, "baroque", gold)

    return draw


def classical(size: tuple[int, int], period: float = 8.0) -> Draw:
    w, h = size
    white = (230, 230, 235)

    def draw(surf: pygame.Surface, t: float) -> None:
        surf.fill((0, 0, 0))
        a = TAU * t / period
        cx, cy = w / 2, h / 2
        for k, n in enumerate((3, 4, 6)):
            r = (0.16 + 0.1 * k) * h
            turn = a / n * (1 if k % 2 else -1)  # 1/n of a turn per loop: the same shape
            pts = [
                (cx + r * math.cos(turn + TAU * i / n), cy + r * math.sin(turn + TAU * i / n))
                for i in range(n)
            ]
            pygame.draw.polygon(surf, white, pts, max(1, h // 360))
        pygame.draw.circle(surf, white, (cx, cy), 0.44 * h, max(1, h // 360))
        for i in range(12):  # a slow clock-like tick ring
            ang = TAU * i / 12 + a / 12
            p1 = (cx + 0.46 * h * math.cos(ang), cy + 0.46 * h * math.sin(ang))
            p2 = (cx + 0.49 * h * math.cos(ang), cy + 0.49 * h * math.sin(ang))
            pygame.draw.line(surf, white, p1, p2, max(1, h // 240))
        label(surf, "classical", white)

    return draw


def ragtime(size: tuple[int, int], period: float = 8.0) -> Draw:
    w, h = size
    rng = random.Random(7)
    lanes = 44
    notes = []
    for lane in range(lanes):  # piano-roll perforations, one column per key
        y = rng.random()
        while y < 2.0:
            length = rng.choice((0.03, 0.05, 0.08, 0.12))
            notes.append((lane, y, length))
            y += length + rng.uniform(0.05, 0.4)
    sepia = (150, 105, 55)
    dark = (70, 45, 20)

    def draw(surf: pygame.Surface, t: float) -> None:
        surf.fill((0, 0, 0))
        scroll = (t / period) % 1.0  # the roll advances exactly one height per loop
        lane_w = w * 0.6 / lanes
        x0 = w * 0.2
        for lane, y, length in notes:
            for wrap in (0.0, -1.0, 1.0):
                top = (y - 2 * scroll + wrap * 2) % 2.0 - 0.5
                if -0.2 < top < 1.0:
                    rect = pygame.Rect(
                        x0 + lane * lane_w + 1, top * h, max(2, lane_w - 3), length * h
                    )
                    pygame.draw.rect(surf, sepia, rect)
        pygame.draw.line(surf, dark, (x0, 0), (x0, h), 3)
        pygame.draw.line(surf, dark, (x0 + lanes * lane_w, 0), (x0 + lanes * lane_w, h), 3)
        grain = random.Random(int(t * FPS) % round(period * FPS))  # grain loops too
        for _ in range(25):
            x, y = grain.random() * w, grain.random() * h
            pygame.draw.circle(surf, (120, 95, 60), (x, y), grain.choice((1, 1, 2)))
        if int(t * FPS) % 11 < 2:  # an occasional film scratch
            x = grain.random() * w
            pygame.draw.line(surf, (110, 90, 60), (x, 0), (x + 5, h), 1)
        label(surf, "ragtime", (200, 160, 100))

    return draw


def jazz(size: tuple[int, int], period: float = 8.0) -> Draw:
    w, h = size
    rng = random.Random(3)
    blobs = [
        (rng.random(), rng.random(), rng.uniform(0.04, 0.12), rng.choice((1, 2)), rng.random())
        for _ in range(22)
    ]
    small_size = (max(16, w // 6), max(9, h // 6))
    small = pygame.Surface(small_size)
    blur = pygame.Surface((small_size[0] // 3, small_size[1] // 3))

    def draw(surf: pygame.Surface, t: float) -> None:
        small.fill((0, 0, 0))
        sw, sh = small_size
        a = TAU * t / period
        for x0, y0, r, k, phase in blobs:  # soft bokeh: drawn small, scaled up smoothly
            x = (x0 + 0.08 * math.sin(k * a + TAU * phase)) * sw
            y = (y0 + 0.06 * math.cos(k * a + TAU * phase)) * sh
            glow = 0.5 + 0.5 * math.sin(a * k + TAU * phase)
            colour = (40 + 60 * glow, 60 + 40 * glow, 150 + 100 * glow)
            pygame.draw.circle(small, colour, (x, y), r * sh, 0)
        pygame.transform.smoothscale(small, blur.get_size(), blur)  # down then up: a blur
        pygame.transform.smoothscale(blur, (w, h), surf)
        # a neon line, like a sign flickering through smoke
        neon = (90, 170, 255)
        pts = [(x * w / 40, h * (0.5 + 0.12 * math.sin(x * 0.45 + a))) for x in range(41)]
        pygame.draw.lines(surf, neon, False, pts, max(2, h // 180))
        label(surf, "jazz", neon)

    return draw


# -- endings -----------------------------------------------------------------------------

ENDING_COLOURS = {
    "baroque": ((90, 60, 10), (30, 15, 5)),
    "classical": ((60, 65, 80), (15, 15, 25)),
    "ragtime": ((95, 70, 40), (35, 22, 10)),
    "jazz": ((15, 30, 90), (5, 5, 30)),
    "default": ((45, 45, 50), (10, 10, 12)),
}


def ending(size: tuple[int, int], genre: str, seconds: float) -> Draw:
    w, h = size
    text = "Ending" if genre == "default" else f"Ending: {genre.capitalize()}"
    img = font(size, 0.14).render(text, True, (245, 240, 230))
    light, dark = ENDING_COLOURS[genre]

    def draw(surf: pygame.Surface, t: float) -> None:
        s = 0.5 + 0.5 * math.sin(0.4 * t)
        mix = [tuple(d + (lt - d) * s * k for lt, d in zip(light, dark, strict=True))
               for k in (1.0, 0.6, 0.4, 0.8)]
        gradient(surf, mix)
        y = (h - img.get_height()) // 2 - round(0.01 * h * t)
        surf.blit(img, ((w - img.get_width()) // 2, y))
        fade = min(1.0, t / 1.0, max(0.0, (seconds - t) / 3.0))  # fade in, fade to black
        if fade < 1.0:
            level = round(255 * fade)
            surf.fill((level, level, level), special_flags=pygame.BLEND_RGB_MULT)

    return draw


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="1920x1080", help="WxH, e.g. 1920x1080")
    ap.add_argument("--out", default=str(Path(__file__).parent / "demo"))
    ap.add_argument("--crf", type=int, default=30, help="x264 quality (higher: smaller)")
    ap.add_argument("--only", nargs="*", help="names to (re)make, e.g. film jazz")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    size = (w, h)
    out = Path(args.out)
    pygame.display.init()
    pygame.font.init()
    jobs: dict[str, tuple[Path, float, Draw]] = {
        "film": (out / "film.mp4", 70.0, film(size)),
        "attract": (out / "attract.mp4", 10.0, attract(size)),
    }
    makers = {"baroque": baroque, "classical": classical, "ragtime": ragtime, "jazz": jazz}
    for g in GENRES:
        jobs[g] = (out / "overlays" / f"{g}.mp4", 8.0, makers[g](size))
    for g in (*GENRES, "default"):
        jobs[f"ending-{g}"] = (out / "endings" / f"{g}.mp4", 18.0, ending(size, g, 18.0))
    for name, (path, seconds, draw) in jobs.items():
        if args.only and name not in args.only:
            continue
        encode(path, size, seconds, draw, args.crf)
    (out / "show.toml").write_text(SHOW_TOML.format(fps=FPS, w=w, h=h))
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"{out}: {total / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
