"""`appliance run`: the daemon. Capture thread → listener thread → render loop (main thread).

The render loop reads like the product: take what was heard, let the director decide,
render the frame, tell whoever watches over the control socket. systemd hears READY once the
first frame is up, WATCHDOG only while all three loops make progress, STATUS when something
worth saying changes, STOPPING on SIGTERM. A key on a keyboard plugged into the box (T or F1)
puts the self-test on the screen for a minute.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import numpy as np

from appliance.audio import open_source
from appliance.audio.file import NoInputSource
from appliance.config import Config, demo_show_dir
from appliance.listen import Listener
from appliance.listen.estimate import GenreEstimate
from appliance.player import Player, open_output
from appliance.service.board import read_board
from appliance.service.control import ControlServer, ControlUnavailable
from appliance.service.events import EventLog, show_events_path
from appliance.service.hotswap import EngineSource, HotSwap, Loaded, Ticket
from appliance.service.live import WATCHERS_MAX, LiveFeed, make_reading
from appliance.service.metrics import Metrics, Snapshot
from appliance.service.notify import Watchdog, notify, watchdog_interval
from appliance.service.pacing import wait_for_next_frame
from appliance.service.reload import reload_config_and_show
from appliance.service.safemode import StartRecord, run_safe
from appliance.service.selftest import Facts, levels_from
from appliance.service.selftest_screen import SelfTestScreen
from appliance.service.showloop import ShowLoop
from appliance.show.director import Director
from appliance.show.showfile import Show, ShowError, load_show_or_raise

log = logging.getLogger("appliance.service")

LOOPS = ["capture", "listen", "render"]
RELOAD_WAIT_S = 600.0  # a first TensorRT build of a new engine takes minutes on the Jetson


def _test_stall(loop: str, started: float) -> bool:
    """Fault injection for the watchdog test only: APPLIANCE_TEST_STALL=listen@3 freezes the
    listener loop 3 s after start. Never set on a real box."""
    spec = os.environ.get("APPLIANCE_TEST_STALL", "")
    name, _, after = spec.partition("@")
    return name == loop and time.monotonic() - started >= float(after or 0)


_test_key_pressed = False


def _test_key(started: float) -> None:
    """The stand-in for a USB keyboard in tests only: APPLIANCE_TEST_KEY=t@3 posts a T key
    press into pygame's event queue 3 s after start, where a real keyboard's would arrive.
    Never set on a real box."""
    global _test_key_pressed
    spec = os.environ.get("APPLIANCE_TEST_KEY", "")
    if not spec or _test_key_pressed:
        return
    name, _, after = spec.partition("@")
    if time.monotonic() - started >= float(after or 0):
        import pygame

        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.key.key_code(name)))
        _test_key_pressed = True


class ListenThread(threading.Thread):
    """Reads the source one hop at a time, runs the engine, queues estimates. A new engine
    (``swap_to``) takes over at the top of the loop, i.e. between two windows."""

    RECENT_S = 30.0  # audio kept for a new engine's first window
    FALLBACK_AFTER = 10  # bad windows in a row (5 s at a 0.5 s hop) before falling back

    def __init__(self, listener: Listener, source, watchdog: Watchdog, stop: threading.Event):
        super().__init__(name="listen", daemon=True)
        self.listener, self.source, self.watchdog, self.stop = listener, source, watchdog, stop
        # estimates, and engine events (dicts) in the order they happened
        self.heard: queue.SimpleQueue[GenreEstimate | dict] = queue.SimpleQueue()
        self._recent: deque[np.ndarray] = deque()
        self._recent_n = 0
        self._next: tuple[Loaded, Callable[[bool, str], None]] | None = None
        self._next_lock = threading.Lock()
        self._last_t: float | None = None
        self._announce: dict | None = None
        self._bad_before = 0  # bad windows of the engines this thread ran before
        self._fallback_asked = False
        # called with a reason when the engine keeps failing (the daemon: HotSwap.fall_back)
        self.on_failing: Callable[[str], None] | None = None

    @property
    def bad_windows(self) -> int:
        """Windows ignored because the engine raised or answered NaN/inf, since start."""
        return self._bad_before + self.listener.bad_windows

    def _check_engine(self) -> None:
        """Say once when the engine starts failing; ask for a fallback when it persists."""
        lst = self.listener
        if lst.bad_in_a_row == 0:
            if self._fallback_asked:
                log.warning("engine %s answers again", lst.bundle.label)
            self._fallback_asked = False
            return
        if lst.bad_in_a_row == 1:
            log.warning("engine %s %s; such windows are ignored and counted (%d so far)",
                        lst.bundle.label, lst.last_bad, self.bad_windows)
        if lst.bad_in_a_row >= self.FALLBACK_AFTER and not self._fallback_asked:
            self._fallback_asked = True
            if self.on_failing is not None:
                self.on_failing(f"{lst.last_bad} for {lst.bad_in_a_row} windows in a row")

    def swap_to(self, new: Loaded, done: Callable[[bool, str], None]) -> None:
        """Hand over a new engine; ``done(ok, message)`` is called once it has taken over."""
        with self._next_lock:
            self._next = (new, done)

    def _remember(self, samples: np.ndarray) -> None:
        self._recent.append(samples)
        self._recent_n += len(samples)
        keep = int(self.RECENT_S * self.listener.fe.sample_rate)
        while self._recent and self._recent_n - len(self._recent[0]) >= keep:
            self._recent_n -= len(self._recent.popleft())

    def _take_over(self) -> None:
        with self._next_lock:
            nxt, self._next = self._next, None
        if nxt is None:
            return
        new, done = nxt
        old = self.listener
        try:
            recent = np.concatenate(self._recent) if self._recent else np.zeros(0, np.float32)
            new.listener.continue_from(old, recent)
        except Exception as e:  # keep the old engine rather than stop listening
            done(False, f"{new.label} could not take over: {e}")
            return
        self._bad_before += old.bad_windows
        self._fallback_asked = False
        self.listener = new.listener
        self._announce = {"event": "engine", "switched": True, "engine": new.label,
                          "replaced": old.bundle.label, "runs_on": new.runs_on,
                          "last_window_t": None if self._last_t is None else round(self._last_t, 3)}
        done(True, "")

    def run(self) -> None:
        started = time.monotonic()
        while not self.stop.is_set():
            if _test_stall("listen", started):
                self.stop.wait(0.1)
                continue
            self._take_over()
            try:
                samples = self.source.read(self.listener.bundle.hop_samples)
                self._remember(samples)
                for estimate in self.listener.feed(samples):
                    if self._announce is not None:  # queued just before what it explains
                        self.heard.put({**self._announce, "first_window_t": round(estimate.t, 3)})
                        self._announce = None
                    self._last_t = estimate.t
                    self.heard.put(estimate)
                self._check_engine()
            except Exception:  # keep listening; the watchdog tells systemd if this persists
                log.exception("listener step failed")
                self.stop.wait(0.5)
                continue
            self.watchdog.beat("listen")

    def drain(self) -> list[GenreEstimate | dict]:
        out = []
        while True:
            try:
                out.append(self.heard.get_nowait())
            except queue.Empty:
                return out


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


def _events_log(config: Config, show: Show) -> EventLog:
    """One events file per show, rotated by size and count (``EventLog``)."""
    s = config.service
    return EventLog(show_events_path(s.events_dir, show.folder), wall_clock=True,
                    max_bytes=s.events_max_kb * 1024, keep=s.events_keep)


def _control_server(config: Config, hotswap: HotSwap, status: Callable[[], dict],
                    feed: LiveFeed):
    """The control socket, or None (said in the log) where it cannot be made."""
    path = config.service.control_socket
    if path is None:
        return None

    def readings() -> Iterator[dict]:  # one line per hop; {"idle": true} while quiet
        yield {"ok": True, **status()}
        for reading in feed.watch(idle_s=1.0):
            yield reading if reading is not None else {"idle": True}

    def handle(req: dict) -> dict | Iterator[dict]:
        cmd = req.get("cmd")
        if cmd == "status":
            return {"ok": True, **status()}
        if cmd == "watch":
            if feed.watchers >= WATCHERS_MAX:
                return {"ok": False, "error": f"{WATCHERS_MAX} meters already watch this show; "
                                              "close one"}
            return readings()
        if cmd == "reload":
            ticket = hotswap.request()
            if not ticket.done.wait(RELOAD_WAIT_S):
                return {"ok": False, "error": f"the reload did not finish within "
                                              f"{RELOAD_WAIT_S:g} s; see the status line"}
            return ticket.outcome
        return {"ok": False, "error": f"unknown command {cmd!r}; try status, watch or reload"}

    try:
        server = ControlServer(Path(path), handle, group=config.service.control_group)
    except (ControlUnavailable, OSError) as e:
        log.warning("no control socket (%s); SIGHUP still reloads the engine", e)
        return None
    server.start()
    log.info("control socket at %s", path)
    return server


def _metrics(config: Config) -> Metrics | None:
    """The metrics file for node_exporter's textfile collector, or None (not configured)."""
    from appliance.service.metrics import unit_restarts

    path = config.service.metrics_file
    if path is None:
        return None
    log.info("metrics to %s", path)
    return Metrics(path, restarts=unit_restarts())


