"""The self-test: seven checks, each PASS or FAIL with a fix in plain words.

mic (present, and hearing the piano), display (a screen connected, and the show drawing on
it), engine (the engine the show runs, verified on this box's backend), show (every film
decodes), disk (room for show logs and engines), clock (not before this software was
installed), watchdog (systemd watches the show). `appliance selftest` runs them over SSH;
on the box a key on a USB keyboard runs them and shows the result full-screen. Both gather
the same :class:`Facts` and call :func:`run_checks`; nothing here changes anything.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from appliance.config import Config
from appliance.player.output import connector_status

MIC_SIGNAL_DB = -45.0  # RMS over a hop: a piano a few metres from a stage mic is far above
MIN_FREE_BYTES = 512 << 20
DRM = Path("/sys/class/drm")
NAMES = ("mic", "display", "engine", "show", "disk", "clock", "watchdog")


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        return (f"{'PASS' if self.ok else 'FAIL'}  {self.name:<8} {self.detail}"
                + ("" if self.ok or not self.fix else f" — fix: {self.fix}"))

    def to_dict(self) -> dict:
        return {"check": self.name, "ok": self.ok, "detail": self.detail, "fix": self.fix}


@dataclass
class Facts:
    """What the checks look at, from the running show (over its socket, or inside it) or,
    when it is not running, from the config."""

    config: Config
    show_dir: Path
    engine_path: Path
    engine_origin: str  # "store", "config" or "shipped"
    input_status: str  # "ok" or "no input: …"
    output: str | None = None  # where the show draws ("kms", "offscreen", …); None: not running
    daemon: dict | None = None  # the show's status; None when it is not running
    daemon_why: str = ""  # why it could not be reached
    disk_paths: list[Path] = field(default_factory=list)


# --- each check --------------------------------------------------------------------------

def check_mic(input_status: str, levels: Iterable[tuple[float | None, str]], *,
              listen_s: float, threshold_db: float = MIC_SIGNAL_DB) -> Check:
    """``levels``: (RMS dBFS of a hop or None, input status) while the pianist plays; it is
    read until one hop is loud enough or it ends."""
    fix_device = ("check the mic's cable and power; `arecord -l` must list its sound card, and "
                  "the config's [audio] source must name it (docs/technicians.md, 'The mic')")
    if input_status != "ok":
        return Check("mic", False, input_status, fix_device)
    loudest: float | None = None
    for level, status in levels:
        if status != "ok":
            return Check("mic", False, f"the mic stopped while listening: {status}", fix_device)
        if level is None:
            continue
        loudest = level if loudest is None else max(loudest, level)
        if loudest >= threshold_db:
            return Check("mic", True, f"present and hearing signal (loudest {loudest:.0f} dBFS)")
    if loudest is None:
        return Check("mic", False, f"no sound reached the show in {listen_s:g} s",
                     "see whether the show is listening: appliance status")
    return Check("mic", False,
                 f"present but hearing only silence (loudest {loudest:.0f} dBFS in "
                 f"{listen_s:g} s; playing reads above {threshold_db:.0f} dBFS)",
                 "play a few notes close to the mic; check the mic is switched on, its cable, "
                 "phantom power (48 V) and the input gain on the audio interface")


def check_display(output: str | None, drm: Path = DRM) -> Check:
    connectors = connector_status(drm)
    if not connectors:
        return Check("display", False,
                     f"no display connector found ({drm} lists none): nothing can reach a screen",
                     "this machine has no display output the kernel knows; on the box, check "
                     "that the display driver is loaded (ls /sys/class/drm)")
    connected = [n for n, s in connectors.items() if s == "connected"]
    if not connected:
        listed = ", ".join(f"{n} {s}" for n, s in connectors.items())
        return Check("display", False, f"no screen connected ({listed})",
                     "plug the screen's HDMI/DisplayPort cable into the box, switch the screen "
                     "on, then sudo systemctl restart appliance")
    if output is None:
        return Check("display", True, f"screen connected on {', '.join(connected)} (the show "
                                      "is not running, so what it draws on is not known)")
    if output not in ("kms", "window"):
        return Check("display", False,
                     f"a screen is connected on {', '.join(connected)} but the show draws "
                     f"{output}: it could not open the screen when it started",
                     "sudo systemctl restart appliance; `journalctl -u appliance | grep output:` "
                     "says why it could not")
    return Check("display", True, f"screen connected on {', '.join(connected)}; the show "
                                  f"draws on it ({output})")


def check_engine(facts: Facts, *, verify: Callable[..., tuple] | None = None) -> Check:
    """The engine the show runs: files and hashes, signature (store engines), compatibility,
    and its own test vectors on this box's backend. Reads only; writes no record."""
    from appliance.listen.engine import why_not_faster
    from appliance.service.hotswap import store_policy
    from appliance.store.checks import (
        StepError,
        check_compatible,
        check_files,
        check_on_device,
        check_signature,
    )

    path, origin = facts.engine_path, facts.engine_origin
    listen = facts.config.listen
    fixes = {
        "files": "the engine's files on the box are damaged or were changed: "
                 "sudo appliance engine rollback, then install it again",
        "signature": "install a bundle signed by a key in /etc/appliance/trusted_keys "
                     "(docs/technicians.md, 'What each refusal means')",
        "compatibility": "this engine was not made for this software: sudo appliance engine "
                         "rollback",
        "test vectors": "this box computes different answers than the engine's builder: "
                        "sudo appliance engine rollback, and report the line to them",
    }
    if origin != "store":
        fixes["files"] = f"copy the engine folder {path} again (or empty [listen] engine)"
    try:
        bundle = check_files(path, installed=True)
        if origin == "store":
            policy = store_policy(facts.config)
            check_signature(path, policy.keys(), allow_unsigned=policy.allow_unsigned,
                            key_dirs=policy.trusted_keys)
        check_compatible(bundle)
        _engine, dc = (verify or check_on_device)(bundle, listen.backend, listen.threads)
    except StepError as e:
        return Check("engine", False, f"{path.name} failed at '{e.step}': {e}",
                     fixes.get(e.step, fixes["files"]))
    why = why_not_faster(dc.not_faster)
    return Check("engine", True, f"{bundle.label} verified: hashes, "
                 + ("signature, " if origin == "store" else "")
                 + f"test vectors on {dc.label}" + (f" ({why})" if why else ""))


