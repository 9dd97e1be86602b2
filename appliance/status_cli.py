"""`appliance status`: how the running show is, in one screen — or why there is none.

Asks the daemon over its control socket. When nobody answers it says so and why: the socket's
own error, what systemd says about the unit and its last journal lines (or that systemd or
journald is not running here). Board temperatures and power mode are read either way.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

STATES = {"attract": "attract loop (waiting for the pianist)", "main": "film",
          "ending": "ending", "rest": "resting after the ending"}


def state_words(state: str | None) -> str:
    return STATES.get(state or "", state or "unknown")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def clock_time(iso: str | None) -> str:
    if not iso:
        return "?"
    try:
        return datetime.fromisoformat(iso).strftime("%a %H:%M")
    except ValueError:
        return iso


def board_words(board: dict | None) -> str:
    if not board:
        return "not exposed"
    temps = board.get("temperatures_c")
    t = (", ".join(f"{k} {v:.0f} °C" for k, v in temps.items()) if isinstance(temps, dict)
         else f"temperatures {temps}")
    return f"model {board.get('model', '?')}; power mode {board.get('power_mode', '?')}; {t}"


def _grid(rows: list[tuple[str, str | Text]]) -> Table:
    table = Table.grid(padding=(0, 1))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for k, v in rows:
        table.add_row(k, v)
    return table


def describe(reply: dict) -> Group:
    """The running show's status for people (rich renderable)."""
    state = reply.get("state")
    level = reply.get("level_db")
    music = "music" if reply.get("music") else "no music"
    hearing = reply.get("hearing") or "nothing yet"
    conf = reply.get("confidence")
    inp = reply.get("input") or "?"
    input_ok = inp == "ok"
    frames = reply.get("frames") or {}
    engine = f"{reply.get('engine')} on {reply.get('runs_on')}" + (
        f" (not faster: {reply['not_faster']})" if reply.get("not_faster") else "")
    wd = reply.get("watchdog_s")
    rows: list[tuple[str, str | Text]] = [
        ("state", Text(state_words(state), style="bold green")),
        ("show", str(reply.get("show") or "?")),
        ("hearing", f"{hearing}" + (f" ({conf:.2f})" if isinstance(conf, int | float) else "")
         + f", {music}" + (f"; overlay {reply['overlay']}" if reply.get("overlay") else "")),
        ("input", Text(f"{reply.get('source', '')} — "
                       + (f"mic delivers, level {level:.0f} dBFS" if input_ok and
                          isinstance(level, int | float) else
                          "mic delivers" if input_ok else inp),
                       style="" if input_ok else "bold red")),
        ("engine", engine),
        ("frames", f"{frames.get('presented', 0)} presented, {frames.get('late', 0)} late, "
                   f"{frames.get('dropped', 0)} dropped (output {reply.get('output', '?')})"),
        ("up", f"{duration(reply.get('uptime_s'))} (since {clock_time(reply.get('started'))}); "
               + (f"watchdog armed ({wd:g} s)" if wd else "no systemd watchdog")),
        ("board", board_words(reply.get("board"))),
    ]
    if reply.get("reload_failed"):
        rows.append(("reload", Text(f"last reload failed, the engine above kept playing: "
                                    f"{reply['reload_failed']}", style="yellow")))
    if reply.get("stalled"):
        rows.append(("stalled", Text(", ".join(reply["stalled"]), style="bold red")))
    test = reply.get("selftest")
    if test:
        failed = [c["check"] for c in test.get("checks", []) if not c.get("ok")]
        rows.append(("self-test", f"{test.get('at', '?')}: "
                     + ("all passed" if not failed else f"FAILED {', '.join(failed)}")))
    shows = reply.get("shows") or []
    parts: list = [_grid(rows)]
    if shows:
        t = Table(title=None, box=None, padding=(0, 1), show_header=True,
                  header_style="bold")
        for col in ("last shows", "ending", "why", "length"):
            t.add_column(col)
        for s in shows:
            when = (clock_time(s.get("started")) if s.get("started")
                    else f"t={s.get('start_t', 0):.0f} s")
            t.add_row(when, s.get("ending") or "—", s.get("reason") or "",
                      duration(s.get("length_s")) if s.get("length_s") is not None else "…")
        parts.append(t)
    else:
        parts.append(Text("no show yet since the box started"))
    return Group(*parts)


def describe_absent(why: str, unit: dict, board: dict) -> Group:
    """Why there is no status: the socket, the unit, the journal."""
    rows: list[tuple[str, str | Text]] = [
        ("state", Text("the show is not running", style="bold red")),
        ("why", why),
        ("systemd", unit.get("state", "?")),
        ("board", board_words(board)),
    ]
    parts: list = [_grid(rows)]
    lines = unit.get("journal") or []
    if lines:
        parts.append(Text(f"last journal lines of {unit.get('unit', 'appliance')}.service:",
                          style="bold"))
        parts += [Text(line) for line in lines]
    else:
        parts.append(Text(f"journal: {unit.get('journal_note') or 'nothing'}"))
    return Group(*parts)


def cmd_status(args: argparse.Namespace) -> int:
    from appliance.engine_cli import _config
    from appliance.journal import unit_report
    from appliance.service.board import read_board
    from appliance.service.control import ControlUnavailable, request

    config = _config(args)
    sock = Path(args.control) if args.control else config.service.control_socket
    console = Console(width=None if sys.stdout.isatty() else 100, soft_wrap=False)
    try:
        if sock is None:
            raise ControlUnavailable("the config sets no control socket ([service] "
                                     "control_socket is empty)")
        reply = request(sock, "status")
    except ControlUnavailable as e:
        unit, board = unit_report().to_dict(), read_board()
        if args.json:
            print(json.dumps({"ok": False, "running": False, "error": str(e), "unit": unit,
                              "board": board}))
        else:
            console.print(describe_absent(str(e), unit, board))
        return 1
    if args.json:
        print(json.dumps({**reply, "running": True}, default=str))
    else:
        console.print(describe(reply))
    return 0


def add_command(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    c = sub.add_parser("status", parents=parents,
                       help="how the running show is (or why it is not running)")
    c.set_defaults(func=cmd_status)
