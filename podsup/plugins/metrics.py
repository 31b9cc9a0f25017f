"""podsup's Prometheus metrics, built with prometheus-client.

Two sources, two mechanisms:

* :class:`PoolCollector` — a custom collector that turns one
  :class:`~podsup.core.snapshot.PoolSnapshot` (taken at scrape time) into the pool
  families: workers by state, desired, restarts, exits, per-worker RSS/CPU,
  busy ratio, draining, crash loop, queue depth. Nothing is cached, so a scrape
  never shows a stale pool.
* :class:`ReportStats` — ordinary prometheus-client Counter/Histogram objects
  fed by worker reports (``done``, malformed datagrams) in the master loop:
  requests total, request duration histogram, and the rolling requests/s.

:func:`build_registry` puts both (and the workers' own multiprocess metrics)
into one CollectorRegistry that /metrics serves. Every name is listed with its
type, labels and help in docs/metrics.md (a test compares it with /metrics).
"""
from __future__ import annotations

import math
import threading
import time
from typing import Any, Callable, Iterable, Mapping

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from podsup import names
from podsup.core.rate import RollingRate  # the one rolling rate (also each worker's QPS)
from podsup.core.plugin import Extension, LoopHandle
from podsup.core.sizing import saturation
from podsup.core.snapshot import PoolSnapshot
from podsup.core.states import WorkerState

