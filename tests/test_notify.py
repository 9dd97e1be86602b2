"""sd_notify over a real datagram socket that the test binds, and the watchdog's rule."""

from __future__ import annotations

import os
import socket

import pytest

from appliance.service import notify as sdn


@pytest.fixture
def notify_socket(tmp_path, monkeypatch):
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.5)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    yield sock
    sock.close()


def received(sock) -> list[str]:
    out = []
    try:
        while True:
            out.append(sock.recv(4096).decode())
            sock.settimeout(0.05)
    except TimeoutError:
        return out


def test_notify_reaches_the_socket(notify_socket):
    assert sdn.notify("READY=1")
    assert received(notify_socket) == ["READY=1"]


def test_notify_without_systemd_is_a_quiet_no_op(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sdn.notify("READY=1") is False


def test_watchdog_interval_from_environment(monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "4000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert sdn.watchdog_interval() == 4.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))  # meant for another process
    assert sdn.watchdog_interval() is None
    monkeypatch.delenv("WATCHDOG_USEC")
    monkeypatch.delenv("WATCHDOG_PID")
    assert sdn.watchdog_interval() is None


def test_watchdog_pings_only_while_every_loop_progresses(notify_socket):
    now = [100.0]
    wd = sdn.Watchdog(["capture", "listen", "render"], interval_s=4.0, clock=lambda: now[0])
    pings = []
    for _ in range(10):  # 5 s of healthy loops, ticking every 0.5 s
        now[0] += 0.5
        for loop in ("capture", "listen", "render"):
            wd.beat(loop)
        wd.tick()
        pings += received(notify_socket)
    assert pings.count("WATCHDOG=1") >= 2 and set(pings) == {"WATCHDOG=1"}
    # the listener stops beating; the others carry on
    for _ in range(16):
        now[0] += 0.5
        wd.beat("capture")
        wd.beat("render")
        wd.tick()
    assert wd.stalled() == ["listen"]
    # pings continue only until the listener has been silent for stall_s (2 s here)
    late = received(notify_socket)
    assert len(late) <= 2
    for _ in range(8):
        now[0] += 0.5
        wd.beat("capture")
        wd.beat("render")
        wd.tick()
    assert received(notify_socket) == []
    wd.beat("listen")
    now[0] += 2.5
    for loop in ("capture", "listen", "render"):
        wd.beat(loop)
    wd.tick()
    assert received(notify_socket) == ["WATCHDOG=1"]
