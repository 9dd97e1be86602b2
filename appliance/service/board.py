"""What the board says about itself: temperatures, power mode, model — where it exposes them.

On a Jetson: ``/sys/class/thermal/thermal_zone*/{type,temp}`` (millidegrees C; zones such as
``cpu-thermal``, ``gpu-thermal``, ``tj-thermal``), the power mode nvpmodel last set
(``/var/lib/nvpmodel/status``: ``pmode:0000 …``, named in ``/etc/nvpmodel.conf`` by
``< POWER_MODEL ID=0 NAME=MAXN >``) and ``/proc/device-tree/model``. Elsewhere each one
reads as "not exposed", never as an error. Only reads files: no nvpmodel or tegrastats run.
"""

from __future__ import annotations

import re
from pathlib import Path

NOT_EXPOSED = "not exposed"
_MODEL_LINE = re.compile(r"<\s*POWER_MODEL\s+ID=(\d+)\s+NAME=(\S+?)\s*>")
_PMODE = re.compile(r"pmode:(\d+)")
# a thermal zone reporting below this is a sensor that is off (Jetsons report -256 °C)
_COLDEST_REAL_C = -60.0


def temperatures(root: Path = Path("/")) -> dict[str, float]:
    """Each thermal zone's temperature in °C, by zone type; empty when none are exposed."""
    out: dict[str, float] = {}
    base = root / "sys/class/thermal"
    try:
        zones = sorted(base.glob("thermal_zone*"), key=lambda p: int(p.name[12:] or 0))
    except (OSError, ValueError):
        return out
    for zone in zones:
        try:
            kind = (zone / "type").read_text().strip() or zone.name
            milli = int((zone / "temp").read_text().strip())
        except (OSError, ValueError):
            continue  # some zones refuse reads while their sensor sleeps
        celsius = milli / 1000.0
        if celsius <= _COLDEST_REAL_C:
            continue
        name, n = kind, 2
        while name in out:
            name, n = f"{kind}#{n}", n + 1
        out[name] = round(celsius, 1)
    return out


def power_mode(root: Path = Path("/")) -> str:
    """``"MAXN (mode 0)"``, from nvpmodel's own files; NOT_EXPOSED where there is no nvpmodel."""
    try:
        status = (root / "var/lib/nvpmodel/status").read_text()
    except OSError:
        return NOT_EXPOSED
    m = _PMODE.search(status)
    if m is None:
        return NOT_EXPOSED
    mode = int(m.group(1))
    for conf in ("etc/nvpmodel.conf", "odm/etc/nvpmodel.conf", "vendor/etc/nvpmodel.conf"):
        try:
            text = (root / conf).read_text(errors="replace")
        except OSError:
            continue
        for ident, name in _MODEL_LINE.findall(text):
            if int(ident) == mode:
                return f"{name} (mode {mode})"
        break
    return f"mode {mode}"


def model(root: Path = Path("/")) -> str:
    try:
        return (root / "proc/device-tree/model").read_text().strip("\x00\n ") or NOT_EXPOSED
    except OSError:
        return NOT_EXPOSED


def read_board(root: Path = Path("/")) -> dict:
    """Everything above in one dict (what `appliance status` shows)."""
    temps = temperatures(root)
    return {"model": model(root), "power_mode": power_mode(root),
            "temperatures_c": temps or NOT_EXPOSED}
