"""The control socket: the one door into the running daemon (no network port).

A Unix stream socket (``/run/appliance/control.sock``, mode 0660, group ``appliance-admin``).
A client sends one JSON line, ``{"cmd": "status"}`` or ``{"cmd": "reload"}``, and reads one
JSON line back; for ``{"cmd": "watch"}`` the daemon keeps sending one line per reading until
the client hangs up. Each client is served on its own thread, so a long reload or a watching
meter never keeps ``status`` waiting. Fleets reach a box over SSH and run ``appliance
status`` / ``reload`` / ``listen`` there, which use :func:`request` and :func:`watch`.
"""

from __future__ import annotations

import contextlib
import grp
import json
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

log = logging.getLogger("appliance.service")

MAX_REQUEST = 4096
CLIENTS_MAX = 12  # served at once; more get "busy"
SEND_TIMEOUT_S = 10.0  # a client that stops reading is let go after this


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
    """Answers requests with ``handler(request) -> reply``, each client on its own thread.
    A reply that is an iterator of dicts is streamed, one line each, until the client hangs
    up or the server closes."""

    def __init__(self, path: Path, handler: Callable[[dict], dict | Iterator[dict]], *,
                 group: str = "") -> None:
        super().__init__(name="control", daemon=True)
        self.path = path
        self._handler = handler
        self._stop = threading.Event()
        self._slots = threading.BoundedSemaphore(CLIENTS_MAX)
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
            if not self._slots.acquire(blocking=False):
                with conn:
                    self._send(conn, {"ok": False, "error": f"{CLIENTS_MAX} clients are already "
                                                            "connected; try again later"})
                continue
            threading.Thread(target=self._client, args=(conn,), name="control-client",
                             daemon=True).start()

    def _client(self, conn: socket.socket) -> None:
        try:
            with conn:
                self._serve(conn)
        finally:
            self._slots.release()

    @staticmethod
    def _send(conn: socket.socket, reply: dict) -> None:
        conn.settimeout(SEND_TIMEOUT_S)
        conn.sendall((json.dumps(reply, default=str) + "\n").encode())

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(5.0)
        reply: dict | Iterator[dict] | None = None
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
            if isinstance(reply, dict):
                self._send(conn, reply)
                return
            for item in reply:  # a stream: until the client hangs up or the show stops
                if self._stop.is_set():
                    break
                self._send(conn, item)
        except (BrokenPipeError, ConnectionResetError):
            pass  # a watcher that hung up: the usual way a stream ends
        except OSError as e:
            log.warning("control socket client went away: %s", e)
        except Exception:  # a handler bug must not take the show's socket down
            log.exception("control request failed")
        finally:
            if reply is not None and not isinstance(reply, dict):
                close = getattr(reply, "close", None)
                if close is not None:
                    close()

    def close(self) -> None:
        self._stop.set()
        self._sock.close()
        with contextlib.suppress(OSError):
            self.path.unlink()


def _connect(path: Path, cmd: str, timeout: float) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(str(path))
        s.sendall((json.dumps({"cmd": cmd}) + "\n").encode())
    except (FileNotFoundError, ConnectionRefusedError) as e:
        s.close()
        raise ControlUnavailable(f"no running show answers at {path} ({e.strerror})") from e
    except PermissionError as e:
        s.close()
        raise ControlUnavailable(f"not allowed to use {path}: run with sudo or join "
                                 "group appliance-admin") from e
    except OSError as e:
        s.close()
        raise ControlUnavailable(f"cannot reach the show at {path} ({e})") from e
    return s


def watch(path: Path | str, cmd: str = "watch", *, timeout: float = 10.0) -> Iterator[dict]:
    """Send a streaming request and yield each line the daemon sends, until it stops (raises
    ControlUnavailable when the daemon cannot be reached, stops answering for ``timeout``
    seconds, or goes away)."""
    path = Path(path)
    s = _connect(path, cmd, timeout)
    buf = b""
    try:
        while True:
            try:
                chunk = s.recv(65536)
            except TimeoutError as e:
                raise ControlUnavailable(f"the show at {path} sent nothing for "
                                         f"{timeout:g} s") from e
            except OSError as e:
                raise ControlUnavailable(f"the show at {path} went away ({e})") from e
            if not chunk:
                raise ControlUnavailable(f"the show at {path} closed the connection "
                                         "(it stopped, or restarted)")
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                try:
                    item = json.loads(line.decode())
                except ValueError as e:
                    raise ControlUnavailable(f"the show at {path} gave an unreadable "
                                             "answer") from e
                yield item
    finally:
        s.close()


def request(path: Path | str, cmd: str, *, timeout: float = 10.0) -> dict:
    """Send one request to the daemon and return its reply."""
    path = Path(path)
    s = _connect(path, cmd, timeout)
    try:
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
