"""Queue depth of each WorkerPool, read by the operator from the broker itself.

Why the operator polls instead of scraping podsup's ``podsup_queue_depth``:
at zero replicas there is no pod to scrape, and the first message must be
seen to wake the pool. The broker clients are podsup's own probes
(:mod:`podsup.plugins.queueprobe`: LLEN of a Redis list, passive queue.declare on
RabbitMQ), so the operator and the in-pod probe read a queue the same way.

A reading is either a value or an error, never both; a reading older than
:data:`STALE_AFTER` polls counts as an error so a stuck poller can never feed
the HPA an old backlog.
"""
from __future__ import annotations

import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import Callable, Mapping

from podsup.plugins import queueprobe

#: Poll interval when the WorkerPool does not set queue.pollIntervalSeconds.
DEFAULT_POLL_INTERVAL = 5.0
#: A reading older than this many poll intervals (and at least STALE_MIN_SECONDS) is stale.
STALE_AFTER = 3
STALE_MIN_SECONDS = 30.0


class QueueSpecError(ValueError):
    """The WorkerPool's queue settings cannot be used; message is for the user."""


@dataclass(frozen=True)
class QueueReading:
    value: float | None
    error: str | None
    timestamp: float  # wall clock (the API's timestamps are wall time)

    @property
    def ok(self) -> bool:
        return self.error is None


def queue_settings(spec: Mapping) -> dict | None:
    """spec.queue of a WorkerPool, or None when it has no queue."""
    queue = spec.get("queue") or None
    return dict(queue) if queue else None


def poll_interval(queue: Mapping) -> float:
    return float(queue.get("pollIntervalSeconds") or DEFAULT_POLL_INTERVAL)


def broker_url(queue: Mapping, secret_value: str | None = None) -> str:
    """The full URL for :func:`podsup.plugins.queueprobe.parse_queue_url`.

    ``queue.url`` has no credentials and no queue parameter (the name is added
    here, as the Deployment builder adds it for podsup); ``urlSecretRef``'s
    value is the full URL already and is passed in as ``secret_value``.
    """
    if queue.get("urlSecretRef"):
        if not secret_value:
            ref = queue["urlSecretRef"]
            raise QueueSpecError(f"Secret {ref.get('name')!r} key {ref.get('key')!r} is missing or empty")
        return secret_value.strip()
    url = queue.get("url")
    if not url:
        raise QueueSpecError("spec.queue needs url or urlSecretRef")
    param = "list" if queue.get("type") == "redis" else "queue"
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    query = [(k, v) for k, v in query if k != param] + [(param, queue["name"])]
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path,
                                    urllib.parse.urlencode(query), ""))


class QueueProbe:
    """One pool's broker client (kept between polls; reconnects by itself)."""

    def __init__(self, url: str, factory: Callable = queueprobe.make_probe):
        try:
            self.target = queueprobe.parse_queue_url(url)
        except queueprobe.QueueConfigError as exc:
            raise QueueSpecError(str(exc).replace("--queue ", "queue URL ", 1)) from None
        self.url = url
        self._probe = factory(self.target)

    def read(self, clock: Callable[[], float] = time.time) -> QueueReading:
        """One poll (blocking, bounded by the probe's timeout: run it in a thread)."""
        try:
            value = self._probe.depth()
        except Exception as exc:  # noqa: BLE001 - any broker failure is a reading error
            detail = self.target.scrub(f"{type(exc).__name__}: {exc}")
            return QueueReading(None, f"broker {self.target.display} unreachable: {detail}", clock())
        return QueueReading(float(value), None, clock())

    def close(self) -> None:
        try:
            self._probe.close()
        except Exception:  # noqa: BLE001 - closing a broken connection
            pass


class QueueRegistry:
    """Latest reading per (namespace, pool): pollers write, the API reads."""

    def __init__(self, clock: Callable[[], float] = time.time):
        self._lock = threading.Lock()
        self._clock = clock
        self._pools: dict[tuple[str, str], tuple[QueueReading, float]] = {}

    def put(self, namespace: str, pool: str, reading: QueueReading, interval: float) -> None:
        with self._lock:
            self._pools[(namespace, pool)] = (reading, interval)

    def remove(self, namespace: str, pool: str) -> None:
        with self._lock:
            self._pools.pop((namespace, pool), None)

    def pools(self, namespace: str) -> dict[str, QueueReading]:
        """Every pool with a queue in ``namespace`` → its reading (stale ones as errors)."""
        now = self._clock()
        with self._lock:
            items = [(pool, r, i) for (ns, pool), (r, i) in self._pools.items() if ns == namespace]
        out = {}
        for pool, reading, interval in items:
            limit = max(STALE_AFTER * interval, STALE_MIN_SECONDS)
            if now - reading.timestamp > limit:
                reading = QueueReading(None, f"last queue reading is {now - reading.timestamp:.0f}s old "
                                             f"(poll interval {interval:g}s)", reading.timestamp)
            out[pool] = reading
        return out

    def __len__(self) -> int:
        with self._lock:
            return len(self._pools)
