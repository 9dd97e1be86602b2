"""The preview's heads-up display (`appliance simulate --hud`): a panel over the top-left of
the film with the five styles as bars, what is heard, the show's state and the time left to
the decision. For artists and technicians watching a preview; never drawn on the box."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pygame

from appliance.listen.estimate import GENRES, NONE
from appliance.player.card import font

if TYPE_CHECKING:
    from appliance.service.showloop import ShowLoop

LABELS = (*GENRES, NONE)
COLOURS = {"baroque": (201, 162, 39), "classical": (74, 144, 217), "ragtime": (217, 83, 79),
           "jazz": (76, 174, 76), "none": (200, 200, 200)}
TRACK = (60, 60, 60)
STATE_WORDS = {"attract": "attract loop", "main": "film", "ending": "ending", "rest": "rest"}


def panel_rect(size: tuple[int, int]) -> pygame.Rect:
    """The HUD's panel: the top-left of the picture, about a third of it."""
    w, h = size
    return pygame.Rect(w // 40, h // 40, max(60, int(w * 0.36)), max(40, int(h * 0.40)))


def bar_rects(size: tuple[int, int]) -> dict[str, pygame.Rect]:
    """Where each style's bar track lies (a bar fills it from the left by its probability)."""
    panel = panel_rect(size)
    row = panel.height // 8
    pad = max(2, panel.width // 40)
    label_w = panel.width // 3
    top = panel.top + 2 * row + pad
    return {label: pygame.Rect(panel.left + pad + label_w, top + i * row + row // 6,
                               panel.width - 2 * pad - label_w, max(2, row * 2 // 3))
            for i, label in enumerate(LABELS)}


class Hud:
    """Draws what ``loop`` (a ShowLoop) has heard and decided, onto each preview frame."""

    def __init__(self, loop: ShowLoop) -> None:
        self.loop = loop

    def draw(self, surface: pygame.Surface) -> None:
        """Draw the panel over ``surface`` (the player's ``on_top`` hook)."""
        size = surface.get_size()
        panel = panel_rect(size)
        shade = pygame.Surface(panel.size, pygame.SRCALPHA)
        shade.fill((0, 0, 0, 170))
        surface.blit(shade, panel.topleft)
        row = panel.height // 8
        f = font(max(8, row * 3 // 4))
        pad = max(2, panel.width // 40)
        director, last = self.loop.director, self.loop.last
        t = director.now
        due = director.decision_due
        state = STATE_WORDS.get(director.state, director.state)
        if due is not None:
            state += f" — ending chosen in {max(0.0, due - t):.0f} s"
        elif director.decision is not None and director.state in ("main", "ending"):
            state += f" — ending: {director.decision}"
        heard = ("nothing heard yet" if last is None else
                 f"hearing {last.genre} {last.confidence:.2f}" if last.music_present else
                 "no music")
        surface.blit(f.render(state, True, (255, 255, 255)), (panel.left + pad, panel.top + pad))
        surface.blit(f.render(heard, True, (255, 255, 255)),
                     (panel.left + pad, panel.top + pad + row))
        probs = last.probs if last is not None else {}
        for label, track in bar_rects(size).items():
            surface.blit(f.render(label, True, (230, 230, 230)),
                         (panel.left + pad, track.top + (track.height - f.get_height()) // 2))
            pygame.draw.rect(surface, TRACK, track)
            p = min(1.0, max(0.0, float(probs.get(label, 0.0))))
            filled = track.copy()
            filled.width = round(track.width * p)
            if filled.width:
                pygame.draw.rect(surface, COLOURS[label], filled)
