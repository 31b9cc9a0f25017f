"""The control socket's listener: one accept thread, one short thread per
connection (requests are rare and tiny; threads keep the master loop free of
control-plane I/O). Each connection carries one request and one response.

The socket file is created with mode 0600: only podsup's user may scale or
drain the pool. A stale file left by a dead podsup is replaced.
"""
from __future__ import annotations

import logging
import os
import socket
import stat
import threading

from podsup.ctl import framing
from podsup.ctl.handlers import Handlers

log = logging.getLogger("podsup.ctl")

#: A client that does not finish its request in this time is dropped.
CONNECTION_TIMEOUT = 10.0


def _remove_stale(path: str) -> None:
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise OSError(f"{path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        os.unlink(path)  # nobody listens: a leftover of a dead podsup
    else:
        raise OSError(f"another podsup is listening on {path}")
    finally:
        probe.close()


class ControlServer:
    def __init__(self, path: str, handlers: Handlers):
        self.path = path
        self.handlers = handlers
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()

    def start(self) -> None:
        directory = os.path.dirname(self.path) or "."
        os.makedirs(directory, mode=0o700, exist_ok=True)
        _remove_stale(self.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)  # the file is born 0600: no window where others may connect
        try:
            sock.bind(self.path)
        finally:
            os.umask(old_umask)
        os.chmod(self.path, 0o600)
        sock.listen(16)
        self._sock = sock
        self._thread = threading.Thread(target=self._accept_loop, name="podsup-control", daemon=True)
        self._thread.start()

    def _accept_loop(self) -> None:
        assert self._sock is not None
        while not self._closed.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve, args=(conn,), name="podsup-control-conn",
                             daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(CONNECTION_TIMEOUT)
            try:
                request = framing.recv_message(conn)
            except (framing.FramingError, OSError) as exc:
                log.debug("control: bad request: %s", exc)
                try:
                    framing.send_message(conn, {"ok": False, "error": f"bad request: {exc}"})
                except OSError:
                    pass
                return
            response = self.handlers.handle(request)
            try:
                framing.send_message(conn, response)
            except OSError as exc:
                log.debug("control: client went away: %s", exc)

    def close(self) -> None:
        self._closed.set()
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._sock.close()
            self._sock = None
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        if self._thread is not None:
            self._thread.join(timeout=5)


from podsup.extensions import Extension  # noqa: E402


class ControlExtension(Extension):
    """The control socket for the pool's lifetime. It listens from attach on
    (the arbiter exists then) and is removed when podsup exits."""

    def __init__(self, path: str, on_drain=None, drain_budget: float = 60.0):
        self.path = path
        self.on_drain = on_drain
        self.drain_budget = drain_budget
        self.server: ControlServer | None = None
        _remove_stale(path)  # refuse at start if another podsup listens here

    def attach(self, arbiter) -> None:
        handlers = Handlers(arbiter, on_drain=self.on_drain, drain_budget=self.drain_budget)
        self.server = ControlServer(self.path, handlers)
        self.server.start()

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
