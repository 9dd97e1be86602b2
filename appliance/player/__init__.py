"""The player: decodes films and overlays, composes them, presents them (KMS/window/none)."""

from .output import Output, open_output
from .player import Player

__all__ = ["Output", "Player", "open_output"]
