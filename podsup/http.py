"""podsup's HTTP endpoint (``--http ADDR:PORT``): /metrics, /healthz, /readyz.

The health answers are pure functions (:func:`liveness`, :func:`readiness`)
over a :class:`HealthState` that the master loop refreshes on every tick. So:

* /healthz fails when the loop is stuck — its last tick is older than
  ``stale_after`` — without ever waiting on the loop, and in a crash storm;
* /readyz fails at once when a drain is requested (the control socket flips
  :meth:`HealthState.set_draining` before the loop even sees the command;
  SIGTERM sets the loop's ``draining`` flag, which /readyz reads live),
  when fewer than --min-ready workers are up (idle or busy: a worker still
  starting takes no traffic yet), and in a crash storm.

:func:`readiness` and :func:`liveness` are the one definition: the master
loop's ``PoolSnapshot.ready``/``healthy`` (``podsup status``) use them too.

/metrics is prometheus-client's own handler over podsup's registry.
The server is a ThreadingHTTPServer in a daemon thread: scrapes never run in
the master loop.
"""
from __future__ import annotations

import dataclasses
import http.server
import logging
import threading
import time
import urllib.parse
from typing import Any, Callable

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import MetricsHandler

from podsup import names
from podsup.snapshot import PoolSnapshot
from podsup.states import WorkerState

log = logging.getLogger("podsup.http")

#: /healthz fails when the loop has not ticked for this long (it ticks >= 1/s).
STALE_AFTER = 5.0


def liveness(tick_age: float | None, crash_loop: bool, stale_after: float = STALE_AFTER) -> tuple[bool, str]:
    """(healthy, reason) from the age of the loop's last tick."""
    if tick_age is None:
        return False, "the master loop has not ticked yet"
    if tick_age > stale_after:
        return False, f"the master loop is stuck: no tick for {tick_age:.1f}s"
    if crash_loop:
        return False, "crash loop: workers exit faster than --crashloop-threshold allows"
    return True, "ok"


@dataclasses.dataclass(frozen=True)
class HealthView:
    """What the health answers need, and nothing that costs a psutil scan."""

    desired: int
    up: int              #: workers that have started serving (idle or busy)
    draining: bool       #: draining or stopping
    crash_loop: bool
    exiting: bool = False

    @classmethod
    def from_snapshot(cls, snap: PoolSnapshot) -> "HealthView":
        up = sum(1 for w in snap.workers if w.state in (WorkerState.IDLE, WorkerState.BUSY))
        return cls(desired=snap.desired, up=up, draining=snap.draining, crash_loop=snap.crash_loop)

    @classmethod
    def of_arbiter(cls, arbiter: Any) -> "HealthView":
        """Read in the loop thread at each tick, and by /readyz live from an
        HTTP thread (flag reads and one copy of the worker table, no lock): a
        full ``snapshot()`` measures every worker with psutil, far too costly
        for that. Falls back to the snapshot if the arbiter's fields are not there."""
        try:
            workers = list(arbiter.workers.values())
            return cls(desired=int(arbiter.desired),
                       up=sum(1 for w in workers if w.state in (WorkerState.IDLE, WorkerState.BUSY)),
                       draining=bool(arbiter.draining or arbiter.stopping),
                       crash_loop=bool(arbiter.crash_loop),
                       exiting=arbiter.exit_code is not None)
        except AttributeError:
            return cls.from_snapshot(arbiter.snapshot())


def readiness(view: HealthView | None, needed: int, draining: bool) -> tuple[bool, str]:
    """(ready, reason): not draining, no crash storm, at least ``needed`` workers up."""
    if draining or (view is not None and view.draining):
        return False, "draining"
    if view is None:
        return False, "no state from the master loop yet"
    if view.exiting:
        return False, "exiting"
    if view.crash_loop:
        return False, "crash loop"
    if view.up < needed:
        return False, f"{view.up} of {needed} required workers ready"
    return True, f"{view.up} workers ready"


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
            crash = bool(self._view and self._view.crash_loop)
        if self.live is not None and age is not None:
            try:
                crash = self.live().crash_loop  # as podsup status says, not a tick later
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


class _Handler(MetricsHandler):
    registry: CollectorRegistry
    health: HealthState

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = urllib.parse.urlsplit(self.path).path
        if path == names.METRICS_PATH:
            try:
                super().do_GET()
            except Exception:  # noqa: BLE001 - a broken collector must not kill the server
                log.exception("/metrics failed")
                self._text(500, "metrics collection failed\n")
        elif path == names.HEALTHZ_PATH:
            ok, reason = self.health.healthz()
            self._text(200 if ok else 503, reason + "\n")
        elif path == names.READYZ_PATH:
            ok, reason = self.health.readyz()
            self._text(200 if ok else 503, reason + "\n")
        else:
            self._text(404, f"not found; try {names.METRICS_PATH}, {names.HEALTHZ_PATH}, {names.READYZ_PATH}\n")

    def _text(self, status: int, body: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http: " + format, *args)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class HttpServer:
    """Serves the three paths on ``(host, port)`` from a background thread."""

    def __init__(self, address: tuple[str, int], registry: CollectorRegistry, health: HealthState):
        handler = type("PodsupHandler", (_Handler,), {"registry": registry, "health": health})
        host, port = address
        if ":" in host:
            import socket
            server_cls = type("_Server6", (_Server,), {"address_family": socket.AF_INET6})
        else:
            server_cls = _Server
        self._server = server_cls((host, port), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="podsup-http", daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        if self._thread.is_alive():  # shutdown() would wait forever for a loop never started
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()


from podsup.extensions import Extension  # noqa: E402


class HttpExtension(Extension):
    """Binds at construction (so a taken port fails ``podsup run`` at once),
    serves from attach, refreshes the health state on every loop tick."""

    def __init__(self, address: tuple[str, int], registry: CollectorRegistry, health: HealthState):
        self.health = health
        self.server = HttpServer(address, registry, health)
        self.arbiter: Any = None

    def attach(self, arbiter: Any) -> None:
        self.arbiter = arbiter
        self.health.mark_tick(HealthView.of_arbiter(arbiter))
        self.health.live = lambda: HealthView.of_arbiter(arbiter)
        self.server.start()

    def tick(self, now: float) -> None:
        if self.arbiter is not None:
            self.health.mark_tick(HealthView.of_arbiter(self.arbiter))

    def close(self) -> None:
        self.server.close()
