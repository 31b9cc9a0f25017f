"""The operator's own Prometheus metrics (served on names.OPERATOR_METRICS_PORT).

Counted around each reconcile so a dashboard shows throughput, failures and
latency of the control loop; the default registry is used so other operator
modules can add theirs to the same endpoint.
"""
from __future__ import annotations

import contextlib
import time
from typing import Iterator

from prometheus_client import REGISTRY, Counter, Gauge, Histogram

RECONCILES = Counter("podsup_operator_reconciles_total", "WorkerPool reconciles, by trigger.", ["trigger"])
ERRORS = Counter("podsup_operator_reconcile_errors_total", "Reconciles that raised (kopf retries them).",
                 ["trigger"])
DURATION = Histogram("podsup_operator_reconcile_duration_seconds", "Duration of one reconcile.",
                     buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
WRITES = Counter("podsup_operator_writes_total", "API writes made by reconciles, by kind of write.", ["op"])

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
