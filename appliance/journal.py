"""Why the show is not answering: what systemd and the journal say about the unit.

Used when a command cannot reach the daemon. Where systemd or journald is not running (a
container, a developer's desk), it says that instead of pretending there is nothing to say.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

UNIT = "appliance"
JOURNAL_SOCKET = Path("/run/systemd/journal/socket")
SYSTEMD_RUNNING = Path("/run/systemd/system")  # exists only when systemd is PID 1


@dataclass
class UnitReport:
    """What could be learnt about the unit: its state, and its last journal lines."""

    state: str  # "active (running)", "failed (exit-code)", or why it cannot be told
    lines: list[str] = field(default_factory=list)
    journal: str = ""  # why there are no lines, when there are none

    def to_dict(self) -> dict:
        return {"unit": UNIT, "state": self.state, "journal": self.lines,
                "journal_note": self.journal}


def _run(args: list[str]) -> str | None:
    try:
        r = subprocess.run(args, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout if r.returncode == 0 else None


def unit_state(unit: str = UNIT) -> str:
    if not SYSTEMD_RUNNING.is_dir() or shutil.which("systemctl") is None:
        return "systemd is not running on this machine, so no unit state to show"
    out = _run(["systemctl", "show", unit, "-p", "LoadState,ActiveState,SubState,Result,"
                "ExecMainStatus", "--no-pager"])
    if out is None:
        return f"systemctl could not tell the state of {unit}.service"
    props = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    if props.get("LoadState") == "not-found":
        return f"{unit}.service is not installed (sudo ./install.sh installs it)"
    state = f"{props.get('ActiveState', '?')} ({props.get('SubState', '?')})"
    if props.get("Result", "success") != "success":
        state += f", last result {props['Result']}, exit status {props.get('ExecMainStatus')}"
    return state


def last_lines(n: int = 10, unit: str = UNIT) -> tuple[list[str], str]:
    """The unit's last ``n`` journal lines, or ``([], why there are none)``."""
    if shutil.which("journalctl") is None:
        return [], "journalctl is not installed here"
    if not JOURNAL_SOCKET.exists():
        return [], "journald is not running on this machine, so there are no journal lines"
    out = _run(["journalctl", "-u", unit, "-n", str(n), "--no-pager", "-o", "short-iso",
                "-q"])
    if out is None:
        return [], (f"journalctl -u {unit} failed (not allowed? add yourself to group "
                    "systemd-journal or adm)")
    lines = [x for x in out.splitlines() if x.strip()]
    return lines, "" if lines else f"the journal holds no lines for {unit}.service"


def unit_report(n: int = 10) -> UnitReport:
    lines, why = last_lines(n)
    return UnitReport(unit_state(), lines, why)
