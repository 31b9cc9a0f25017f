"""podsup's Prometheus metrics: what /metrics shows, as plain data, cached.

Two sources:

* the pool, from one :class:`~podsup.core.snapshot.PoolSnapshot`
  (:func:`pool_families`): workers by state, desired, restarts, exits,
  per-worker RSS/CPU, busy ratio, draining, crash loop, queue depth;
* :class:`ReportStats`, fed by worker reports (``done``) in the master loop:
  requests total, the request duration histogram, slow requests and the
  rolling requests/s. Plain integers bumped per report with no lock (the loop
  is their one writer); the rolling rate, which a scrape reads from another
  thread, is updated once per batch of reports (``after_reports``).

:class:`MetricsExtension` renders them (podsup.plugins.exposition, no
prometheus-client: see there why) and keeps the page: it is rendered again
only when the loop has been through an iteration since (its ``generation``),
the queue probe's readings changed, or it is :data:`PAGE_MAX_AGE` old; the
workers' RSS/CPU readings are reused for as long (a scrape measures at most
once a second). The workers' own prometheus-client metrics
(podsup.plugins.multiproc) are appended at every scrape. Every name is listed
with its type, labels and help in docs/metrics.md (a test compares it with /metrics).
"""
from __future__ import annotations

import bisect
import math
import threading
import time
from typing import Any, Callable, Mapping

from podsup import names
from podsup.core.rate import RollingRate  # the one rolling rate (also each worker's QPS)
from podsup.core.plugin import Extension, LoopHandle
from podsup.core.sizing import saturation
from podsup.core.snapshot import PoolSnapshot
from podsup.core.states import WorkerState
from podsup.plugins.exposition import (Family, Sample, go_float, keep_named, negotiate, render_openmetrics,
                                       render_text)

#: Seconds over which podsup_requests_per_second averages ``done`` reports.
RATE_WINDOW = 30.0
#: Buckets of podsup_request_duration_seconds: web requests to batch jobs.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                    30.0, 60.0, 120.0, 300.0, math.inf)
#: Restart reasons (DESIGN.md, plus reload); each is always exported, 0 until it happens.
RESTART_REASONS = ("exit", "signal", "rss", "requests", "lifetime", "heartbeat", "timeout", "reload",
                   "start-timeout")
#: The longest a rendered page (and its RSS/CPU readings) is served again unchanged.
PAGE_MAX_AGE = 1.0

P = names.METRIC_PREFIX
def busy_ratio(snapshot: PoolSnapshot) -> float:
    """Busy workers / running workers (0 when none runs): the pool's utilisation."""
    running = [w for w in snapshot.workers if w.state is not None and w.state.running]
    if not running:
        return 0.0
    return sum(1 for w in running if w.state is WorkerState.BUSY) / len(running)


def workers_by_state(snapshot: PoolSnapshot) -> dict[str, int]:
    counts = {state.value: 0 for state in WorkerState}
    for worker in snapshot.workers:
        if worker.state is not None:
            counts[worker.state.value] += 1
    return counts


def per_slot(snap: PoolSnapshot) -> dict[int, tuple[int, float, float]]:
    """Slot → (RSS, CPU %, uptime). While a worker is recycled its slot has two
    processes (the replacement starts first); one series per slot keeps the
    ``worker`` label stable across respawns, so RSS and CPU are summed (what
    the slot costs) and the uptime is the newest process's."""
    out: dict[int, tuple[int, float, float]] = {}
    for w in snap.workers:
        if w.pid is None:
            continue
        if w.id in out:
            rss, cpu, uptime = out[w.id]
            out[w.id] = (rss + w.rss_bytes, cpu + w.cpu_percent, min(uptime, w.uptime))
        else:
            out[w.id] = (w.rss_bytes, w.cpu_percent, w.uptime)
    return out


