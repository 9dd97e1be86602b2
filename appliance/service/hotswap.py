"""Which engine the daemon runs, and switching it while the show plays.

At start the engine comes from the store's ``current`` (the shipped bundle is installed into
an empty store first), or from a bundle folder the config names; if that cannot be used,
the shipped bundle runs as it is. On SIGHUP or a ``reload`` on the control socket the new
engine is opened on a worker thread (the show keeps playing on the old one), handed to the
listen thread, and takes over between two windows. If it cannot be opened the old engine
keeps playing and the status line says why.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

from appliance.config import Config, default_engine_dir
from appliance.listen import Listener, load_bundle
from appliance.listen.bundle import MANIFEST, BundleError
from appliance.listen.calibration import CalibrationStore
from appliance.listen.engine import (
    OnnxEngine,
    backend_label,
    open_checked_engine,
    why_not_faster,
)
from appliance.store import Policy, Store, StoreError

log = logging.getLogger("appliance.service")


@dataclass
class Loaded:
    """An opened engine and how it came to run."""

    listener: Listener
    origin: str  # "store", "config" or "shipped"
    runs_on: str
    why: str = ""
    manifest_sha256: str = ""
    calibration: str = ""  # sha256 of the venue calibration it runs with; "" = none

    @property
    def label(self) -> str:
        return self.listener.bundle.label

    def describe(self) -> str:
        return (f"{self.label} on {self.runs_on}" + (f" ({self.why})" if self.why else "")
                + (", calibrated to the venue" if self.calibration else ""))

    def to_dict(self) -> dict:
        return {"engine": self.label, "origin": self.origin, "runs_on": self.runs_on,
                "not_faster": self.why, "path": str(self.listener.bundle.path),
                "calibrated": bool(self.calibration)}


def _sha(path: Path) -> str:
    return hashlib.sha256((path / MANIFEST).read_bytes()).hexdigest()


def store_policy(config: Config) -> Policy:
    listen = config.listen
    return Policy(trusted_keys=(listen.trusted_keys,), allow_unsigned=listen.allow_unsigned,
                  backend=listen.backend, threads=listen.threads,
                  max_bytes=listen.max_bundle_mb << 20)


class EngineSource:
    """Opens the engine the config asks for: a named bundle folder, or the store's current."""

    def __init__(self, config: Config, shipped: Path | None = None) -> None:
        self.config = config
        self.shipped = shipped or default_engine_dir()
        self.store = None if config.listen.engine else Store(config.listen.store,
                                                              store_policy(config))

    def _calibrated(self, loaded: Loaded) -> Loaded:
        """Attach the venue's calibration (``appliance calibrate``) when it was made for
        exactly this engine; one made for another engine is left off, and the log says so."""
        bundle = loaded.listener.bundle
        cal, why = CalibrationStore(self.config.listen.store).load_for(bundle)
        if why:
            log.warning("%s runs without the venue calibration: %s", bundle.label, why)
        if cal is not None:
            loaded.listener.calibration = cal
            loaded.calibration = cal.to_dict()["sha256"]
            log.info("%s is calibrated to the venue (%s)", bundle.label, cal.kind)
        return loaded

    def _open_folder(self, path: Path, origin: str) -> Loaded:
        bundle = load_bundle(path)
        engine, check = open_checked_engine(bundle, self.config.listen.backend,
                                            threads=self.config.listen.threads)
        return self._calibrated(Loaded(Listener(engine), origin, backend_label(engine),
                                       why_not_faster(check.not_faster), _sha(bundle.path)))

    def _open_store(self) -> Loaded:
        assert self.store is not None
        bundle, _signer, record = self.store.open_current()
        engine, check = self.store.open_engine(bundle, record)
        return self._calibrated(Loaded(Listener(engine), "store", backend_label(engine),
                                       why_not_faster(check.get("not_faster", [])),
                                       _sha(bundle.path)))

    def open_initial(self) -> Loaded:
        """The engine to start with; falls back to the shipped bundle rather than not play."""
        explicit = self.config.listen.engine
        if explicit is not None:
            try:
                return self._open_folder(Path(explicit), "config")
            except (BundleError, OSError) as e:
                if Path(explicit).resolve() == self.shipped.resolve():
                    raise
                log.error("engine %s unusable (%s); falling back to the shipped engine",
                          explicit, e)
                return self._open_folder(self.shipped, "shipped")
        assert self.store is not None
        try:
            seeded = self.store.seed(self.shipped)
            if seeded is not None:
                log.info("installed the shipped engine %s into the empty store %s",
                         seeded.id, self.store.root)
        except (StoreError, OSError) as e:
            log.error("could not install the shipped engine into the store %s (%s)",
                      self.store.root, e)
        try:
            return self._open_store()
        except (StoreError, BundleError, OSError) as e:
            log.error("the store's current engine cannot be used (%s); falling back to the "
                      "shipped engine", e)
            return self._open_folder(self.shipped, "shipped")

    def open_fallback(self, running: Loaded, reason: str) -> Loaded | None:
        """The engine to fall back to when ``running`` keeps failing: the same bundle's FP32
        model on ONNX Runtime, else the shipped engine; None when there is nothing left."""
        listener = running.listener
        bundle, engine = listener.bundle, listener.engine
        on_fp32 = engine.backend == "onnxruntime" and engine.precision == "fp32"
        why = f"fell back from {running.label} {running.runs_on}: {reason}"
        if not on_fp32 and "fp32" in bundle.models:
            fp32 = OnnxEngine(bundle, precision="fp32", threads=self.config.listen.threads)
            return self._calibrated(Loaded(Listener(fp32), running.origin, backend_label(fp32),
                                           why, running.manifest_sha256))
        if bundle.path.resolve() != self.shipped.resolve():
            loaded = self._open_folder(self.shipped, "shipped")
            loaded.why = why
            return loaded
        return None

    def open_for_reload(self) -> Loaded:
        """The engine a reload switches to; raises when it cannot be used (the caller keeps
        the old one)."""
        if self.config.listen.engine is not None:
            return self._open_folder(Path(self.config.listen.engine), "config")
        return self._open_store()


