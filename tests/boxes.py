"""A box on a desk for the tests of the people-facing commands: a config, a show, a tone as
the mic (a WAV file paced in real time), the real daemon (`appliance run`, SDL offscreen)
and the real `appliance` command run as a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from tests.conftest import band_tone_hz, make_tiny_show, write_wav

TONE_AMPLITUDE = 0.3


def make_box(root: Path, bundle: Path | None, *, band: int = 3, seconds: float = 60.0,
             audio: str | None = None, size: tuple[int, int] | None = None,
             record: Path | None = None, trusted_keys: Path | None = None, **show) -> Path:
    """Write ``root/appliance.toml`` (and its show and mic); return the config's path.
    ``bundle`` None: the engine comes from the store ``root/store``."""
    root.mkdir(parents=True, exist_ok=True)
    make_tiny_show(root / "show", **{"main_s": 6.0, "ending_s": 2.0, "rest_s": 1.0, **show})
    if size is not None:
        toml = root / "show" / "show.toml"
        toml.write_text(toml.read_text().replace("size = [32, 32]",
                                                 f"size = [{size[0]}, {size[1]}]"))
    if audio is None:
        t = np.arange(int(16000 * seconds)) / 16000
        write_wav(root / "mic.wav", TONE_AMPLITUDE * np.sin(2 * np.pi * band_tone_hz(band) * t))
        audio = f"file:{root / 'mic.wav'}"
    (root / "run").mkdir(exist_ok=True)
    config = root / "appliance.toml"
    config.write_text(f"""\
[audio]
source = "{audio}"
[listen]
engine = "{bundle or ''}"
store = "{root / 'store'}"
{f'trusted_keys = "{trusted_keys}"' if trusted_keys else ''}
[show]
path = "{root / 'show'}"
[display]
output = "offscreen"
{f'record = "{record}"' if record else ''}
[service]
events_dir = "{root / 'events'}"
control_socket = "{root / 'run' / 'control.sock'}"
control_group = ""
metrics_file = "{root / 'metrics' / 'appliance.prom'}"
""")
    return config


def appliance(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "appliance", *args], capture_output=True,
                          text=True, timeout=timeout)


def status_json(config: Path) -> dict:
    r = appliance("status", "--json", "--config", str(config))
    return json.loads(r.stdout)


def wait_status(config: Path, want, timeout: float = 30.0) -> dict:
    end = time.monotonic() + timeout
    s: dict = {}
    while time.monotonic() < end:
        s = status_json(config)
        if s.get("running") and want(s):
            return s
        time.sleep(0.5)
    raise AssertionError(f"status never matched: {s}")