def check_show(show_dir: Path) -> Check:
    from appliance.show.showfile import load_show

    show, problems = load_show(show_dir)
    if not problems:
        n = 1 + bool(show.attract) + len(show.overlays) + len(show.endings)
        return Check("show", True, f"'{show.title}': all {n} films decode")
    first = str(problems[0]) + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
    fix = (f"re-encode or replace the film (docs/artists.md, 'Media'), then run "
           f"appliance check-show {show_dir}")
    if not show.playable:
        first = "the show cannot play, the demo show plays instead: " + first
    return Check("show", False, first, fix)


def _existing(path: Path) -> Path:
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_disk(paths: Iterable[Path], min_free: int = MIN_FREE_BYTES) -> Check:
    worst: tuple[int, Path] | None = None
    for p in paths:
        where = _existing(p)
        free = shutil.disk_usage(where).free
        if worst is None or free < worst[0]:
            worst = (free, p)
    if worst is None:
        return Check("disk", True, "nothing to store")
    free, p = worst
    words = f"{free / 2**30:.1f} GB free where {p} is kept"
    if free < min_free:
        return Check("disk", False, f"only {words} (needs {min_free / 2**20:.0f} MB)",
                     "delete old show logs (sudo find /var/lib/appliance/events -mtime +60 "
                     "-delete) and engines no longer needed (appliance engine list, then "
                     "sudo appliance engine remove ID)")
    return Check("disk", True, words)


def software_time() -> datetime:
    """When this software was installed or last changed: the newest of its own files."""
    here = Path(__file__).resolve().parents[1]
    newest = max((p.stat().st_mtime for p in here.rglob("*.py")), default=0.0)
    return datetime.fromtimestamp(newest).astimezone()


def network_time() -> str:
    if shutil.which("timedatectl") is None or not Path("/run/systemd/system").is_dir():
        return "network time: unknown here (no systemd)"
    try:
        r = subprocess.run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
                           capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return "network time: unknown"
    return {"yes": "network time synchronized",
            "no": "network time not synchronized"}.get(r.stdout.strip(), "network time: unknown")


