"""The metrics API as a part that may fail on its own.

kopf runs no resource handler until every ``@kopf.on.startup`` activity has
succeeded, so a metrics API that cannot bind its port or load its
certificate, started from such an activity, would stop all reconciliation
(and kopf would retry it every 60 s, with a traceback). Instead the startup
activity only launches :class:`Supervisor`, which tries to start the server
in the background and, on failure, reports it and retries with exponential
backoff until it listens. Pools reconcile all the while.

Pure policy here (states, delays, the one-line description of a failure);
what a failure *does* (log line, metric, Event) is the caller's ``report``,
and sleeping goes through a seam so tests need no real waiting.
"""
from __future__ import annotations

import asyncio
import enum
import errno
import ssl
from dataclasses import dataclass
from typing import Awaitable, Callable, Protocol


class State(enum.Enum):
    STARTING = "starting"   # first attempt under way
    RETRYING = "retrying"   # an attempt failed; waiting for the next one
    SERVING = "serving"     # listening
    STOPPED = "stopped"     # the operator is stopping


@dataclass(frozen=True)
class Backoff:
    """Delay before attempt ``n + 1`` after ``n`` failures: first, first ×
    factor, … capped (a port freed later is picked up within ``cap``)."""
    first: float = 1.0
    factor: float = 2.0
    cap: float = 30.0

    def delay(self, failures: int) -> float:
        return min(self.cap, self.first * self.factor ** max(failures - 1, 0))


class StartError(Exception):
    """A start failure already worded for the user (e.g. naming the files)."""


def reason(exc: BaseException) -> str:
    """An exception's own text on one line (an SSLError's short reason, an
    API error's status without the response dump)."""
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return exc.reason
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    status, why = getattr(exc, "status", None), getattr(exc, "reason", None)
    if isinstance(status, int) and isinstance(why, str):  # the client's ApiException: headers and body follow
        return f"HTTP {status} {why}"
    return " ".join(str(exc).split()) or type(exc).__name__


def describe(exc: BaseException, host: str, port: int, flag: str = "--metrics-api-port") -> str:
    """One line saying why the server did not start, in the user's terms
    (``flag`` is the option that chooses the port)."""
    if isinstance(exc, StartError):
        return str(exc)
    if isinstance(exc, ssl.SSLError):
        return f"TLS cannot be set up ({reason(exc)})"
    if isinstance(exc, OSError):
        if exc.errno == errno.EADDRINUSE:
            return f"port {port} on {host} is already in use (choose another with {flag})"
        if exc.errno == errno.EACCES and exc.filename is None:
            return f"no permission to listen on port {port} on {host}"
        if exc.errno == errno.EADDRNOTAVAIL:
            return f"address {host} is not available on this host"
        if exc.filename is not None:
            return f"{exc.filename}: {exc.strerror}"
        if exc.strerror:
            return f"cannot listen on {host}:{port}: {exc.strerror}"
    return " ".join(f"{type(exc).__name__}: {exc}".split())


class Report(Protocol):
    async def failed(self, message: str, failures: int, retry_in: float) -> None: ...

    async def serving(self, port: int, failures: int) -> None: ...


class Supervisor:
    """Start the server; on failure report and retry after a backoff delay.

    ``start`` returns the bound port or raises; ``describe_error`` turns its
    exception into the one line reported. One task runs :meth:`run`;
    cancelling it (operator stopping) ends the retries.
    """

    def __init__(self, start: Callable[[], Awaitable[int]], describe_error: Callable[[BaseException], str],
                 report: Report, backoff: Backoff = Backoff(),
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep):
        self._start = start
        self._describe = describe_error
        self._report = report
        self._backoff = backoff
        self._sleep = sleep
        self.state = State.STARTING
        self.failures = 0
        self.last_error: str | None = None

    async def run(self) -> int:
        try:
            while True:
                try:
                    port = await self._start()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - any failure to start is reported and retried
                    self.failures += 1
                    self.last_error = self._describe(exc)
                    self.state = State.RETRYING
                    delay = self._backoff.delay(self.failures)
                    await self._report.failed(self.last_error, self.failures, delay)
                    await self._sleep(delay)
                    continue
                self.state = State.SERVING
                await self._report.serving(port, self.failures)
                return port
        except asyncio.CancelledError:
            self.state = State.STOPPED
            raise
