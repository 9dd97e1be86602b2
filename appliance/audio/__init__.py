"""Where sound comes from: one ``AudioSource`` interface over a live ALSA mic or a file.

``open_source("alsa:hw:1,0", 16000)`` or ``open_source("file:take.flac", 16000)``.
Every source hands out float32 mono at the engine's rate, exactly as many samples as
asked for, and never stops the daemon because the mic went away: ``status`` says why the
samples are zeros instead.
"""

from __future__ import annotations

import os
import re
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["AudioSource", "open_source"]


@runtime_checkable
class AudioSource(Protocol):
    rate: int
    """Output sample rate in Hz (the engine's)."""
    status: str
    """``"ok"`` or ``"no input: <plain-words reason>"``."""
    ended: bool
    """True once a file source has passed its end; always False for live input."""
    last_progress: float
    """``time.monotonic()`` of the last time the source produced samples (watchdog)."""

    def read(self, n: int) -> np.ndarray:
        """Exactly ``n`` float32 mono samples in [-1, 1] at ``rate`` (blocking)."""
        ...

    def close(self) -> None: ...


_URI_FORMS = "'alsa:DEVICE' (e.g. alsa:default, alsa:hw:1,0), 'file:PATH', or a bare file path"
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):(.*)$", re.DOTALL)


def open_source(
    uri: str,
    rate: int,
    *,
    realtime: bool = False,
    device_rate: int = 48000,
    channels: int = 1,
    period_frames: int = 1024,
    sample_format: str = "S16_LE",
) -> AudioSource:
    """Open an audio source by URI.

    ``realtime`` applies to files only (live input is paced by the device); the
    ``device_rate``/``channels``/``period_frames``/``sample_format`` arguments apply to
    ALSA only. Raises ValueError for an unknown scheme or bad arguments, and
    FileNotFoundError/ValueError for a file that is missing or unreadable; an ALSA
    device that is missing does NOT raise (see ``AudioSource.status``).
    """
    if not isinstance(uri, str) or not uri.strip():
        raise ValueError(f"empty audio source; expected {_URI_FORMS}")
    m = _SCHEME.match(uri)
    if m is None or os.path.exists(uri):
        # No scheme (or an existing path that merely contains a colon): a file.
        scheme, rest = "file", uri
    else:
        scheme, rest = m.group(1).lower(), m.group(2)

    if scheme == "alsa":
        if not rest:
            raise ValueError(f"'alsa:' needs a device name; expected {_URI_FORMS}")
        from .alsa import AlsaSource

        return AlsaSource(
            rest,
            rate,
            device_rate=device_rate,
            channels=channels,
            period_frames=period_frames,
            sample_format=sample_format,
        )
    if scheme == "file":
        if rest.startswith("//"):  # file:///abs/path
            rest = rest[2:]
        if not rest:
            raise ValueError(f"'file:' needs a path; expected {_URI_FORMS}")
        from .file import FileSource

        return FileSource(rest, rate, realtime=realtime)
    raise ValueError(f"unknown audio source scheme {scheme!r} in {uri!r}; expected {_URI_FORMS}")