def run(config: Config) -> int:
    stop = threading.Event()
    reload_asked = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGHUP, lambda *_: reload_asked.set())  # systemctl reload appliance

    started, started_wall = time.monotonic(), datetime.now().astimezone()
    show = _load_show(config)
    starts = StartRecord(Path(config.service.events_dir) / "starts.json",
                         after=config.service.safe_mode_after,
                         window_s=config.service.safe_mode_window_s)
    if starts.begin():  # a crash loop: the film without the engine or the mic
        return run_safe(config, show, starts)
    refused = ""  # why the last SIGHUP's config or show was refused
    pending_show: Show | None = None  # a reloaded show, waiting for the attract loop
    engines = EngineSource(config)
    running = engines.open_initial()
    listener = running.listener
    a = config.audio
    try:
        source = open_source(a.source, rate=listener.fe.sample_rate, realtime=True,
                             device_rate=a.rate, channels=a.channels,
                             period_frames=a.period_frames, sample_format=a.format)
    except (ValueError, OSError) as e:  # a file source that cannot be used: like no mic
        source = NoInputSource(listener.fe.sample_rate, str(e))
        log.error("audio input %s cannot be used: %s; the film plays without listening",
                  a.source, e)
    output = open_output(config.display.output, show.size, show.fps,
                         record=str(config.display.record) if config.display.record else None,
                         compositor=config.display.compositor)
    player = Player(output, show.size, show.fps, realtime=True)

    def ready() -> None:  # the output calls this once its first frame is really presented
        notify("READY=1")
        log.info("first frame presented; ready")

    output.on_first_frame = ready
    director = Director(show)
    events = _events_log(config, show)
    metrics = _metrics(config)  # the Prometheus textfile; None when the config sets none
    loop = ShowLoop(director, player, events,
                    on_event=metrics.take if metrics is not None else None)
    watchdog = Watchdog(LOOPS, watchdog_interval())
    listen = ListenThread(listener, source, watchdog, stop)
    hotswap = HotSwap(engines, running, listen)
    listen.on_failing = hotswap.fall_back  # an engine that keeps failing: FP32, then shipped
    feed = LiveFeed()  # what `appliance listen` and the self-test watch
    log.info("listening on %s with %s; show %s", a.source, running.describe(), show.title)

    def status() -> dict:  # for the control socket; read from its threads
        last = loop.last
        return {"state": director.state, "hearing": director.genre,
                "confidence": None if last is None else round(last.confidence, 4),
                "music": bool(last and last.music_present),
                "level_db": None if last is None else last.level_db,
                "overlay": director.overlay, "input": source.status, "source": a.source,
                **hotswap.running.to_dict(), "reload_failed": hotswap.last_failure,
                "reload_refused": refused,
                "bad_windows": listen.bad_windows,
                "frames": dict(player.stats), "output": output.kind,
                "show": show.title, "show_dir": str(show.folder),
                "started": started_wall.isoformat(timespec="seconds"),
                "uptime_s": round(time.monotonic() - started, 1),
                "shows": loop.shows.recent(5), "board": read_board(),
                "watchdog_s": watchdog.interval_s, "stalled": watchdog.stalled(),
                "selftest": selftest.last, "pid": os.getpid()}

    def snapshot() -> Snapshot:  # what the metrics file says, once a second
        last, engine = loop.last, hotswap.running
        return Snapshot(state=director.state, hearing=director.genre,
                        music=bool(last and last.music_present), engine=engine.label,
                        runs_on=engine.runs_on, backend=engine.listener.engine.backend,
                        mic_up=source.status == "ok", frames=dict(player.stats),
                        reload_failed=bool(hotswap.last_failure),
                        stalled_loops=len(watchdog.stalled()),
                        watchdog_armed=watchdog.interval_s is not None)

    def facts() -> Facts:  # what the self-test looks at, from inside the show
        engine = hotswap.running
        return Facts(config, show.folder, engine.listener.bundle.path, engine.origin,
                     source.status, output.kind, status(), "",
                     [config.service.events_dir, config.listen.store])

    def selftest_done(checks: list) -> None:  # the result goes into the events file too
        events.write({"t": round(time.monotonic() - t0, 3), "event": "selftest",
                      "passed": all(c.ok for c in checks), "checks": [c.to_dict() for c in checks]})

    selftest = SelfTestScreen(facts, lambda seconds: levels_from(feed.watch(idle_s=0.5), seconds),
                              on_done=selftest_done)
    t0 = time.monotonic()
    control = _control_server(config, hotswap, status, feed)
    listen.start()
    frame = 0
    status_line = ""
    status_at = 0.0
    reloading: Ticket | None = None
    try:
        while not stop.is_set():
            now = time.monotonic()
            t = now - t0
            if reload_asked.is_set():
                reload_asked.clear()
                notify("RELOADING=1")
                found = reload_config_and_show(config, show)  # refused whole if anything is wrong
                if not found.ok:
                    refused = (f"reload refused, kept the running config and show: "
                               f"{found.errors[0]}" + (f" (and {len(found.errors) - 1} more)"
                                                       if len(found.errors) > 1 else ""))
                    log.error("SIGHUP: reload refused, the running config and show stay; "
                              "%d problem(s):\n  %s", len(found.errors), "\n  ".join(found.errors))
                    notify("READY=1")
                else:
                    refused = ""
                    if found.show is not None:
                        pending_show = found.show
                        log.info("SIGHUP: show %s takes over at the next attract loop",
                                 found.show.title)
                    log.info("SIGHUP: reloading the engine")
                    reloading = hotswap.request()
            if pending_show is not None and director.state == "attract":
                show, pending_show = pending_show, None  # between performances, never in one
                director = Director(show)
                events.close()
                events = _events_log(config, show)
                loop.director, loop.events = director, events
                log.info("now playing show %s (%s)", show.title, show.folder)
            if reloading is not None and reloading.done.is_set():
                notify("READY=1")  # systemd: the reload is over (switched or not)
                reloading = None
            if not _test_stall("render", t0):
                heard = listen.drain()
                for notice in [h for h in heard if isinstance(h, dict)]:  # engine switches
                    events.write({"t": round(t, 4), **notice,
                                  "dropped": player.stats["dropped"]})
                heard = [h for h in heard if not isinstance(h, dict)]
                _test_key(t0)
                selftest.take_keys(output.keys())   # T or F1 on the box's keyboard
                player.on_top = selftest.card()     # the self-test's card, while it shows
                loop.step(t, heard)                 # heard → director → frame on screen
                if feed.watchers:                   # → every meter watching (none: no work)
                    for estimate in heard:
                        feed.publish(make_reading(t, estimate, director, source.status))
                watchdog.beat("render")
            watchdog.beat("capture", at=source.last_progress)
            watchdog.tick()
            if now - status_at >= 1.0:
                new = (f"{director.state}; hearing {director.genre or 'nothing yet'}; "
                       f"input {source.status}; {hotswap.status()}"
                       + (f"; {refused}" if refused else ""))
                if new != status_line:
                    notify(f"STATUS={new}")
                    status_line = new
                if metrics is not None:
                    metrics.update(snapshot())  # written only when a value changed
                status_at = now
            frame = wait_for_next_frame(stop, t0, frame, show.fps)
    finally:
        notify("STOPPING=1")
        log.info("stopping")
        if control is not None:
            control.close()
        listen.join(timeout=1.0)
        source.close()
        player.close()
        events.write({"t": round(time.monotonic() - t0, 3), "event": "stats", **player.stats})
        events.close()
        if stop.is_set():  # a clean stop (SIGTERM): not a failed start
            starts.clean_stop()
    return 0
