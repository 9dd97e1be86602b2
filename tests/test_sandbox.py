"""The unit's sandbox: exposure at most 1.5 by systemd's own measure, `systemd-analyze verify`
clean, and a running daemon that holds no network socket at all (read from /proc/net).

systemd-analyze comes with the `systemd` package (`./install.sh --dev` installs it); where it
is absent the two unit checks skip, saying so.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_daemon import Daemon, box  # noqa: F401  (the fixture is used by name)

REPO = Path(__file__).resolve().parents[1]
UNIT = REPO / "firmware_config" / "systemd" / "appliance.service"
EXPOSURE_MAX = 1.5

needs_analyze = pytest.mark.skipif(not shutil.which("systemd-analyze"),
                                   reason="systemd-analyze not installed (apt-get install systemd)")


def _unit_here(tmp_path: Path) -> Path:
    """The unit with ExecStart pointed at this checkout's command (verify checks it exists)."""
    exe = Path(sys.executable).with_name("appliance")
    unit = tmp_path / "appliance.service"
    unit.write_text(UNIT.read_text().replace("/opt/appliance/venv/bin/appliance", str(exe)))
    return unit


def exposure(unit: Path) -> float:
    r = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(unit)],
                       capture_output=True, text=True)
    m = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", r.stdout)
    assert m, r.stdout[-1000:] + r.stderr
    return float(m.group(1))


@needs_analyze
def test_exposure_is_at_most_one_and_a_half(tmp_path: Path) -> None:
    score = exposure(_unit_here(tmp_path))
    assert score <= EXPOSURE_MAX, f"exposure {score} > {EXPOSURE_MAX}"
    text = UNIT.read_text()
    for must in ("PrivateNetwork=yes", "IPAddressDeny=any", "DevicePolicy=closed",
                 "DeviceAllow=char-alsa rw", "DeviceAllow=char-drm rw", "DeviceAllow=/dev/nvmap"):
        assert must in text


@needs_analyze
def test_unit_verifies_clean(tmp_path: Path) -> None:
    unit = _unit_here(tmp_path)
    r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    assert r.returncode == 0 and "appliance.service" not in r.stderr, r.stderr


def _socket_inodes(pid: int) -> set[int]:
    out = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            out.add(int(target[8:-1]))
    return out


def _net_inodes() -> dict[int, str]:
    """Inode -> table for every TCP/UDP/raw socket on the machine (IPv4 and IPv6)."""
    out = {}
    for table in ("tcp", "tcp6", "udp", "udp6", "raw", "raw6", "udplite", "udplite6"):
        try:
            lines = Path(f"/proc/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            out[int(fields[9])] = table
    return out


def test_the_running_daemon_holds_no_network_socket(box, tmp_path):  # noqa: F811
    d = Daemon(box / "appliance.toml", tmp_path)
    try:
        d.wait_for("READY=1", timeout=60)
        d.collect(1.0)
        mine = _socket_inodes(d.proc.pid)
        assert mine, "the daemon holds no socket at all; the check would prove nothing"
        inet = {i: t for i, t in _net_inodes().items() if i in mine}
        assert not inet, f"the daemon holds network sockets: {inet}"
    finally:
        d.close()
