"""The daemon's control socket: a real Unix socket, 0660, in the configured group, one JSON
line each way, and never two daemons on one socket."""

from __future__ import annotations

import grp
import os
import socket
import stat

import pytest

from appliance.service.control import ControlServer, ControlUnavailable, request


def test_socket_mode_group_requests_and_stale_files(tmp_path):
    path = tmp_path / "control.sock"
    group = grp.getgrgid(os.getgid()).gr_name
    # a socket file left by a daemon that died is replaced
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))
    dead.close()
    server = ControlServer(path, lambda req: {"ok": True, "echo": req["cmd"]}, group=group)
    server.start()
    try:
        st = path.stat()
        assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o660
        assert st.st_gid == grp.getgrnam(group).gr_gid
        assert request(path, "status") == {"ok": True, "echo": "status"}
        with pytest.raises(ControlUnavailable, match="another daemon already answers"):
            ControlServer(path, lambda req: {})
        raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # garbage gets plain words
        raw.connect(str(path))
        raw.sendall(b"not json\n")
        assert b"bad request" in raw.recv(4096)
        raw.close()
    finally:
        server.close()
    assert not path.exists()
    with pytest.raises(ControlUnavailable, match="no running show answers"):
        request(path, "status")
    with pytest.raises(ControlUnavailable, match="does not exist"):
        ControlServer(tmp_path / "missing" / "control.sock", lambda req: {})
