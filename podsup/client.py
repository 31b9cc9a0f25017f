"""Reports from a Python worker to podsup (the worker side of the protocol).

podsup gives each worker ``PODSUP_REPORT``, the path of a Unix datagram
socket. Each report is one line in one datagram, sent with one ``sendto``::

    from podsup import client
    client.heartbeat()            # "I am alive" (arms --heartbeat-timeout)
    with client.job():            # "busy", then "done <seconds>" at the end
        handle(message)
    client.queue("jobs", 42)      # a queue depth the worker can see

Outside podsup (``PODSUP_REPORT`` unset) every call is a no-op, so the same
worker code runs under a plain shell. Sending never raises and never blocks:
if podsup is gone or its buffer is full the report is dropped — reports are
hints for metrics and the watchdog, never worth stalling (or failing) a job
for. A report podsup would refuse (a negative or non-numeric duration, a
queue name with spaces) is not sent either. Every call returns True only if
its datagram left.
"""
from __future__ import annotations

import contextlib
import os
import socket
import time
from typing import Iterator

from podsup.core.protocol import MalformedReport, parse_report
from podsup.names import ENV_REPORT


def _float(value: object) -> float | None:
    """``value`` as a float, None for what is no number (bools included)."""
    if isinstance(value, bool):
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


class Reporter:
    """Sends reports to one socket path (``None``: every call is a no-op)."""

    def __init__(self, path: str | None):
        self.path = path or None
        self._sock: socket.socket | None = None
        self._pid = 0

    def _socket(self) -> socket.socket:
        # A forked child must not share its parent's socket object state.
        if self._sock is None or self._pid != os.getpid():
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sock.setblocking(False)
            self._pid = os.getpid()
        return self._sock

    def send(self, line: str) -> bool:
        """Send one report line; True if the datagram left."""
        if self.path is None:
            return False
        try:
            self._socket().sendto(line.encode("utf-8"), self.path)
            return True
        except OSError:
            return False

    def heartbeat(self) -> bool:
        return self.send("heartbeat")

    def busy(self) -> bool:
        return self.send("busy")

    def idle(self) -> bool:
        return self.send("idle")

    def done(self, seconds: float) -> bool:
        value = _float(seconds)
        return value is not None and self._send_valid(f"done {value:.6f}")

    def queue(self, name: str, depth: float) -> bool:
        value = _float(depth)
        return isinstance(name, str) and value is not None and self._send_valid(f"queue {name} {value:g}")

    def _send_valid(self, line: str) -> bool:
        """Send ``line`` if podsup's own parser accepts it (one definition of a
        valid report: a negative duration, a queue name with spaces are dropped)."""
        try:
            parse_report(line.encode("utf-8", "surrogatepass"))  # a lone surrogate: refused, not raised
        except MalformedReport:
            return False
        return self.send(line)

    @contextlib.contextmanager
    def job(self) -> Iterator[None]:
        """``busy`` on entry, ``done <elapsed>`` on exit (also on an exception)."""
        self.busy()
        start = time.monotonic()
        try:
            yield
        finally:
            self.done(time.monotonic() - start)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


_default: Reporter | None = None


def reporter() -> Reporter:
    """The process-wide reporter, built from ``PODSUP_REPORT`` on first use."""
    global _default
    if _default is None or _default.path != (os.environ.get(ENV_REPORT) or None):
        _default = Reporter(os.environ.get(ENV_REPORT))
    return _default


def heartbeat() -> bool:
    return reporter().heartbeat()


def busy() -> bool:
    return reporter().busy()


def idle() -> bool:
    return reporter().idle()


def done(seconds: float) -> bool:
    return reporter().done(seconds)


def queue(name: str, depth: float) -> bool:
    return reporter().queue(name, depth)


def job() -> contextlib.AbstractContextManager[None]:
    return reporter().job()