def split_exit(key: str) -> tuple[str, str]:
    """``"exit 1"`` → ("exit", "1"); ``"signal SIGKILL"`` → ("signal", "SIGKILL"); ``"oom"`` → ("oom", "")."""
    kind, _, code = key.partition(" ")
    return kind, code


class ReportStats:
    """Metrics fed by worker reports. ``done`` runs in the loop thread (the
    only writer: plain integers, no lock); ``flush`` folds the batch's count
    into the rolling rate, under the lock a scrape's ``requests_per_second`` takes."""

    def __init__(self, window: float = RATE_WINDOW, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._lock = threading.Lock()
        self._rate = RollingRate(window, start=clock())
        self._pending = 0
        self.requests = 0
        self.slow = 0
        self.bucket_counts = [0] * len(DURATION_BUCKETS)
        self.duration_sum = 0.0

    def done(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        self.requests += 1
        self.bucket_counts[bisect.bisect_left(DURATION_BUCKETS, seconds)] += 1
        self.duration_sum += seconds
        self._pending += 1

    def slow_request(self) -> None:
        self.slow += 1

    def flush(self) -> None:
        """Fold the ``done`` reports since the last flush into the rolling rate."""
        if self._pending:
            with self._lock:
                self._rate.add(self.clock(), self._pending)
            self._pending = 0

    def requests_per_second(self) -> float:
        with self._lock:
            return self._rate.rate(self.clock())

    def families(self) -> list[Family]:
        counts, total = list(self.bucket_counts), self.duration_sum
        buckets, seen = [], 0
        for bound, count in zip(DURATION_BUCKETS, counts):
            seen += count
            buckets.append(Sample(f"{P}request_duration_seconds_bucket", (("le", go_float(bound)),), seen))
        buckets += [Sample(f"{P}request_duration_seconds_count", (), seen),
                    Sample(f"{P}request_duration_seconds_sum", (), total)]
        return [
            counter("requests", "Requests or jobs finished by workers (done reports).", self.requests),
            Family(f"{P}request_duration_seconds", "histogram",
                   "Duration of requests or jobs, as reported by workers (done <seconds>).", buckets),
            counter("slow_requests", "Requests or jobs that took longer than --slow-request.", self.slow),
        ]


def gauge(name: str, help_text: str, value: float | None = None, label: str = "",
          values: Mapping[str, float] | list[tuple[str, float]] = ()) -> Family:
    """A gauge family: one unlabelled ``value``, or one sample per (label value, value)."""
    name = name if name.startswith(P) else P + name
    if value is not None:
        return Family(name, "gauge", help_text, [Sample(name, (), value)])
    items = values.items() if isinstance(values, Mapping) else values
    return Family(name, "gauge", help_text, [Sample(name, ((label, k),), v) for k, v in items])


def counter(name: str, help_text: str, value: float | None = None, labels: tuple[str, ...] = (),
            values: list[tuple[tuple[str, ...], float]] = ()) -> Family:  # type: ignore[assignment]
    name = name if name.startswith(P) else P + name
    total = name + "_total"
    if value is not None:
        return Family(name, "counter", help_text, [Sample(total, (), value)])
    return Family(name, "counter", help_text,
                  [Sample(total, tuple(zip(labels, key)), v) for key, v in values])


#: A queue's state for /metrics: depth (None when unknown) and whether its
#: broker answered (None for depths that workers report, which have no broker).
QueueReading = tuple[float | None, bool | None]


def merge_queues(reported: Mapping[str, float], probed: Mapping[str, QueueReading]) -> dict[str, QueueReading]:
    """Depths from worker reports, overridden by the broker probe (the authority)."""
    merged: dict[str, QueueReading] = {name: (float(depth), None) for name, depth in reported.items()}
    merged.update(probed)
    return merged


def pool_families(snap: PoolSnapshot, rps: float, queues: Mapping[str, QueueReading],
                  probe_errors: Mapping[str, int] | None = None) -> list[Family]:
    """Pure: the metric families of one snapshot."""
    by_state = workers_by_state(snap)
    out = [
        gauge("workers", "Worker processes by state.", label="state", values=by_state),
        gauge("workers_desired", "Target number of workers.", snap.desired),
        gauge("workers_running", "Workers in a running state (starting, idle or busy).", snap.running),
        gauge("workers_min", "Fewest workers the pool runs (--min-workers; the desired count in a fixed-size pool).",
              getattr(snap, "min_workers", snap.desired)),
        gauge("workers_max", "Most workers the pool runs (--max-workers; the desired count in a fixed-size pool).",
              getattr(snap, "max_workers", snap.desired)),
        gauge(names.METRIC_POOL_SATURATION, "Busy workers divided by --max-workers (by the desired count in a fixed-size pool), 0..1: the in-pod headroom used.",
              saturation(by_state[WorkerState.BUSY.value], getattr(snap, "max_workers", 0) or snap.desired)),
    ]
    restarts = {reason: 0 for reason in RESTART_REASONS}
    restarts.update(snap.restarts)
    out.append(counter("worker_restarts", "Workers replaced, by reason.", labels=("reason",),
                       values=[((reason,), count) for reason, count in sorted(restarts.items())]))
    out.append(counter("worker_exits", "Worker exits, by kind (exit, signal, oom) and code or signal name.",
                       labels=("kind", "code"), values=[(split_exit(key), count) for key, count in sorted(snap.exits.items())]))
    slots = sorted(per_slot(snap).items())
    out += [
        gauge("worker_rss_bytes", "Resident memory of a worker and its children (summed while a slot's worker is being replaced).",
              label="worker", values=[(str(slot), rss) for slot, (rss, _, _) in slots]),
        gauge("worker_cpu_ratio", "CPU use of a worker as a fraction of one core.",
              label="worker", values=[(str(slot), cpu / 100.0) for slot, (_, cpu, _) in slots]),
        gauge("worker_uptime_seconds", "Seconds since the worker in this slot was started.",
              label="worker", values=[(str(slot), uptime) for slot, (_, _, uptime) in slots]),
        gauge(names.METRIC_REQUESTS_PER_SECOND, f"Requests or jobs finished per second over the last {RATE_WINDOW:g}s.", rps),
        gauge(names.METRIC_BUSY_RATIO, "Busy workers divided by running workers (0..1).", busy_ratio(snap)),
    ]
    ordered = sorted(queues.items())
    out += [
        gauge(names.METRIC_QUEUE_DEPTH, "Messages waiting in a queue (from --queue or workers' queue reports; absent while its broker is down).",
              label="queue", values=[(name, value) for name, (value, _) in ordered if value is not None]),
        gauge("queue_up", "1 if the last probe of the queue's broker succeeded, else 0.",
              label="queue", values=[(name, 1 if up else 0) for name, (_, up) in ordered if up is not None]),
        counter("queue_probe_errors", "Queue-depth probes that failed (broker down or refusing).", labels=("queue",),
                values=[((name,), count) for name, count in sorted((probe_errors or {}).items())]),
        gauge("draining", "1 while podsup drains (readiness off, workers stopping).", 1 if snap.draining else 0),
        gauge("crash_loop", "1 while workers crash faster than --crashloop-threshold allows.", 1 if snap.crash_loop else 0),
        gauge("crash_loop_seconds", "How long the current crash storm has lasted (0 outside one).",
              getattr(snap, "crash_loop_seconds", 0.0)),
        gauge("crash_loop_unhealthy", "1 once a crash storm has lasted --crashloop-restart-after: /healthz fails and the kubelet restarts the pod.",
              1 if getattr(snap, "crash_loop_fatal", False) else 0),
        counter("reports_malformed", "Worker report datagrams that could not be parsed and were ignored.",
                getattr(snap, "malformed_reports", 0)),
        gauge("start_time_seconds", "Unix time podsup started.", snap.started_at),
    ]
    return out


def gzip_compress(data: bytes) -> bytes:
    """A gzip member (what gzip.compress makes), by zlib alone: the gzip module costs ~0.2 MB."""
    import zlib
    packer = zlib.compressobj(6, zlib.DEFLATED, 31)  # wbits 16 + 15: gzip header and trailer
    return packer.compress(data) + packer.flush()


class Page:
    """One rendering of /metrics: the families, and each format's bytes (plain and gzipped) made on first use."""

    def __init__(self, families: list[Family], key: Any):
        self.families, self.key = families, key
        self.made_at = time.monotonic()
        self._bodies: dict[tuple[bool, bool], bytes] = {}

    def body(self, openmetrics: bool, gzipped: bool) -> bytes:
        got = self._bodies.get((openmetrics, gzipped))
        if got is None:
            if gzipped:
                got = gzip_compress(self.body(openmetrics, False))
            else:
                got = (render_openmetrics(self.families) if openmetrics else render_text(self.families)).encode()
            self._bodies[(openmetrics, gzipped)] = got
        return got


class MetricsExtension(Extension):
    """Feeds :class:`ReportStats` from ``done`` reports (loop thread) and
    answers /metrics (HTTP thread) from the cached :class:`Page`. Queue depths
    that workers report arrive in the snapshot; ``probed`` adds the broker
    probe's readings; ``workers`` renders the workers' own metrics (podsup.plugins.multiproc)."""

    def __init__(self, probed: Callable[[], Mapping[str, QueueReading]] = dict,
                 workers: Any = None, window: float = RATE_WINDOW,
                 probe_errors: Callable[[], Mapping[str, int]] = dict, max_age: float = PAGE_MAX_AGE):
        self.loop: Any = None
        self.stats = ReportStats(window=window)
        self.probed, self.probe_errors, self.workers, self.max_age = probed, probe_errors, workers, max_age
        self._page: Page | None = None
        self._page_lock = threading.Lock()  # one rendering at a time; the others wait for it

    def attach(self, loop: LoopHandle) -> None:
        self.loop = loop

    def on_report(self, slot: int, pid: int, report: Any) -> None:
        if report.kind == "done":
            self.stats.done(report.seconds or 0.0)

    def after_reports(self) -> None:
        self.stats.flush()

    def tick(self, now: float) -> None:
        self.stats.flush()  # reports handled outside a batch

    def page(self) -> Page:
        """The current page: the cached one while the loop, the probe's
        readings and the clock (:data:`PAGE_MAX_AGE`) say it still is."""
        if self.loop is None:
            raise RuntimeError("metrics: not attached to the master loop yet")
        probed, errors = self.probed(), self.probe_errors()
        generation = getattr(self.loop, "generation", None)
        key = (generation, tuple(sorted(probed.items())), tuple(sorted(errors.items())))
        with self._page_lock:
            page = self._page
            if (page is None or generation is None or page.key != key
                    or time.monotonic() - page.made_at >= self.max_age):
                snap = self.loop.snapshot(usage_max_age=self.max_age)
                families = self.stats.families()
                families += pool_families(snap, self.stats.requests_per_second(), merge_queues(snap.queues, probed), errors)
                page = self._page = Page(families, key)
            return page

    def exposition(self, accept: str | None, gzipped: bool, wanted: frozenset[str] | None = None
                   ) -> tuple[str, bytes]:
        """(Content-Type, body) of /metrics for this Accept header, gzipped or not, ``?name[]=`` applied."""
        openmetrics, content_type = negotiate(accept)
        page = self.page()
        workers = self.workers.exposition(openmetrics, wanted) if self.workers is not None else ""
        if wanted is None and not workers:
            return content_type, page.body(openmetrics, gzipped)
        families = page.families if wanted is None else keep_named(page.families, wanted)
        text = (render_openmetrics(families, eof=False) if openmetrics else render_text(families)) + workers
        data = (text + ("# EOF\n" if openmetrics else "")).encode()
        return content_type, gzip_compress(data) if gzipped else data
