"""`appliance listen`: the live meter over SSH.

From the running show when there is one (it publishes a reading every hop on its control
socket), else straight from the mic or a recording, through the same listener and director
the show uses. Refreshes at the hop rate; Ctrl-C quits.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console
from rich.live import Live

from appliance.config import Config
from appliance.meter import render


def local_readings(config: Config, audio: str, show_dir: Path | None,
                   engine_dir: Path | None) -> tuple[Iterator[dict], str]:
    """Readings made here from ``audio`` (``alsa:DEVICE`` or ``file:PATH``), paced like the
    live input; and the engine's label."""
    from appliance.audio import open_source
    from appliance.listen import open_listener
    from appliance.service.live import make_reading
    from appliance.service.selftest import engine_on_disk
    from appliance.show.director import Director
    from appliance.show.showfile import load_show

    engine_path = engine_dir or engine_on_disk(config)[0]
    listener = open_listener(engine_path, backend=config.listen.backend,
                             threads=config.listen.threads)
    show, _problems = load_show(show_dir or config.show.path)
    director = Director(show) if show.playable else None
    a = config.audio
    source = open_source(audio, rate=listener.fe.sample_rate, realtime=True,
                         device_rate=a.rate, channels=a.channels,
                         period_frames=a.period_frames, sample_format=a.format)

    def readings() -> Iterator[dict]:
        try:
            while True:
                for estimate in listener.feed(source.read(listener.bundle.hop_samples)):
                    if director is not None:
                        director.hear(estimate)
                        director.advance(listener.time)
                        director.drain_events()
                    yield make_reading(listener.time, estimate, director, source.status)
                if source.ended:
                    return
        finally:
            source.close()

    return readings(), listener.bundle.label


def cmd_listen(args: argparse.Namespace) -> int:
    from appliance.engine_cli import _config
    from appliance.service.control import ControlUnavailable, watch

    config = _config(args)
    sock = Path(args.control) if args.control else config.service.control_socket
    readings: Iterator[dict] | None = None
    why = ""
    if args.audio is None:
        try:
            if sock is None:
                raise ControlUnavailable("the config sets no control socket")
            readings = watch(sock)
            first = next(readings)
            if not first.get("ok"):
                raise ControlUnavailable(first.get("error", "the show refused"))
            header = (f"the running show ({first.get('engine')} on {first.get('runs_on')}; "
                      f"{first.get('show')}) at {sock}")
        except ControlUnavailable as e:
            readings, why = None, str(e)
    if readings is None:
        audio = args.audio or config.audio.source
        readings, label = local_readings(config, audio, Path(args.show) if args.show else None,
                                         Path(args.engine) if args.engine else None)
        header = (f"{audio} with {label}" if args.audio else
                  f"the show is not running ({why}); {audio} directly with {label}")
    console = Console(width=min(80, Console().width) if sys.stdout.isatty() else 80,
                      height=24)
    shown = 0
    try:
        if args.json:
            for r in readings:
                print(json.dumps(r), flush=True)
                shown += not r.get("idle")
                if args.count and shown >= args.count:
                    break
            return 0
        last = None
        with Live(render(None, header, "waiting for the first reading…"), console=console,
                  auto_refresh=False, vertical_overflow="crop") as live:
            for r in readings:
                note = ""
                if r.get("idle"):
                    note = "no reading for a second: is the show listening?"
                else:
                    last, shown = r, shown + 1
                live.update(render(last, header, note), refresh=True)
                if args.count and shown >= args.count:
                    break
    except ControlUnavailable as e:
        print(f"appliance: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # the usual way out
        return 0
    return 0


def add_command(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    c = sub.add_parser("listen", parents=parents,
                       help="live meter: level, the five styles, what the show would do now")
    c.add_argument("--audio", help="listen to this instead of the running show: alsa:DEVICE or "
                                   "file:PATH (default: the show, else the config's source)")
    c.add_argument("--show", help="show folder for 'what the show would do' (default: the "
                                  "config's)")
    c.add_argument("--engine", help="engine bundle folder (default: the one the box would run)")
    c.add_argument("--count", type=int, default=0, help="stop after this many readings")
    c.set_defaults(func=cmd_listen)
