"""The control socket's listener: one accept thread, one short thread per
connection (requests are rare and tiny; threads keep the master loop free of
control-plane I/O). Each connection carries one request and one response.

The socket file is created with mode 0600: only podsup's user may scale or
drain the pool. A stale file left by a dead podsup is replaced.

Bounds, so that clients (stuck, idle or too many) cannot exhaust the master:
at most :data:`MAX_CONNECTIONS` connections are served at once (one more is
answered "busy" and closed at once), a request must arrive completely within
:data:`CONNECTION_TIMEOUT` (a deadline for the whole read, not per ``recv``),
requests are at most :data:`MAX_REQUEST` bytes, and no failure (``accept``
errors such as EMFILE, a thread that cannot start) ends the accept loop: it is
logged once per streak, and a repeating failure is retried with a backoff.
"""
from __future__ import annotations

import os
import socket
import stat
import threading
import time
from typing import Any

from podsup.core.eventlog import EventLog, StdLog
from podsup.core.plugin import Extension, LoopHandle
from podsup.host import framing
from podsup.plugins.control.handlers import Handlers

#: A client that does not finish its request in this time is dropped.
CONNECTION_TIMEOUT = 10.0
#: Connections served at once; one more is refused with a "busy" reply.
MAX_CONNECTIONS = 32
#: Largest request frame the server reads (requests are a few dozen bytes).
MAX_REQUEST = 64 * 1024
#: Pending connections the kernel queues before podsup accepts them.
LISTEN_BACKLOG = 128
#: Backoff of the accept loop while accepting (or starting a thread) keeps failing.
ACCEPT_BACKOFF_MIN = 0.05
ACCEPT_BACKOFF_MAX = 1.0


#: How long a start-up probe waits for a live socket's owner to answer as podsup.
PROBE_TIMEOUT = 3.0


def _listener_is_podsup(probe: socket.socket) -> bool:
    """Ask a live listener for ``status``: only podsup answers with its frame."""
    try:
        probe.settimeout(PROBE_TIMEOUT)
        framing.send_message(probe, {"command": "status"})
        answer = framing.recv_message(probe, max_size=framing.MAX_FRAME)
    except (OSError, framing.FramingError):
        return False
    return isinstance(answer.get("ok"), bool) and ("result" in answer or "error" in answer)


def runtime_dir() -> str | None:
    """``$XDG_RUNTIME_DIR`` (the user's private runtime directory), if set."""
    value = os.environ.get("XDG_RUNTIME_DIR", "").strip()
    return os.path.abspath(value) if value else None


def _make_directory(directory: str) -> None:
    """Make sure the socket's directory exists. Missing directories are created
    (mode 0700) only inside podsup's runtime directory ``$XDG_RUNTIME_DIR``,
    where the default socket lives: anywhere else a missing directory is a
    typo in --control, and creating it would leave a stray tree behind."""
    if os.path.isdir(directory):
        return
    runtime = runtime_dir()
    target = os.path.abspath(directory)
    if runtime is None or os.path.commonpath([runtime, target]) != runtime:
        where = "$XDG_RUNTIME_DIR (not set)" if runtime is None else f"$XDG_RUNTIME_DIR ({runtime})"
        raise OSError(f"directory {directory} does not exist; create it first "
                      f"(podsup creates missing directories only under {where})")
    old_umask = os.umask(0o077)  # intermediate directories are private too (makedirs' mode is the leaf's)
    try:
        os.makedirs(target, mode=0o700, exist_ok=True)
    finally:
        os.umask(old_umask)


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
    except ConnectionRefusedError:
        os.unlink(path)  # nobody listens: a leftover of a dead podsup
    except BlockingIOError:  # a live listener whose backlog is full
        raise OSError(f"another program is listening on {path}") from None
    except OSError as exc:  # e.g. a datagram socket (EPROTOTYPE): someone else's, alive
        raise OSError(f"{path} is another program's socket ({exc.strerror or exc})") from None
    else:
        if _listener_is_podsup(probe):
            raise OSError(f"another podsup is listening on {path}")
        raise OSError(f"another program is listening on {path}, not podsup")
    finally:
        probe.close()


