"""Compositing with SDL's renderer (``pygame._sdl2.video``): on the Jetson it runs on OpenGL
ES, so the ARM cores only decode and upload; elsewhere SDL's software renderer stands in.

Every layer is a texture updated from the decoded frame; a crossfade is the new film's
texture drawn at an alpha, an additive overlay is a texture drawn with ``BLENDMODE_ADD`` at a
colour modulation (its strength), "screen" a custom blend mode (ONE, ONE_MINUS_SRC_COLOR),
which SDL's software renderer lacks: there it falls back to add (logged once). Media with
alpha blend by their alpha. The software compositor (``compositor.py``) is the reference;
``tests/test_player_gpu.py`` renders the same show both ways.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pygame
from pygame._sdl2.video import Renderer, Texture, Window

from .compositor import as_surface
from .output import Output, select_video_driver

log = logging.getLogger("appliance.player")

# SDL_BlendFactor / SDL_BlendOperation values (SDL_blendmode.h)
_ONE, _ONE_MINUS_SRC_COLOR, _ONE_MINUS_SRC_ALPHA, _ADD = 2, 4, 6, 1


def _level(strength: float) -> int:
    return max(0, min(255, round(strength * 255)))


class GpuCompositor:
    """The software compositor's interface (``base``, ``overlay``, ``top``), drawing into
    ``renderer``. Textures are made once per layer slot and updated in place each frame."""

    def __init__(self, renderer: Renderer, size: tuple[int, int]) -> None:
        self.renderer = renderer
        self.size = tuple(size)
        self._textures: dict[tuple[str, int, tuple[int, int]], Texture] = {}
        self._overlays = 0  # overlay slot within the frame being drawn
        self._screen: int | None = renderer.compose_custom_blend_mode(
            (_ONE, _ONE_MINUS_SRC_COLOR, _ADD), (_ONE, _ONE_MINUS_SRC_ALPHA, _ADD))
        self._screen_checked = False

    def _texture(self, slot: str, image: np.ndarray) -> Texture:
        h, w, depth = image.shape
        key = (slot, depth, (w, h))
        tex = self._textures.get(key)
        if tex is None:
            tex = Texture(self.renderer, (w, h), streaming=True)
            self._textures[key] = tex
        tex.update(as_surface(image))
        return tex

    def _draw(self, tex: Texture) -> None:
        tex.draw(dstrect=pygame.Rect(0, 0, *self.size))

    def base(self, current: np.ndarray | None, previous: np.ndarray | None, mix: float) -> None:
        """Start a frame: ``previous`` crossfading to ``current`` (mix 0..1); None is black."""
        r = self.renderer
        self._overlays = 0
        r.draw_color = (0, 0, 0, 255)
        r.clear()
        if mix >= 1.0 or (previous is None and current is None):
            if current is not None:
                tex = self._texture("base", current)
                tex.blend_mode, tex.alpha = pygame.BLENDMODE_NONE, 255
                self._draw(tex)
            return
        if previous is not None:
            tex = self._texture("from", previous)
            tex.blend_mode, tex.alpha = pygame.BLENDMODE_NONE, 255
            self._draw(tex)
        if current is not None and mix > 0.0:
            tex = self._texture("base", current)
            tex.blend_mode, tex.alpha = pygame.BLENDMODE_BLEND, _level(mix)
            self._draw(tex)

    def overlay(self, image: np.ndarray | None, strength: float, blend: str) -> None:
        """Lay ``image`` over what is drawn, at ``strength`` (0..1)."""
        if image is None or strength <= 0.0:
            return
        self._overlays += 1
        tex = self._texture(f"overlay{self._overlays}", image)
        level = _level(strength)
        if blend == "alpha" or image.shape[2] == 4:
            tex.blend_mode, tex.color, tex.alpha = pygame.BLENDMODE_BLEND, (255, 255, 255), level
        else:
            tex.alpha, tex.color = 255, (level, level, level)
            tex.blend_mode = pygame.BLENDMODE_ADD
            if blend == "screen" and self._screen is not None:
                try:
                    tex.blend_mode = self._screen
                except pygame.error as exc:
                    log.warning("this renderer cannot blend 'screen' (%s): overlays add", exc)
                    self._screen = None
                    tex.blend_mode = pygame.BLENDMODE_ADD
        self._draw(tex)

    def top(self, draw: Callable[[pygame.Surface], None]) -> None:
        """Let ``draw`` paint over the frame (a HUD, the self-test card): the frame is read
        back, drawn on, and put back (costly; only while such a thing shows)."""
        surface = self.renderer.to_surface()
        draw(surface)
        self._draw(self._texture("top", _as_array(surface)))

    def read(self) -> pygame.Surface:
        """The frame drawn so far, as a surface (for recordings and tests)."""
        return self.renderer.to_surface()


def _as_array(surface: pygame.Surface) -> np.ndarray:
    w, h = surface.get_size()
    return np.frombuffer(pygame.image.tobytes(surface, "RGB"), np.uint8).reshape(h, w, 3)


class RendererOutput(Output):
    """An SDL window with a renderer: ``kms`` (console, fullscreen at the screen's own mode),
    ``window``, or ``offscreen`` (SDL's dummy driver, software renderer: tests and benchmarks).

    ``accelerated``: 1 asks for a GPU renderer (fails where there is none), 0 the software
    one, -1 the GPU if there is one. The show's size is the renderer's logical size, so a
    screen of another shape is letterboxed by SDL, with black bars."""

    compositor_name = "gpu"

    def __init__(self, kind: str, size: tuple[int, int], fps: float, *, accelerated: int = -1,
                 record: str | Path | None = None,
                 record_size: tuple[int, int] | None = None) -> None:
        self.kind = kind
        fullscreen = False
        select_video_driver(kind)
        if kind == "kms":
            fullscreen = True
        pygame.display.quit()
        try:
            pygame.display.init()
            if fullscreen:  # the screen's own (preferred) mode; the show is letterboxed in it
                self.window = Window("appliance", size, fullscreen_desktop=True)
            else:
                self.window = Window("appliance", size)
            self.renderer = Renderer(self.window, accelerated=accelerated, vsync=False)
        except pygame.error as exc:
            pygame.display.quit()
            raise RuntimeError(str(exc)) from exc
        self.renderer.logical_size = tuple(size)
        if kind == "kms":
            pygame.mouse.set_visible(False)
        super().__init__(size, fps, record=record, record_size=record_size)
        self._compositor = GpuCompositor(self.renderer, size)

    def compositor(self) -> GpuCompositor:
        return self._compositor

    def _picture(self) -> pygame.Surface:
        return self._compositor.read()

    def _show(self) -> None:
        if self.kind != "offscreen":
            pygame.event.pump()
        self.renderer.present()

    def keys(self) -> list[str]:
        if not pygame.display.get_init():
            return []
        return [pygame.key.name(e.key) for e in pygame.event.get() if e.type == pygame.KEYDOWN]

    def close(self) -> None:
        super().close()
        self._compositor._textures.clear()
        del self.renderer
        self.window.destroy()
        pygame.display.quit()
