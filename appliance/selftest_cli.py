"""`appliance selftest`: one line per check, PASS or FAIL with a fix; exit 1 when any fails.

With the show running, the checks look at it through its control socket (the mic through the
show's own readings: the show holds the capture device). Without it, they look at what the
config names and listen to the mic directly.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from rich.console import Console
from rich.text import Text

from appliance.config import Config
from appliance.service.selftest import Check, Facts, engine_on_disk, levels_from, run_checks


def _levels_direct(config: Config, seconds: float) -> tuple[str, Iterator[tuple[float, str]]]:
    """Open the config's mic here: its status now, and its level every half second."""
    import time

    from appliance.audio import open_source
    from appliance.audio.level import rms_dbfs

    a = config.audio
    rate = 16000
    try:
        source = open_source(a.source, rate=rate, realtime=True, device_rate=a.rate,
                             channels=a.channels, period_frames=a.period_frames,
                             sample_format=a.format)
    except (OSError, ValueError) as e:
        return f"no input: {e}", iter(())

    def levels() -> Iterator[tuple[float, str]]:
        end = time.monotonic() + seconds
        try:
            while time.monotonic() < end:
                chunk = source.read(rate // 2)
                yield rms_dbfs(chunk), source.status
                if source.ended:
                    return
        finally:
            source.close()

    if source.status != "ok":
        source.close()
    return source.status, levels()


def gather(config: Config, sock: Path | None, listen_s: float
           ) -> tuple[Facts, Iterable[tuple[float | None, str]] | None]:
    """Facts from the running show, or from the config when it is not running; and where
    the mic's levels will come from."""
    from appliance.service.control import ControlUnavailable, request, watch

    disk = [config.service.events_dir, config.listen.store]
    try:
        if sock is None:
            raise ControlUnavailable("the config sets no control socket")
        reply = request(sock, "status")
    except ControlUnavailable as e:
        path, origin = engine_on_disk(config)
        status, levels = _levels_direct(config, listen_s)
        return Facts(config, config.show.path, path, origin, status, None, None, str(e),
                     disk), levels
    stream = watch(sock)

    def readings() -> Iterator[dict | None]:
        try:
            for r in stream:
                if r.get("idle"):
                    yield None
                elif "probs" in r:
                    yield r
        except ControlUnavailable:
            return

    facts = Facts(config, Path(reply.get("show_dir") or config.show.path),
                  Path(reply.get("path") or engine_on_disk(config)[0]),
                  reply.get("origin", "store"), reply.get("input", "ok"), reply.get("output"),
                  reply, "", disk)
    return facts, levels_from(readings(), listen_s)


def cmd_selftest(args: argparse.Namespace) -> int:
    from appliance.engine_cli import _config

    config = _config(args)
    sock = Path(args.control) if args.control else config.service.control_socket
    facts, levels = gather(config, sock, args.listen_s)
    console = Console(stderr=False, highlight=False)
    if not args.json:
        where = ("the running show" if facts.daemon is not None
                 else f"the config (the show is not running: {facts.daemon_why})")
        console.print(f"self-test of {where}")
        if facts.input_status == "ok":
            console.print(Text(f"Play a few notes on the piano now (listening up to "
                               f"{args.listen_s:g} s)…", style="bold"))

    def said(check: Check) -> None:
        if args.json:
            return
        line = Text("PASS  " if check.ok else "FAIL  ", style="bold green" if check.ok
                    else "bold red")
        line.append(f"{check.name:<9}{check.detail}")
        if not check.ok and check.fix:
            line.append(f"\n      fix: {check.fix}", style="yellow")
        console.print(line)

    checks = run_checks(facts, lambda: levels or iter(()), listen_s=args.listen_s,
                        on_check=said)
    passed = all(c.ok for c in checks)
    if args.json:
        print(json.dumps({"passed": passed, "running": facts.daemon is not None,
                          "checks": [c.to_dict() for c in checks]}))
    else:
        failed = [c.name for c in checks if not c.ok]
        console.print("all checks passed" if passed else
                      f"{len(failed)} of {len(checks)} checks failed: {', '.join(failed)}")
    sys.stdout.flush()
    return 0 if passed else 1


def add_command(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    c = sub.add_parser("selftest", parents=parents,
                       help="check mic, display, engine, show media, disk, clock, watchdog")
    c.add_argument("--listen-s", type=float, default=10.0,
                   help="how long to listen for the piano (default 10 s)")
    c.set_defaults(func=cmd_selftest)