def check_clock(now: datetime | None = None, reference: datetime | None = None) -> Check:
    now = now or datetime.now().astimezone()
    reference = reference or software_time()
    shown = f"{now:%Y-%m-%d %H:%M}"
    if now < reference - timedelta(days=1):
        return Check("clock", False,
                     f"the clock says {shown}, before this software was installed "
                     f"({reference:%Y-%m-%d}): the box lost the time",
                     "give it network time, or set it: sudo timedatectl set-time "
                     "'YYYY-MM-DD HH:MM' (a Jetson without a clock battery forgets at power-off)")
    return Check("clock", True, f"{shown}; {network_time()}")


def check_watchdog(daemon: dict | None, why: str = "") -> Check:
    if daemon is None:
        return Check("watchdog", False, f"the show is not running ({why}), so nothing watches it",
                     "sudo systemctl start appliance; `journalctl -u appliance -n 50` says why "
                     "it stopped")
    interval = daemon.get("watchdog_s")
    stalled = daemon.get("stalled") or []
    if interval is None:
        return Check("watchdog", False,
                     "the show runs without systemd's watchdog: it was started by hand, or its "
                     "unit has no WatchdogSec=",
                     "run it as the service: sudo systemctl restart appliance (the unit sets "
                     "WatchdogSec=15)")
    if stalled:
        return Check("watchdog", False,
                     f"armed ({interval:g} s), but loop(s) {', '.join(stalled)} stalled: the ping "
                     "is withheld and systemd will restart the show",
                     "if this repeats, send `journalctl -u appliance -n 200` to the developers")
    return Check("watchdog", True, f"armed: systemd restarts the show if it stops making "
                                   f"progress for {interval:g} s")


# --- all of them -----------------------------------------------------------------------

def run_checks(facts: Facts, levels: Callable[[], Iterable[tuple[float | None, str]]], *,
               listen_s: float, drm: Path = DRM, min_free: int = MIN_FREE_BYTES,
               on_check: Callable[[Check], None] | None = None) -> list[Check]:
    """Every check in order; ``levels()`` is only called (to listen) when the mic is there."""
    def mic() -> Check:
        if facts.input_status != "ok":
            return check_mic(facts.input_status, (), listen_s=listen_s)
        return check_mic("ok", levels(), listen_s=listen_s)

    steps: list[Callable[[], Check]] = [
        mic,
        lambda: check_display(facts.output, drm),
        lambda: check_engine(facts),
        lambda: check_show(facts.show_dir),
        lambda: check_disk(facts.disk_paths or [facts.config.service.events_dir,
                                                facts.config.listen.store], min_free),
        lambda: check_clock(),
        lambda: check_watchdog(facts.daemon, facts.daemon_why),
    ]
    out = []
    for step, name in zip(steps, NAMES, strict=True):
        try:
            result = step()
        except Exception as e:  # a check that cannot run is a failed check, said plainly
            result = Check(name, False, f"the check could not run: {e}",
                           "send this line to the developers")
        out.append(result)
        if on_check is not None:
            on_check(result)
    return out


def engine_on_disk(config: Config) -> tuple[Path, str]:
    """The engine a show started now would run: the config's bundle, the store's current,
    or the shipped one."""
    from appliance.config import default_engine_dir

    if config.listen.engine is not None:
        return Path(config.listen.engine), "config"
    current = Path(config.listen.store) / "current"
    if current.is_symlink() or current.is_dir():
        return Path(os.path.realpath(current)), "store"
    return default_engine_dir(), "shipped"


def levels_from(readings: Iterable[dict | None], seconds: float,
                clock: Callable[[], float] | None = None) -> Iterable[tuple[float | None, str]]:
    """(level, input status) from live readings (``None``: a quiet moment) for ``seconds``."""
    import time

    clock = clock or time.monotonic
    end = clock() + seconds
    status = "ok"
    for r in readings:
        if clock() > end:
            return
        if r is None or "level_db" not in r:
            yield None, status
            continue
        status = r.get("input", "ok")
        yield r.get("level_db"), status