#: Seconds over which podsup_requests_per_second averages ``done`` reports.
RATE_WINDOW = 30.0
#: Buckets of podsup_request_duration_seconds: web requests to batch jobs.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                    30.0, 60.0, 120.0, 300.0, math.inf)
#: Restart reasons (DESIGN.md, plus reload); each is always exported, 0 until it happens.
RESTART_REASONS = ("exit", "signal", "rss", "requests", "lifetime", "heartbeat", "timeout", "reload",
                   "start-timeout")

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
    """Metrics fed by worker reports; prometheus-client objects are thread-safe
    and the rolling rate has its own lock, so the loop writes while HTTP reads."""

    def __init__(self, registry: CollectorRegistry, window: float = RATE_WINDOW,
                 clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._lock = threading.Lock()
        self._rate = RollingRate(window, start=clock())
        self.requests = Counter(f"{P}requests", "Requests or jobs finished by workers (done reports).",
                                registry=registry)
        self.duration = Histogram(f"{P}request_duration_seconds",
                                  "Duration of requests or jobs, as reported by workers (done <seconds>).",
                                  buckets=DURATION_BUCKETS, registry=registry)
        self.slow = Counter(f"{P}slow_requests", "Requests or jobs that took longer than --slow-request.",
                            registry=registry)

    def done(self, seconds: float) -> None:
        self.requests.inc()
        self.duration.observe(max(0.0, seconds))
        with self._lock:
            self._rate.add(self.clock())

    def requests_per_second(self) -> float:
        with self._lock:
            return self._rate.rate(self.clock())


#: A queue's state for /metrics: depth (None when unknown) and whether its
#: broker answered (None for depths that workers report, which have no broker).
QueueReading = tuple[float | None, bool | None]


class PoolCollector(Collector):
    """The pool families, computed from a fresh snapshot at every scrape."""

    def __init__(self, snapshot: Callable[[], PoolSnapshot],
                 requests_per_second: Callable[[], float] = lambda: 0.0,
                 queues: Callable[[], Mapping[str, QueueReading]] = dict,
                 probe_errors: Callable[[], Mapping[str, int]] = dict):
        self._snapshot = snapshot
        self._rps = requests_per_second
        self._queues = queues
        self._probe_errors = probe_errors

    def collect(self) -> Iterable[Metric]:
        snap = self._snapshot()
        yield from pool_families(snap, self._rps(), merge_queues(snap.queues, self._queues()),
                                 self._probe_errors())

    def describe(self) -> Iterable[Metric]:
        return []  # families depend on the snapshot; no registration-time names


def merge_queues(reported: Mapping[str, float], probed: Mapping[str, QueueReading]) -> dict[str, QueueReading]:
    """Depths from worker reports, overridden by the broker probe (the authority)."""
    merged: dict[str, QueueReading] = {name: (float(depth), None) for name, depth in reported.items()}
    merged.update(probed)
    return merged


def pool_families(snap: PoolSnapshot, rps: float, queues: Mapping[str, QueueReading],
                  probe_errors: Mapping[str, int] | None = None) -> list[Metric]:
    """Pure: the metric families of one snapshot."""
    out: list[Metric] = []
    g = GaugeMetricFamily(f"{P}workers", "Worker processes by state.", labels=["state"])
    for state, count in workers_by_state(snap).items():
        g.add_metric([state], count)
    out.append(g)
    out.append(GaugeMetricFamily(f"{P}workers_desired", "Target number of workers.", value=snap.desired))
    out.append(GaugeMetricFamily(f"{P}workers_running", "Workers in a running state (starting, idle or busy).",
                                 value=snap.running))
    out.append(GaugeMetricFamily(f"{P}workers_min", "Fewest workers the pool runs (--min-workers; the desired count in a fixed-size pool).",
                                 value=getattr(snap, "min_workers", snap.desired)))
    out.append(GaugeMetricFamily(f"{P}workers_max", "Most workers the pool runs (--max-workers; the desired count in a fixed-size pool).",
                                 value=getattr(snap, "max_workers", snap.desired)))
    busy = workers_by_state(snap)[WorkerState.BUSY.value]
    out.append(GaugeMetricFamily(names.METRIC_POOL_SATURATION, "Busy workers divided by --max-workers (by the desired count in a fixed-size pool), 0..1: the in-pod headroom used.",
                                 value=saturation(busy, getattr(snap, "max_workers", 0) or snap.desired)))

    c = CounterMetricFamily(f"{P}worker_restarts", "Workers replaced, by reason.", labels=["reason"])
    restarts = {reason: 0 for reason in RESTART_REASONS}
    restarts.update(snap.restarts)
    for reason, count in sorted(restarts.items()):
        c.add_metric([reason], count)
    out.append(c)

    c = CounterMetricFamily(f"{P}worker_exits", "Worker exits, by kind (exit, signal, oom) and code or signal name.",
                            labels=["kind", "code"])
    for key, count in sorted(snap.exits.items()):
        c.add_metric(list(split_exit(key)), count)
    out.append(c)

    rss = GaugeMetricFamily(f"{P}worker_rss_bytes", "Resident memory of a worker and its children (summed while a slot's worker is being replaced).", labels=["worker"])
    cpu = GaugeMetricFamily(f"{P}worker_cpu_ratio", "CPU use of a worker as a fraction of one core.", labels=["worker"])
    up = GaugeMetricFamily(f"{P}worker_uptime_seconds", "Seconds since the worker in this slot was started.",
                           labels=["worker"])
    for slot, (rss_bytes, cpu_percent, uptime) in sorted(per_slot(snap).items()):
        rss.add_metric([str(slot)], rss_bytes)
        cpu.add_metric([str(slot)], cpu_percent / 100.0)
        up.add_metric([str(slot)], uptime)
    out += [rss, cpu, up]

    out.append(GaugeMetricFamily(names.METRIC_REQUESTS_PER_SECOND,
                                 f"Requests or jobs finished per second over the last {RATE_WINDOW:g}s.", value=rps))
    out.append(GaugeMetricFamily(names.METRIC_BUSY_RATIO, "Busy workers divided by running workers (0..1).",
                                 value=busy_ratio(snap)))

    depth = GaugeMetricFamily(names.METRIC_QUEUE_DEPTH, "Messages waiting in a queue (from --queue or workers' queue reports; absent while its broker is down).",
                              labels=["queue"])
    qup = GaugeMetricFamily(f"{P}queue_up", "1 if the last probe of the queue's broker succeeded, else 0.",
                            labels=["queue"])
    for name, (value, broker_up) in sorted(queues.items()):
        if value is not None:
            depth.add_metric([name], value)
        if broker_up is not None:
            qup.add_metric([name], 1 if broker_up else 0)
    errors = CounterMetricFamily(f"{P}queue_probe_errors", "Queue-depth probes that failed (broker down or refusing).",
                                 labels=["queue"])
    for name, count in sorted((probe_errors or {}).items()):
        errors.add_metric([name], count)
    out += [depth, qup, errors]

    out.append(GaugeMetricFamily(f"{P}draining", "1 while podsup drains (readiness off, workers stopping).",
                                 value=1 if snap.draining else 0))
    out.append(GaugeMetricFamily(f"{P}crash_loop", "1 while workers crash faster than --crashloop-threshold allows.",
                                 value=1 if snap.crash_loop else 0))
    out.append(GaugeMetricFamily(f"{P}crash_loop_seconds", "How long the current crash storm has lasted (0 outside one).",
                                 value=getattr(snap, "crash_loop_seconds", 0.0)))
    out.append(GaugeMetricFamily(f"{P}crash_loop_unhealthy", "1 once a crash storm has lasted --crashloop-restart-after: /healthz fails and the kubelet restarts the pod.",
                                 value=1 if getattr(snap, "crash_loop_fatal", False) else 0))
    out.append(CounterMetricFamily(f"{P}reports_malformed", "Worker report datagrams that could not be parsed and were ignored.",
                                   value=getattr(snap, "malformed_reports", 0)))
    out.append(GaugeMetricFamily(f"{P}start_time_seconds", "Unix time podsup started.", value=snap.started_at))
    return out


def build_registry(snapshot: Callable[[], PoolSnapshot], queues: Callable[[], Mapping[str, QueueReading]] = dict,
                   multiproc_dir: str | None = None, window: float = RATE_WINDOW,
                   probe_errors: Callable[[], Mapping[str, int]] = dict) -> tuple[CollectorRegistry, ReportStats]:
    """The registry /metrics serves, and the report-fed stats to write into."""
    # no *_created gauges beside the counters and the histogram: undocumented
    # extra series every scrape, which PromQL users never asked for
    disable_created = getattr(prometheus_client, "disable_created_metrics", None)
    if disable_created is not None:
        disable_created()
    registry = CollectorRegistry(auto_describe=False)
    stats = ReportStats(registry, window=window)
    registry.register(PoolCollector(snapshot, stats.requests_per_second, queues, probe_errors))
    if multiproc_dir is not None:
        from podsup.plugins.multiproc import WorkersCollector
        registry.register(WorkersCollector(multiproc_dir))
    return registry, stats



class MetricsExtension(Extension):
    """Owns podsup's registry: feeds it from ``done`` reports (in the loop
    thread) and reads the pool through ``arbiter.snapshot()`` at scrape time
    (HTTP thread). Queue depths that workers report arrive in the snapshot;
    ``probed`` adds the broker probe's readings."""

    def __init__(self, probed: Callable[[], Mapping[str, QueueReading]] = dict,
                 multiproc_dir: str | None = None, window: float = RATE_WINDOW,
                 probe_errors: Callable[[], Mapping[str, int]] = dict):
        self.arbiter: Any = None
        self.registry, self.stats = build_registry(self._snapshot, probed, multiproc_dir, window, probe_errors)

    def _snapshot(self) -> PoolSnapshot:
        if self.arbiter is None:
            raise RuntimeError("metrics: not attached to the master loop yet")
        return self.arbiter.snapshot()

    def attach(self, arbiter: LoopHandle) -> None:
        self.arbiter = arbiter

    def on_report(self, slot: int, pid: int, report: Any) -> None:
        if report.kind == "done":
            self.stats.done(report.seconds or 0.0)
