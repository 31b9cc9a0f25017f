"""The operator's own Prometheus metrics (served on names.OPERATOR_METRICS_PORT).

Counted around each reconcile so a dashboard shows throughput, failures and
latency of the control loop; the default registry is used so other operator
modules can add theirs to the same endpoint.
"""
from __future__ import annotations

import contextlib
import threading
import time
from typing import Iterator

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily

RECONCILES = Counter("podsup_operator_reconciles_total", "WorkerPool reconciles, by trigger.", ["trigger"])
ERRORS = Counter("podsup_operator_reconcile_errors_total", "Reconciles that raised (kopf retries them).",
                 ["trigger"])
DURATION = Histogram("podsup_operator_reconcile_duration_seconds", "Duration of one reconcile.",
                     buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
WRITES = Counter("podsup_operator_writes_total", "API writes made by reconciles, by kind of write.", ["op"])



class PoolCollector:
    """Per pool, what the dashboard compares: the Deployment's desired,
    current, ready and updated replicas and the HPA's min/max/desired/current,
    as the last reconcile saw them (labels namespace, workerpool). A pool not
    reconciled for ``max_age`` seconds (deleted: the operator has no finalizer
    to hear of it; the periodic resync refreshes every live one each minute)
    is dropped, so deleted pools leave no series behind."""

    def __init__(self, max_age: float = 180.0, clock=time.monotonic):
        self.max_age = max_age
        self.clock = clock
        self._pools: dict[tuple[str, str], tuple] = {}
        self._lock = threading.Lock()

    def record(self, pool: dict, deployment: dict | None, hpa: dict | None) -> None:
        meta = pool.get("metadata") or {}
        replicas: dict[str, float] = {}
        if deployment:
            spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
            replicas = {"desired": spec.get("replicas", 1), "current": status.get("replicas", 0),
                        "ready": status.get("readyReplicas", 0), "updated": status.get("updatedReplicas", 0)}
        autoscaler: dict[str, float] = {}
        targets: dict[str, float] = {}
        if hpa:
            spec, status = hpa.get("spec") or {}, hpa.get("status") or {}
            autoscaler = {"min": spec.get("minReplicas", 1), "max": spec.get("maxReplicas", 0),
                          "desired": status.get("desiredReplicas", 0), "current": status.get("currentReplicas", 0)}
            targets = hpa_targets(spec)
        with self._lock:
            self._pools[(meta.get("namespace", ""), meta.get("name", ""))] = (
                self.clock(), replicas, autoscaler, targets)

    def collect(self):
        replicas = GaugeMetricFamily("podsup_operator_pool_replicas",
                                     "A WorkerPool's Deployment replicas: desired (spec), current, ready, updated.",
                                     labels=["namespace", "workerpool", "state"])
        hpa = GaugeMetricFamily("podsup_operator_pool_hpa_replicas",
                                "A WorkerPool's HPA: min, max, desired and current replicas.",
                                labels=["namespace", "workerpool", "state"])
        target = GaugeMetricFamily("podsup_operator_pool_hpa_target",
                                   "A WorkerPool's HPA target per metric: the value per replica it scales to "
                                   "(busy ratio 0..1; CPU in percent of requests).",
                                   labels=["namespace", "workerpool", "metric"])
        now = self.clock()
        with self._lock:
            for key in [k for k, (seen, *_) in self._pools.items() if now - seen > self.max_age]:
                del self._pools[key]
            pools = sorted(self._pools.items())
        for (namespace, name), (_, reps, auto, targets) in pools:
            for state, value in reps.items():
                replicas.add_metric([namespace, name, state], value)
            for state, value in auto.items():
                hpa.add_metric([namespace, name, state], value)
            for metric, value in targets.items():
                target.add_metric([namespace, name, metric], value)
        return [replicas, hpa, target]


def hpa_targets(hpa_spec: dict) -> dict[str, float]:
    """metric name -> target of an autoscaling/v2 HPA spec (AverageValue or
    Utilization)."""
    from kubernetes.utils import parse_quantity

    out: dict[str, float] = {}
    for entry in hpa_spec.get("metrics") or []:
        kind = entry.get("type", "")  # Pods -> pods, External -> external, Resource -> resource
        source = entry.get(kind[:1].lower() + kind[1:]) or {}
        name = (source.get("metric") or {}).get("name") or source.get("name")
        target = source.get("target") or {}
        if not name:
            continue
        if "averageValue" in target:
            out[name] = float(parse_quantity(str(target["averageValue"])))
        elif "averageUtilization" in target:
            out[name] = float(target["averageUtilization"])
        elif "value" in target:
            out[name] = float(parse_quantity(str(target["value"])))
    return out


POOLS = PoolCollector()
REGISTRY.register(POOLS)

# The metrics API (metrics_api.lifecycle): exported only when it is enabled,
# so --no-metrics-api shows no "down" metric to alert on.
METRICS_API_UP = Gauge("podsup_operator_metrics_api_up",
                       "1 while the metrics API listens; 0 while it cannot start (retried with backoff).",
                       registry=None)
METRICS_API_START_FAILURES = Counter("podsup_operator_metrics_api_start_failures_total",
                                     "Failed attempts to start the metrics API (port taken, certificate unusable, ...).",
                                     registry=None)
_metrics_api_registered = False


def enable_metrics_api_metrics() -> None:
    """Export the metrics API's metrics (once; the operator may start again in tests)."""
    global _metrics_api_registered
    if not _metrics_api_registered:
        REGISTRY.register(METRICS_API_UP)
        REGISTRY.register(METRICS_API_START_FAILURES)
        _metrics_api_registered = True


@contextlib.contextmanager
def observe(trigger: str) -> Iterator[None]:
    RECONCILES.labels(trigger=trigger).inc()
    start = time.perf_counter()
    try:
        yield
    except BaseException:
        ERRORS.labels(trigger=trigger).inc()
        raise
    finally:
        DURATION.observe(time.perf_counter() - start)


def serve(port: int, addr: str = "0.0.0.0") -> None:
    """Start the /metrics HTTP server in a daemon thread."""
    from prometheus_client import start_http_server

    start_http_server(port, addr=addr)