class ControlServer:
    #: What runs each connection (a seam for tests that make it fail to start).
    thread_class = threading.Thread

    def __init__(self, path: str, handlers: Handlers, log: EventLog | None = None,
                 max_connections: int = MAX_CONNECTIONS, timeout: float = CONNECTION_TIMEOUT):
        self.path = path
        self.handlers = handlers
        self.log: EventLog = log if log is not None else StdLog("podsup.ctl")
        self.max_connections = max_connections
        self.timeout = timeout
        self._slots = threading.BoundedSemaphore(max_connections)
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()
        self._failing: str | None = None  # the failure of the current streak, logged once

    def start(self) -> None:
        """Bind (OSError if the socket cannot be made) and serve."""
        self.bind()
        self.serve()

    def bind(self) -> None:
        _make_directory(os.path.dirname(self.path) or ".")
        _remove_stale(self.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)  # the file is born 0600: no window where others may connect
        try:
            sock.bind(self.path)
        except BaseException:
            sock.close()
            raise
        finally:
            os.umask(old_umask)
        os.chmod(self.path, 0o600)
        # a burst of CLI calls (probes, `status --watch`es, a preStop) waits in the
        # backlog; a full backlog fails a Unix-socket connect at once (EAGAIN)
        sock.listen(LISTEN_BACKLOG)
        self._sock = sock

    def serve(self) -> None:
        assert self._sock is not None, "bind() first"
        sock = self._sock
        self._thread = threading.Thread(target=self._accept_loop, args=(sock,), name="podsup-control",
                                        daemon=True)
        self._thread.start()

    # --- accept loop ---------------------------------------------------------
    def _accept_loop(self, sock: socket.socket) -> None:
        backoff = ACCEPT_BACKOFF_MIN
        while not self._closed.is_set():
            try:
                ok = self._accept_one(sock)
            except Exception as exc:  # noqa: BLE001 - nothing may end the loop but close()
                if self._closed.is_set():
                    return
                self._failed(f"{type(exc).__name__}: {exc}")
                ok = False
            if ok:
                backoff = ACCEPT_BACKOFF_MIN
                if self._failing is not None:
                    self.log.info("control socket recovered", path=self.path)
                    self._failing = None
            else:
                # a persistent failure (EMFILE, no threads) must not spin; close() wakes this
                self._closed.wait(backoff)
                backoff = min(backoff * 2, ACCEPT_BACKOFF_MAX)

    def _accept_one(self, sock: socket.socket) -> bool:
        """Accept and dispatch one connection; False after a failure (already logged)."""
        try:
            conn, _ = sock.accept()
        except OSError as exc:
            if self._closed.is_set():
                return True  # close() shut the socket: the loop ends
            self._failed(f"accept: {exc.strerror or exc}")
            return False
        if not self._slots.acquire(blocking=False):
            self._refuse(conn, f"busy: {self.max_connections} control connections are open; retry later")
            return True
        try:
            self.thread_class(target=self._serve, args=(conn,), name="podsup-control-conn",
                              daemon=True).start()
        except Exception as exc:  # noqa: BLE001 - RuntimeError: can't start new thread, MemoryError...
            self._slots.release()
            self._refuse(conn, "busy: cannot start a thread for this request; retry later")
            self._failed(f"cannot start a connection thread: {exc}")
            return False
        return True

    def _failed(self, what: str) -> None:
        """Log a failure once per streak (not once per retry)."""
        if self._failing is None:
            self.log.warning("control socket failing, retrying", error=what, path=self.path)
        self._failing = what

    @staticmethod
    def _refuse(conn: socket.socket, error: str) -> None:
        """Answer one error frame without waiting (the accept loop must not block) and close."""
        try:
            conn.setblocking(False)
            conn.send(framing.encode({"ok": False, "error": error}))
        except OSError:
            pass
        finally:
            conn.close()

    # --- one connection ------------------------------------------------------
    def _serve(self, conn: socket.socket) -> None:
        try:
            with conn:
                self._exchange(conn)
        except Exception as exc:  # noqa: BLE001 - a connection never prints a traceback
            self.log.error("control request failed", error=f"{type(exc).__name__}: {exc}")
        finally:
            self._slots.release()

    def _exchange(self, conn: socket.socket) -> None:
        deadline = time.monotonic() + self.timeout
        try:
            request = framing.recv_message(conn, max_size=MAX_REQUEST, deadline=deadline)
        except (framing.FramingError, OSError) as exc:
            error = "timed out" if isinstance(exc, TimeoutError) else str(exc)
            self._reply(conn, {"ok": False, "error": f"bad request: {error}"}, deadline)
            return
        response = self.handlers.handle(request)
        # the answer gets its own budget: the handler may have waited for the loop
        self._reply(conn, response, time.monotonic() + self.timeout)

    @staticmethod
    def _reply(conn: socket.socket, response: dict[str, Any], deadline: float) -> None:
        try:
            data = framing.encode(response)
        except (framing.FramingError, TypeError, ValueError) as exc:
            data = framing.encode({"ok": False, "error": f"cannot encode the answer: {exc}"})
        try:
            conn.settimeout(max(deadline - time.monotonic(), 0.1))
            conn.sendall(data)
        except OSError:
            pass  # the client went away or does not read: nothing to tell it

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



class ControlExtension(Extension):
    """The control socket for the pool's lifetime. It listens from attach on
    (the arbiter exists then) and is removed when podsup exits."""

    def __init__(self, path: str, on_drain=None, drain_budget: float = 60.0, probed_queues=None):
        self.path = path
        self.on_drain = on_drain
        self.drain_budget = drain_budget
        self.probed_queues = probed_queues
        # bound now, before any worker starts: a path that cannot be a socket (or is
        # someone else's live one) stops `podsup run` with one line (OSError)
        self.server: ControlServer | None = ControlServer(path, None)  # type: ignore[arg-type]
        try:
            self.server.bind()
        except BaseException:
            self.server = None
            raise

    def attach(self, arbiter: LoopHandle) -> None:
        assert self.server is not None
        self.server.handlers = Handlers(arbiter, on_drain=self.on_drain, drain_budget=self.drain_budget,
                                        probed_queues=self.probed_queues)
        self.server.log = getattr(arbiter, "log", None) or self.server.log
        self.server.serve()

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
