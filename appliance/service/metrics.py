"""What the box reports to a fleet's Prometheus: a text-format file, no network port.

The daemon hands :class:`Metrics` its show events (to count shows and endings) and, once a
second, a :class:`Snapshot` of how the show is. The file is written with prometheus-client's
``write_to_textfile`` (a temporary file beside it, then one rename: a reader never sees half
a file) for node_exporter's textfile collector, and only when a value changed, so an idle
box does not wear its flash with a write a second. Nothing here opens a socket.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest, write_to_textfile
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger("appliance.service")

STATES = ("attract", "main", "ending", "rest")
STYLES = ("baroque", "classical", "ragtime", "jazz")
DEFAULT_ENDING = "default"


@dataclass
class Snapshot:
    """How the show is now, as the daemon's status knows it."""

    state: str = "attract"
    hearing: str | None = None  # a style, "none" (no music), or None before anything is heard
    music: bool = False
    engine: str = ""
    runs_on: str = ""  # "ONNX Runtime FP32", "TensorRT INT8", …
    backend: str = ""  # "onnxruntime", "tensorrt"
    mic_up: bool = False
    frames: dict = field(default_factory=dict)  # the player's presented/late/dropped/errors
    reload_failed: bool = False
    stalled_loops: int = 0
    watchdog_armed: bool = False


class Metrics(Collector):
    """Counts shows and endings from show events; writes the metrics file on change.

    ``restarts``: systemd's count of automatic restarts of the unit (a watchdog timeout is
    one), read once when the daemon starts; None where systemd cannot tell.
    """

    def __init__(self, path: Path, *, restarts: int | None = None,
                 started: float | None = None) -> None:
        self.path = Path(path)
        self.restarts = restarts
        self.started = time.time() if started is None else started
        self.shows = 0
        self.endings: dict[str, int] = {s: 0 for s in (*STYLES, DEFAULT_ENDING)}
        self.snapshot = Snapshot()
        self.writes = 0
        self._written: bytes | None = None
        self._failed = False
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    def take(self, event: dict) -> None:
        """One show event, as written to the events file."""
        kind = event.get("event")
        if kind == "state" and event.get("state") == "main":
            self.shows += 1
        elif kind == "ending":
            style = str(event.get("genre") or DEFAULT_ENDING)
            self.endings[style] = self.endings.get(style, 0) + 1

    def update(self, snapshot: Snapshot) -> bool:
        """Take the show's state; write the file if anything in it changed. True if written."""
        self.snapshot = snapshot
        return self.write()

    def write(self) -> bool:
        text = generate_latest(self.registry)
        if text == self._written:
            return False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_to_textfile(str(self.path), self.registry)
        except OSError as e:  # a full or read-only disk never stops the show
            if not self._failed:
                log.warning("cannot write metrics to %s (%s); will keep trying", self.path, e)
                self._failed = True
            return False
        if self._failed:
            log.info("metrics written to %s again", self.path)
            self._failed = False
        self._written = text
        self.writes += 1
        return True

    def collect(self) -> Iterator[Metric]:
        s = self.snapshot
        up = GaugeMetricFamily("appliance_start_time_seconds",
                               "when the running daemon started (Unix time)")
        up.add_metric([], round(self.started, 3))
        yield up
        state = GaugeMetricFamily("appliance_state", "the show's state: 1 for the current one "
                                  "(attract loop, film, ending, resting)", labels=["state"])
        for name in STATES:
            state.add_metric([name], 1.0 if s.state == name else 0.0)
        yield state
        heard = GaugeMetricFamily("appliance_style_heard", "the style the box hears now "
                                  "(smoothed): 1 for it; none = no music", labels=["style"])
        for name in (*STYLES, "none"):
            heard.add_metric([name], 1.0 if s.hearing == name else 0.0)
        yield heard
        music = GaugeMetricFamily("appliance_music_present", "1 while music is heard")
        music.add_metric([], 1.0 if s.music else 0.0)
        yield music
        shows = CounterMetricFamily("appliance_shows", "performances started (the main film) "
                                    "since the daemon started")
        shows.add_metric([], self.shows)
        yield shows
        endings = CounterMetricFamily("appliance_endings", "endings played since the daemon "
                                      "started, by style (default: no style was clear)",
                                      labels=["style"])
        for name in sorted(self.endings, key=_ending_order):
            endings.add_metric([name], self.endings[name])
        yield endings
        for key, what in (("dropped", "show frames skipped because the render loop fell "
                           "behind"), ("late", "frames not decoded in time (the previous one "
                                       "was shown again)")):
            frames = CounterMetricFamily(f"appliance_frames_{key}", f"{what}, since the daemon "
                                         "started")
            frames.add_metric([], float(s.frames.get(key, 0)))
            yield frames
        engine = GaugeMetricFamily("appliance_engine_info", "the genre engine the show runs "
                                   "(always 1; the labels say which and on what)",
                                   labels=["engine", "backend", "runs_on"])
        engine.add_metric([s.engine, s.backend, s.runs_on], 1.0)
        yield engine
        reload = GaugeMetricFamily("appliance_engine_reload_failed", "1 when the last engine "
                                   "switch failed and the old engine kept playing")
        reload.add_metric([], 1.0 if s.reload_failed else 0.0)
        yield reload
        mic = GaugeMetricFamily("appliance_mic_up", "1 while the capture device delivers "
                                "audio, 0 while it is missing (the show plays on and retries)")
        mic.add_metric([], 1.0 if s.mic_up else 0.0)
        yield mic
        stalled = GaugeMetricFamily("appliance_watchdog_stalled_loops", "loops (capture, "
                                    "listen, render) not making progress now; while any is, "
                                    "the systemd watchdog is not fed")
        stalled.add_metric([], float(s.stalled_loops))
        yield stalled
        armed = GaugeMetricFamily("appliance_watchdog_armed", "1 when systemd's watchdog "
                                  "watches the show (WatchdogSec=)")
        armed.add_metric([], 1.0 if s.watchdog_armed else 0.0)
        yield armed
        if self.restarts is not None:
            restarts = CounterMetricFamily("appliance_restarts", "automatic restarts of "
                                           "appliance.service by systemd (NRestarts: watchdog "
                                           "timeouts and crashes) since it was started by hand "
                                           "or at boot")
            restarts.add_metric([], float(self.restarts))
            yield restarts


def _ending_order(name: str) -> tuple[int, str]:
    order: Sequence[str] = (*STYLES, DEFAULT_ENDING)
    return (order.index(name), name) if name in order else (len(order), name)


def unit_restarts(unit: str = "appliance") -> int | None:
    """systemd's count of automatic restarts of the unit (``NRestarts``: a watchdog timeout
    or a crash, then ``Restart=always``) since it was started by hand or at boot; None where
    systemd is not running or cannot tell."""
    if not Path("/run/systemd/system").is_dir() or shutil.which("systemctl") is None:
        return None
    try:
        r = subprocess.run(["systemctl", "show", unit, "-p", "NRestarts", "--value"],
                           capture_output=True, text=True, timeout=10)
        return int(r.stdout.strip()) if r.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return None
