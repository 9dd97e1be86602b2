"""The player: decodes films and overlays, composes them, presents them (KMS/window/none)."""

import os

# pygame's import-time banner is noise in a daemon's journal and in CLI output
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

from .output import Output, open_output  # noqa: E402
from .player import Player  # noqa: E402

__all__ = ["Output", "Player", "open_output"]
