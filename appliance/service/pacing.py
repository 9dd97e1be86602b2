"""The render loops' frame pacing: the daemon's show and the safe mode's attract loop."""

from __future__ import annotations

import threading
import time


def wait_for_next_frame(stop: threading.Event, t0: float, frame: int, fps: float) -> int:
    """Wait until frame ``frame + 1`` is due (``t0`` on the monotonic clock, ``fps`` frames a
    second) or ``stop`` is set, and return the frame now due. A late frame is not made up
    for: the count jumps to the frame due now, so a stall never turns into a burst."""
    frame += 1
    wait = t0 + frame / fps - time.monotonic()
    if wait > 0:
        stop.wait(wait)
        return frame
    return int((time.monotonic() - t0) * fps)
