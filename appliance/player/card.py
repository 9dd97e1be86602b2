"""A card: lines of text drawn full-screen over the picture (the self-test's result on the
box; any message that must reach people in front of the screen). Text only, no media."""

from __future__ import annotations

import pygame

WHITE = (235, 235, 235)
GREEN = (70, 210, 90)
RED = (235, 70, 60)
GREY = (150, 150, 150)
BACKGROUND = (12, 12, 16)

_fonts: dict[int, pygame.font.Font] = {}


def font(size: int) -> pygame.font.Font:
    """pygame's bundled font at ``size`` pixels (no system fonts needed on the box)."""
    if not pygame.font.get_init():
        pygame.font.init()
    if size not in _fonts:
        _fonts[size] = pygame.font.Font(None, size)
    return _fonts[size]


def _wrap(text: str, f: pygame.font.Font, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        trial = f"{line} {word}".strip()
        if line and f.size(trial)[0] > width:
            lines.append(line)
            line = word
        else:
            line = trial
    return [*lines, line] if line else lines


def draw_card(surface: pygame.Surface, title: str, rows: list[tuple[str, tuple[int, int, int]]],
              footer: str = "") -> None:
    """Cover ``surface`` with ``title`` and ``rows`` of (text, colour), wrapped to fit."""
    w, h = surface.get_size()
    surface.fill(BACKGROUND)
    margin = max(4, w // 24)
    big, small = font(max(10, h // 12)), font(max(8, h // 22))
    y = margin
    surface.blit(big.render(title, True, WHITE), (margin, y))
    y += big.get_linesize() + small.get_linesize() // 2
    for text, colour in rows:
        for line in _wrap(text, small, w - 2 * margin):
            if y + small.get_linesize() > h - margin:
                return
            surface.blit(small.render(line, True, colour), (margin, y))
            y += small.get_linesize()
        y += small.get_linesize() // 3
    if footer:
        surface.blit(small.render(footer, True, GREY), (margin, h - margin - small.get_linesize()))


UNAVAILABLE = "This part of the film is unavailable"


def unavailable_image(size: tuple[int, int], text: str = UNAVAILABLE):
    """The calm card shown in place of a film that cannot be played: one centred line, dim
    on the card's dark background, as an (h, w, 3) uint8 array so it crossfades like a film."""
    import numpy as np

    w, h = size
    surface = pygame.Surface((w, h))
    surface.fill(BACKGROUND)
    size_px = max(8, h // 18)
    label = font(size_px).render(text, True, GREY)
    while label.get_width() > w * 0.9 and size_px > 8:  # narrow screens: smaller type
        size_px = max(8, size_px * 4 // 5)
        label = font(size_px).render(text, True, GREY)
    surface.blit(label, ((w - label.get_width()) // 2, (h - label.get_height()) // 2))
    return np.frombuffer(pygame.image.tobytes(surface, "RGB"), np.uint8).reshape(h, w, 3).copy()
