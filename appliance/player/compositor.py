"""Base layer + overlay layer, composed with pygame blits.

pygame's blitters are SIMD C loops working in place, so composing a frame costs a few
passes over the target and no full-size allocations: frames come in as numpy arrays that
``pygame.image.frombuffer`` wraps without copying, and the two scratch surfaces are made
once.
"""

from __future__ import annotations

import numpy as np
import pygame

BLENDS = ("add", "screen", "alpha")


def as_surface(image: np.ndarray) -> pygame.Surface:
    """Wrap an (h, w, 3|4) uint8 array as a surface, without a copy."""
    h, w, depth = image.shape
    return pygame.image.frombuffer(image, (w, h), "RGBA" if depth == 4 else "RGB")


def _level(strength: float) -> int:
    return max(0, min(255, round(strength * 255)))


class Compositor:
    """Composes into ``target`` (usually the display surface) in place."""

    def __init__(self, target: pygame.Surface) -> None:
        self.target = target
        self._tmp = pygame.Surface(target.get_size(), 0, target)
        self._tmp2 = pygame.Surface(target.get_size(), 0, target)

    def base(self, current: np.ndarray | None, previous: np.ndarray | None, mix: float) -> None:
        """Draw the base: ``previous`` crossfading to ``current`` (mix 0..1); None is black."""
        dst = self.target
        if mix >= 1.0 or (previous is None and current is None):
            if current is None:
                dst.fill((0, 0, 0))
            else:
                dst.blit(as_surface(current), (0, 0))
            return
        if previous is None:
            dst.fill((0, 0, 0))
        else:
            dst.blit(as_surface(previous), (0, 0))
        if current is not None and mix > 0.0:
            # alpha-blitting a 24-bit surface is a slow generic path; 32-bit to 32-bit is SIMD
            self._tmp.blit(as_surface(current), (0, 0))
            self._tmp.set_alpha(_level(mix))
            dst.blit(self._tmp, (0, 0))
            self._tmp.set_alpha(None)

    def _scaled(self, image: np.ndarray, strength: float) -> pygame.Surface:
        """The overlay's RGB multiplied by ``strength`` (black stays black)."""
        # always through the 32-bit scratch surface: a 24-bit source makes every blend
        # blit take pygame's slow generic path (measured: 225 vs 330 fps at 1080p)
        self._tmp.blit(as_surface(image), (0, 0))
        if strength < 1.0:
            level = _level(strength)
            self._tmp.fill((level, level, level), special_flags=pygame.BLEND_RGB_MULT)
        return self._tmp

    def top(self, draw) -> None:
        """Let ``draw`` paint over the frame (a HUD, the self-test card)."""
        draw(self.target)

    def overlay(self, image: np.ndarray | None, strength: float, blend: str) -> None:
        """Lay ``image`` over what is drawn, at ``strength`` (0..1)."""
        if image is None or strength <= 0.0:
            return
        dst = self.target
        if blend == "alpha" or image.shape[2] == 4:  # media with alpha always blend by it
            surf = as_surface(image)
            if image.shape[2] == 4:
                if strength < 1.0:
                    surf.set_alpha(_level(strength))
            else:  # an opaque video under "alpha": a plain crossfade over the base
                surf.set_alpha(_level(strength))
            dst.blit(surf, (0, 0))
        elif blend == "screen":
            # screen(d, o) = d + o - d*o/255, done as (d - d*o/255) + o: no clipping midway
            over = self._scaled(image, strength)
            self._tmp2.blit(over, (0, 0))
            self._tmp2.blit(dst, (0, 0), special_flags=pygame.BLEND_RGB_MULT)
            dst.blit(self._tmp2, (0, 0), special_flags=pygame.BLEND_RGB_SUB)
            dst.blit(over, (0, 0), special_flags=pygame.BLEND_RGB_ADD)
        else:  # "add": black is transparent
            dst.blit(self._scaled(image, strength), (0, 0), special_flags=pygame.BLEND_RGB_ADD)
