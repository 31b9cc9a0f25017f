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

/metrics is prometheus-client's exposition (text or OpenMetrics, as the
Accept header asks; gzip when accepted) of podsup's registry. ``?name[]=NAME``
(repeatable) keeps only the families or samples so named: the filter runs
over what the collectors yield (:class:`NameFilter`), because podsup's own
collectors cannot describe their families before a scrape, and
prometheus-client's registry-side filter would then find nothing. HEAD is
answered like GET, without the body (load balancers and some probes use it).

The server is a ThreadingHTTPServer (daemon threads) in a daemon thread:
scrapes never run in the master loop. A client has :data:`REQUEST_TIMEOUT`
seconds to send its request (idle and trickling connections are dropped, so
they cannot pin a thread each), and at most :data:`MAX_CONNECTIONS` are
served at once: more are answered 503 and closed by the accepting thread.
"""
from __future__ import annotations

import copy
import gzip
import http.server
import io
import logging
import socket
import threading
import time
import urllib.parse
from typing import Any, Callable, Iterable

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder, gzip_accepted
from prometheus_client.metrics_core import Metric

from podsup import names
from podsup.core.health import STALE_AFTER, HealthView, liveness, readiness
from podsup.core.plugin import Extension, LoopHandle
from podsup.core.snapshot import PoolSnapshot

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


class NameFilter:
    """What ``?name[]=`` keeps of a registry's collection: a family whose name
    is asked for, whole (``podsup_requests`` keeps ``podsup_requests_total``),
    else its samples whose names are asked for (``podsup_request_duration_seconds_count``),
    the way prometheus-client's ``restricted_registry`` matches sample names.
    It filters what the collectors yield, so collectors without a ``describe()``
    (podsup's pool and the workers' merged files) are filtered too."""

    def __init__(self, registry: Any, names: Iterable[str]):
        self.registry = registry
        self.names = frozenset(names)

    def collect(self) -> Iterable[Metric]:
        for metric in self.registry.collect():
            if metric.name in self.names:
                yield metric
                continue
            samples = [s for s in metric.samples if s.name in self.names]
            if samples:
                kept = copy.copy(metric)
                kept.samples = samples
                yield kept


def exposition(registry: Any, accept: str | None, accept_encoding: str | None,
               query: str) -> tuple[list[tuple[str, str]], bytes]:
    """(headers, body) of /metrics for these request headers and query string."""
    encoder, content_type = choose_encoder(accept or "")
    wanted = urllib.parse.parse_qs(query).get("name[]")
    body = encoder(NameFilter(registry, wanted) if wanted else registry)
    headers = [("Content-Type", content_type)]
    if gzip_accepted(accept_encoding or ""):
        body = gzip.compress(body)
        headers.append(("Content-Encoding", "gzip"))
    return headers, body


class _DeadlineReader(io.RawIOBase):
    """A connection's reads, all done by ``deadline`` (a socket timeout alone
    is per read: a client sending a byte every few seconds would keep it)."""

    def __init__(self, sock: socket.socket, deadline: float):
        self._sock = sock
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("request not received in time")
        self._sock.settimeout(remaining)
        return self._sock.recv_into(buffer)


class _Handler(http.server.BaseHTTPRequestHandler):
    registry: CollectorRegistry
    health: HealthState
    #: the socket timeout of every read and write (see REQUEST_TIMEOUT)
    timeout = REQUEST_TIMEOUT

    def setup(self) -> None:
        super().setup()  # sets the socket timeout, makes rfile/wfile
        self.rfile.close()  # its reference would keep the socket open after close()
        deadline = time.monotonic() + self.timeout
        self.rfile = io.BufferedReader(_DeadlineReader(self.connection, deadline))

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._answer(body=True)

    def do_HEAD(self) -> None:  # noqa: N802 - like GET, the same headers, no body
        self._answer(body=False)

    def _answer(self, body: bool) -> None:
        self.connection.settimeout(self.timeout)  # the reads' deadline may be nearly spent
        url = urllib.parse.urlsplit(self.path)
        if url.path == names.METRICS_PATH:
            try:
                headers, data = exposition(self.registry, self.headers.get("Accept"),
                                           self.headers.get("Accept-Encoding"), url.query)
            except Exception:  # noqa: BLE001 - a broken collector must not kill the server
                log.exception("/metrics failed")
                self._text(500, "metrics collection failed\n", body)
                return
            self._send(200, headers, data, body)
        elif url.path == names.HEALTHZ_PATH:
            ok, reason = self.health.healthz()
            self._text(200 if ok else 503, reason + "\n", body)
        elif url.path == names.READYZ_PATH:
            ok, reason = self.health.readyz()
            self._text(200 if ok else 503, reason + "\n", body)
        else:
            self._text(404, f"not found; try {names.METRICS_PATH}, {names.HEALTHZ_PATH}, {names.READYZ_PATH}\n",
                       body)

    def _text(self, status: int, text: str, body: bool = True) -> None:
        self._send(status, [("Content-Type", "text/plain; charset=utf-8")], text.encode(), body)

    def _send(self, status: int, headers: list[tuple[str, str]], data: bytes, body: bool) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))  # a HEAD tells what a GET would send
        self.end_headers()
        if body:
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http: " + format, *args)


#: What a connection beyond MAX_CONNECTIONS is sent before it is closed.
_BUSY = (b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
         b"Content-Length: 21\r\nConnection: close\r\n\r\ntoo many connections\n")


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True  # an idle client never holds up podsup's exit
    allow_reuse_address = True
    request_queue_size = 64  # listen backlog (socketserver's default is 5)
    max_connections = MAX_CONNECTIONS

    def __init__(self, *args: Any, **kwargs: Any):
        self._slots = threading.BoundedSemaphore(self.max_connections)
        super().__init__(*args, **kwargs)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self._refuse(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def _refuse(self, request: socket.socket) -> None:
        try:
            request.setblocking(False)  # the accepting thread never waits on a client
            request.send(_BUSY)
        except OSError:
            pass
        self.shutdown_request(request)


class HttpServer:
    """Serves the three paths on ``(host, port)`` from a background thread."""

    def __init__(self, address: tuple[str, int], registry: CollectorRegistry, health: HealthState,
                 request_timeout: float = REQUEST_TIMEOUT, max_connections: int = MAX_CONNECTIONS):
        handler = type("PodsupHandler", (_Handler,),
                       {"registry": registry, "health": health, "timeout": request_timeout})
        host, port = address
        attrs: dict[str, Any] = {"max_connections": max_connections}
        if ":" in host:
            attrs["address_family"] = socket.AF_INET6
        server_cls = type("_PodsupServer", (_Server,), attrs)
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


class HttpExtension(Extension):
    """Binds at construction (so a taken port fails ``podsup run`` at once),
    serves from attach, refreshes the health state on every loop tick."""

    def __init__(self, address: tuple[str, int], registry: CollectorRegistry, health: HealthState):
        self.health = health
        self.host = address[0]
        self.server = HttpServer(address, registry, health)
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
