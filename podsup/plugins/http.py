"""podsup's HTTP endpoint (``--http ADDR:PORT``): /metrics, /healthz, /readyz.

The health answers are pure functions (podsup.core.health: ``liveness``,
``readiness``) over a :class:`HealthState` that the master loop refreshes on
every tick. So:

* /healthz fails when the loop is stuck — its last tick is older than
  ``stale_after`` — without ever waiting on the loop, and in a crash storm;
* /readyz fails at once when a drain is requested (the control socket flips
  :meth:`HealthState.set_draining` before the loop even sees the command;
  SIGTERM sets the loop's ``draining`` flag, which /readyz reads live),
  when fewer than --min-ready workers are up (idle or busy: a worker still
  starting takes no traffic yet; at least one, so a pod scaled to 0 workers
  is not ready unless ``--min-ready 0`` says so), and in a crash storm.

``readiness`` and ``liveness`` are the one definition: the master loop's
``PoolSnapshot.ready``/``healthy`` (``podsup status``) use them too.

/metrics is podsup.plugins.metrics' page (text format 0.0.4, or OpenMetrics
as the Accept header asks; gzip when accepted). ``?name[]=NAME``
(repeatable) keeps only the families or samples so named. HEAD is answered
like GET, without the body (load balancers and some probes use it).

The server (podsup.plugins.httpserver) is one selector thread: scrapes never
run in the master loop. A client has :data:`REQUEST_TIMEOUT` seconds to send
its request (idle and trickling connections are dropped), and at most
:data:`MAX_CONNECTIONS` are open at once: more are answered 503 and closed.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from podsup import names
from podsup.core.health import STALE_AFTER, HealthView, liveness, readiness
from podsup.core.plugin import Extension, LoopHandle
from podsup.core.snapshot import PoolSnapshot
from podsup.plugins.exposition import gzip_accepted
from podsup.plugins.httpserver import Answer, Request, Server

log = logging.getLogger("podsup.http")

#: Seconds a client has, from its connection being accepted, to send its
#: request; also how long a response may take to send. Then it is dropped.
REQUEST_TIMEOUT = 10.0
#: Connections served at once; more are answered 503 and closed at once.
MAX_CONNECTIONS = 64


class HealthState:
    """What the health endpoints read: written by the loop (tick) and the
    control socket (drain), read by HTTP threads; one lock, no waiting on the loop."""

    def __init__(self, needed: Callable[[int], int] = lambda desired: desired,
                 clock: Callable[[], float] = time.monotonic, stale_after: float = STALE_AFTER):
        self.needed = needed
        self.clock = clock
        self.stale_after = stale_after
        self._lock = threading.Lock()
        self._last_tick: float | None = None
        self._view: HealthView | None = None
        self._draining = False
        #: the loop's state read live for /readyz (set by HttpExtension.attach):
        #: readiness must go off the moment SIGTERM is dispatched, not at the
        #: next tick. A few attribute reads, no lock, so it never waits on the loop.
        self.live: Callable[[], HealthView] | None = None

    def mark_tick(self, view: HealthView | PoolSnapshot) -> None:
        if isinstance(view, PoolSnapshot):
            view = HealthView.from_snapshot(view)
        with self._lock:
            self._last_tick = self.clock()
            self._view = view

    def set_draining(self) -> None:
        with self._lock:
            self._draining = True

    @property
    def draining(self) -> bool:
        with self._lock:
            return self._draining

    def healthz(self) -> tuple[bool, str]:
        with self._lock:
            age = None if self._last_tick is None else self.clock() - self._last_tick
            crash = bool(self._view and self._view.crash_loop_fatal)
        if self.live is not None and age is not None:
            try:
                crash = self.live().crash_loop_fatal  # as podsup status says, not a tick later
            except Exception:  # noqa: BLE001 - a torn read: keep the tick's answer
                pass
        return liveness(age, crash, self.stale_after)

    def readyz(self) -> tuple[bool, str]:
        with self._lock:
            view, draining = self._view, self._draining
        if self.live is not None and view is not None:
            try:
                view = self.live()
            except Exception:  # noqa: BLE001 - e.g. the table changed mid-read: use the tick's view
                pass
        return readiness(view, self.needed(view.desired) if view else 0, draining)


def _unquote(text: str) -> str:
    """Percent-decoding of a query component (``+`` is a space)."""
    text = text.replace("+", " ")
    if "%" not in text:
        return text
    out, i, raw = bytearray(), 0, text.encode("utf-8")
    while i < len(raw):
        if raw[i] == 0x25 and i + 3 <= len(raw):
            try:
                out.append(int(raw[i + 1:i + 3], 16))
                i += 3
                continue
            except ValueError:
                pass
        out.append(raw[i])
        i += 1
    return out.decode("utf-8", "replace")


def wanted_names(query: str) -> frozenset[str] | None:
    """The ``name[]`` values of a query string, or None when there are none."""
    found = []
    for part in query.split("&"):
        key, sep, value = part.partition("=")
        if sep and value and _unquote(key) == "name[]":
            found.append(_unquote(value))
    return frozenset(found) if found else None


def _text(status: int, text: str) -> Answer:
    return status, [("Content-Type", "text/plain; charset=utf-8")], text.encode()


class HttpServer:
    """Serves the three paths on ``(host, port)`` from one background thread.
    ``metrics`` answers ``exposition(accept, gzipped, wanted) -> (content type, body)``
    (podsup.plugins.metrics.MetricsExtension)."""

    def __init__(self, address: tuple[str, int], metrics: Any, health: HealthState,
                 request_timeout: float = REQUEST_TIMEOUT, max_connections: int = MAX_CONNECTIONS):
        self.metrics, self.health = metrics, health
        self._server = Server(address, self.answer, request_timeout, max_connections)

    @property
    def port(self) -> int:
        return self._server.port

    def start(self) -> None:
        self._server.start()

    def close(self) -> None:
        self._server.close()

    def answer(self, request: Request) -> Answer:
        if request.path == names.METRICS_PATH:
            gzipped = gzip_accepted(request.headers.get("accept-encoding"))
            try:
                content_type, data = self.metrics.exposition(request.headers.get("accept"), gzipped,
                                                             wanted_names(request.query))
            except Exception:  # noqa: BLE001 - a broken collector must not kill the server
                log.exception("/metrics failed")
                return _text(500, "metrics collection failed\n")
            headers = [("Content-Type", content_type)]
            if gzipped:
                headers.append(("Content-Encoding", "gzip"))
            return 200, headers, data
        if request.path == names.HEALTHZ_PATH:
            ok, reason = self.health.healthz()
            return _text(200 if ok else 503, reason + "\n")
        if request.path == names.READYZ_PATH:
            ok, reason = self.health.readyz()
            return _text(200 if ok else 503, reason + "\n")
        return _text(404, f"not found; try {names.METRICS_PATH}, {names.HEALTHZ_PATH}, {names.READYZ_PATH}\n")


class HttpExtension(Extension):
    """Binds at construction (so a taken port fails ``podsup run`` at once),
    serves from attach, refreshes the health state on every loop tick."""

    def __init__(self, address: tuple[str, int], metrics: Any, health: HealthState):
        self.health = health
        self.host = address[0]
        self.server = HttpServer(address, metrics, health)
        self.loop: LoopHandle | None = None

    def attach(self, loop: LoopHandle) -> None:
        self.loop = loop
        self.health.mark_tick(loop.health())
        self.health.live = loop.health
        self.server.start()
        host = f"[{self.host}]" if ":" in self.host else self.host
        # the bound port: with --http ADDR:0 the kernel chose it
        loop.log.info("serving /metrics, /healthz, /readyz", address=f"{host}:{self.server.port}")

    def tick(self, now: float) -> None:
        if self.loop is not None:
            self.health.mark_tick(self.loop.health())

    def close(self) -> None:
        self.server.close()
