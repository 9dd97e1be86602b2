"""The control socket: the one door into the running daemon (no network port).

A Unix stream socket (``/run/appliance/control.sock``, mode 0660, group ``appliance-admin``).
A client sends one JSON line, ``{"cmd": "status"}`` or ``{"cmd": "reload"}``, and reads one
JSON line back. Fleets reach a box over SSH and run ``appliance status`` / ``appliance
reload`` there, which use :func:`request`.
"""

from __future__ import annotations

import contextlib
import grp
import json
import logging
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("appliance.service")

MAX_REQUEST = 4096


class ControlUnavailable(Exception):
    """No daemon answers on the socket; the message says why in plain words."""


def _stale(path: Path) -> bool:
    """True when a socket file is there but nobody listens (a daemon that died)."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        return True
    except OSError:
        return False
    finally:
        probe.close()
    return False


class ControlServer(threading.Thread):
    """Answers requests with ``handler(request) -> reply`` on its own thread, one at a time."""

    def __init__(self, path: Path, handler: Callable[[dict], dict], *, group: str = "") -> None:
        super().__init__(name="control", daemon=True)
        self.path = path
        self._handler = handler
        self._stop = threading.Event()
        if not path.parent.is_dir():
            raise ControlUnavailable(f"{path.parent} does not exist (systemd's "
                                     "RuntimeDirectory=appliance makes it)")
        if path.exists():
            if not _stale(path):
                raise ControlUnavailable(f"another daemon already answers on {path}")
            path.unlink()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o117)  # born 0660: never a moment when others may connect
        try:
            self._sock.bind(str(path))
        finally:
            os.umask(old)
        os.chmod(path, 0o660)
        if group:
            try:
                os.chown(path, -1, grp.getgrnam(group).gr_gid)
            except (KeyError, PermissionError) as e:
                log.warning("control socket %s stays in the daemon's own group: cannot give it "
                            "to group %s (%s)", path, group,
                            "no such group" if isinstance(e, KeyError) else e.strerror)
        self._sock.listen(4)
        self._sock.settimeout(0.2)

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            with conn:
                self._serve(conn)

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(5.0)
        try:
            data = b""
            while not data.endswith(b"\n") and len(data) < MAX_REQUEST:
                chunk = conn.recv(MAX_REQUEST)
                if not chunk:
                    break
                data += chunk
            try:
                req = json.loads(data.decode() or "null")
                if not isinstance(req, dict):
                    raise ValueError("expected a JSON object")
                reply = self._handler(req)
            except ValueError as e:
                reply = {"ok": False, "error": f"bad request: {e}"}
            conn.settimeout(None)
            conn.sendall((json.dumps(reply, default=str) + "\n").encode())
        except OSError as e:
            log.warning("control socket client went away: %s", e)
        except Exception:  # a handler bug must not take the show's socket down
            log.exception("control request failed")

    def close(self) -> None:
        self._stop.set()
        self._sock.close()
        with contextlib.suppress(OSError):
            self.path.unlink()


def request(path: Path | str, cmd: str, *, timeout: float = 10.0) -> dict:
    """Send one request to the daemon and return its reply."""
    path = Path(path)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        try:
            s.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError) as e:
            raise ControlUnavailable(f"no running show answers at {path} ({e.strerror})") from e
        except PermissionError as e:
            raise ControlUnavailable(f"not allowed to use {path}: run with sudo or join "
                                     "group appliance-admin") from e
        s.sendall((json.dumps({"cmd": cmd}) + "\n").encode())
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except TimeoutError as e:
        raise ControlUnavailable(f"the show at {path} did not answer within {timeout:g} s") from e
    finally:
        s.close()
    try:
        return json.loads(data.decode())
    except ValueError as e:
        raise ControlUnavailable(f"the show at {path} gave an unreadable answer") from e