@dataclass
class Ticket:
    """One reload request; ``outcome`` is filled in when ``done`` is set."""

    done: threading.Event = field(default_factory=threading.Event)
    outcome: dict = field(default_factory=dict)

    def finish(self, outcome: dict) -> None:
        self.outcome = outcome
        self.done.set()


class HotSwap:
    """Reload requests → a worker opens the engine → the listen thread switches to it."""

    def __init__(self, source: EngineSource, running: Loaded, listen) -> None:
        self.source = source
        self.running = running
        self.listen = listen  # the daemon's ListenThread (swap_to)
        self.last_failure: str = ""
        self._lock = threading.Lock()
        self._ticket: Ticket | None = None
        self._falling_back = False

    def request(self) -> Ticket:
        """Start a reload, or join the one under way."""
        with self._lock:
            if self._ticket is not None and not self._ticket.done.is_set():
                return self._ticket
            ticket = self._ticket = Ticket()
        threading.Thread(target=self._work, args=(ticket,), name="reload", daemon=True).start()
        return ticket

    def _fail(self, ticket: Ticket, message: str) -> None:
        old = self.running.label
        self.last_failure = message
        log.error("reload: kept %s playing: %s", old, message)
        self.listen.heard.put({"event": "engine", "switched": False, "engine": old,
                               "error": message})
        ticket.finish({"ok": False, "switched": False, "engine": old, "error": message})

    def _work(self, ticket: Ticket) -> None:
        try:
            new = self.source.open_for_reload()
        except Exception as e:  # whatever is wrong with the new engine, the show goes on
            self._fail(ticket, str(e) or type(e).__name__)
            return
        old = self.running
        if (new.manifest_sha256 == old.manifest_sha256 and new.runs_on == old.runs_on
                and new.calibration == old.calibration):
            self.last_failure = ""
            ticket.finish({"ok": True, "switched": False, "engine": old.label,
                           "runs_on": old.runs_on, "message": f"{old.label} is already playing"})
            return
        rate, new_rate = old.listener.fe.sample_rate, new.listener.fe.sample_rate
        if rate != new_rate:
            self._fail(ticket, f"{new.label} listens at {new_rate} Hz and the input runs at "
                               f"{rate} Hz: restart the service to switch "
                               "(sudo systemctl restart appliance)")
            return

        def switched(ok: bool, message: str) -> None:
            if not ok:
                self._fail(ticket, message)
                return
            self.running = new
            self.last_failure = ""
            log.info("reload: switched from %s to %s", old.describe(), new.describe())
            ticket.finish({"ok": True, "switched": True, "engine": new.label,
                           "replaced": old.label, "runs_on": new.runs_on, "not_faster": new.why,
                           "calibrated": bool(new.calibration)})

        self.listen.swap_to(new, switched)

    def fall_back(self, reason: str) -> None:
        """The running engine keeps failing (``reason``): open the next engine down on a
        worker thread and hand it to the listen thread, which switches between two windows."""
        with self._lock:
            if self._falling_back:
                return
            self._falling_back = True
        threading.Thread(target=self._fall_back, args=(reason,), name="fallback",
                         daemon=True).start()

    def _fall_back(self, reason: str) -> None:
        old = self.running
        try:
            new = self.source.open_fallback(old, reason)
        except Exception as e:  # the fallback itself is broken: keep ignoring bad windows
            new = None
            reason = f"{reason}; the fallback could not open ({e})"
        if new is None:
            log.error("engine %s keeps failing (%s) and there is no engine left to fall back "
                      "to; its bad windows are ignored", old.label, reason)
            with self._lock:
                self._falling_back = False
            return

        def switched(ok: bool, message: str) -> None:
            if ok:
                self.running = new
                log.error("engine %s %s keeps failing (%s); fell back to %s %s", old.label,
                          old.runs_on, reason, new.label, new.runs_on)
            else:
                log.error("engine fallback to %s failed: %s", new.label, message)
            with self._lock:
                self._falling_back = False

        self.listen.swap_to(new, switched)

    def status(self) -> str:
        """The engine part of the systemd status line."""
        s = f"engine {self.running.describe()}"
        if self.last_failure:
            s += f"; reload failed, kept it: {self.last_failure}"
        return s
