"""`appliance run`: the daemon. Capture thread → listener thread → render loop (main thread).

The render loop reads like the product: take what was heard, let the director decide,
render the frame. systemd hears READY once the first frame is up, WATCHDOG only while all
three loops make progress, STATUS when something worth saying changes, STOPPING on SIGTERM.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import threading
import time
from datetime import datetime
from pathlib import Path

from appliance.audio import open_source
from appliance.config import Config, demo_show_dir
from appliance.listen import BundleError, Listener, default_engine_dir, open_listener
from appliance.listen.estimate import GenreEstimate
from appliance.player import Player, open_output
from appliance.service.events import EventLog
from appliance.service.notify import Watchdog, notify, watchdog_interval
from appliance.service.showloop import ShowLoop
from appliance.show.director import Director
from appliance.show.showfile import Show, ShowError, load_show_or_raise

log = logging.getLogger("appliance.service")

LOOPS = ["capture", "listen", "render"]


def _test_stall(loop: str, started: float) -> bool:
    """Fault injection for the watchdog test only: APPLIANCE_TEST_STALL=listen@3 freezes the
    listener loop 3 s after start. Never set on a real box."""
    spec = os.environ.get("APPLIANCE_TEST_STALL", "")
    name, _, after = spec.partition("@")
    return name == loop and time.monotonic() - started >= float(after or 0)


class ListenThread(threading.Thread):
    """Reads the source one hop at a time, runs the engine, queues estimates."""

    def __init__(self, listener: Listener, source, watchdog: Watchdog, stop: threading.Event):
        super().__init__(name="listen", daemon=True)
        self.listener, self.source, self.watchdog, self.stop = listener, source, watchdog, stop
        self.heard: queue.SimpleQueue[GenreEstimate] = queue.SimpleQueue()

    def run(self) -> None:
        hop = self.listener.bundle.hop_samples
        started = time.monotonic()
        while not self.stop.is_set():
            if _test_stall("listen", started):
                self.stop.wait(0.1)
                continue
            try:
                for estimate in self.listener.feed(self.source.read(hop)):
                    self.heard.put(estimate)
            except Exception:  # keep listening; the watchdog tells systemd if this persists
                log.exception("listener step failed")
                self.stop.wait(0.5)
                continue
            self.watchdog.beat("listen")

    def drain(self) -> list[GenreEstimate]:
        out = []
        while True:
            try:
                out.append(self.heard.get_nowait())
            except queue.Empty:
                return out


def _open_listener(config: Config) -> Listener:
    try:
        return open_listener(config.listen.engine, backend=config.listen.backend,
                             threads=config.listen.threads)
    except (BundleError, OSError) as e:
        if Path(config.listen.engine).resolve() == default_engine_dir().resolve():
            raise
        log.error("engine %s unusable (%s); falling back to the shipped engine",
                  config.listen.engine, e)
        return open_listener(default_engine_dir(), backend=config.listen.backend,
                             threads=config.listen.threads)


def _load_show(config: Config) -> Show:
    try:
        show, problems = load_show_or_raise(config.show.path)
    except ShowError as e:
        if Path(config.show.path).resolve() == demo_show_dir().resolve():
            raise
        log.error("show %s cannot play (%s); playing the demo show instead", config.show.path, e)
        show, problems = load_show_or_raise(demo_show_dir())
    for p in problems:  # what the show can live without: said once, then it plays
        log.error("%s", p)
    return show


def _events_log(events_dir: Path) -> EventLog:
    path = Path(events_dir) / f"{datetime.now():%Y%m%d-%H%M%S}.jsonl"
    try:
        return EventLog(path)
    except OSError as e:
        log.warning("cannot write show events under %s (%s); events go to the log only",
                    events_dir, e)
        return EventLog(None)


def run(config: Config) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    listener = _open_listener(config)
    show = _load_show(config)
    a = config.audio
    source = open_source(a.source, rate=listener.fe.sample_rate, realtime=True,
                         device_rate=a.rate, channels=a.channels,
                         period_frames=a.period_frames, sample_format=a.format)
    output = open_output(config.display.output, show.size, show.fps,
                         record=str(config.display.record) if config.display.record else None)
    player = Player(output, show.size, show.fps, realtime=True)

    def ready() -> None:  # the output calls this once its first frame is really presented
        notify("READY=1")
        log.info("first frame presented; ready")

    output.on_first_frame = ready
    director = Director(show)
    events = _events_log(config.service.events_dir)
    loop = ShowLoop(director, player, events)
    watchdog = Watchdog(LOOPS, watchdog_interval())
    listen = ListenThread(listener, source, watchdog, stop)
    log.info("listening on %s with %s (%s); show %s", a.source, listener.bundle.label,
             listener.engine.backend, show.title)

    listen.start()
    t0 = time.monotonic()
    frame = 0
    status = ""
    status_at = 0.0
    started = t0
    try:
        while not stop.is_set():
            now = time.monotonic()
            t = now - t0
            if not _test_stall("render", started):
                loop.step(t, listen.drain())        # heard → director → frame on screen
                watchdog.beat("render")
            watchdog.beat("capture", at=source.last_progress)
            watchdog.tick()
            if now - status_at >= 1.0:
                new = (f"{director.state}; hearing {director.genre or 'nothing yet'}; "
                       f"input {source.status}")
                if new != status:
                    notify(f"STATUS={new}")
                    status = new
                status_at = now
            frame += 1
            # pace to the show's frame rate; a late frame is not made up for
            wait = t0 + frame / show.fps - time.monotonic()
            if wait > 0:
                stop.wait(wait)
            else:
                frame = int((time.monotonic() - t0) * show.fps)
    finally:
        notify("STOPPING=1")
        log.info("stopping")
        listen.join(timeout=1.0)
        source.close()
        player.close()
        events.write({"t": round(time.monotonic() - t0, 3), "event": "stats", **player.stats})
        events.close()
    return 0

