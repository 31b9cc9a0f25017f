"""podsup's own exposition writer renders exactly what prometheus-client renders for the same values.

The metric names, types, help texts, labels and values of /metrics are a
contract (README "Metrics"); podsup renders them itself (podsup.plugins.exposition
says why), so here every family podsup exports is rendered both ways, in
both formats, and the bytes compared. The counters and the histogram are
also fed to real prometheus-client Counter/Histogram objects with the same
reports, so the histogram's buckets, count and sum are checked against the
library's own arithmetic, not a copy of ours.
"""
from __future__ import annotations

import math

import prometheus_client
import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.exposition import generate_latest as pc_text
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.exposition import generate_latest as pc_openmetrics
from prometheus_client.utils import floatToGoString

from podsup.core.snapshot import PoolSnapshot, WorkerSnapshot
from podsup.core.states import PoolState, WorkerState
from podsup.plugins import exposition, metrics


class Collected:
    def __init__(self, families):
        self.families = families

    def collect(self):
        return self.families


def as_prometheus_client(families: list[exposition.Family]) -> Collected:
    """The same families as prometheus-client Metric objects."""
    out = []
    for family in families:
        metric = Metric(family.name, family.help, family.type)
        for sample in family.samples:
            metric.add_sample(sample.name, dict(sample.labels), sample.value)
        out.append(metric)
    return Collected(out)


def worker(slot, pid, state, rss=12_345_678, cpu=12.5, uptime=3.25):
    return WorkerSnapshot(id=slot, pid=pid, state=state, started_at=1.0, uptime=uptime, rss_bytes=rss,
                          cpu_percent=cpu, requests=3, qps=0.5, restarts=1, last_exit=None)


def pool() -> PoolSnapshot:
    workers = (worker(0, 100, WorkerState.IDLE), worker(1, 101, WorkerState.BUSY, rss=2 ** 31, cpu=0.1),
               worker(2, None, None), worker(3, 103, WorkerState.STARTING, uptime=123456789.125))
    return PoolSnapshot(version="t", started_at=1_765_000_000.123, uptime=5.0, state=PoolState.RUNNING, desired=4,
                        running=3, ready=True, healthy=True, draining=False, crash_loop=True,
                        exits={"exit 1": 2, "signal SIGKILL": 1, "oom": 1},
                        restarts={"exit": 2, "signal": 1}, workers=workers,
                        queues={'odd "name"\\\n': 7.0}, malformed_reports=3, crash_loop_seconds=1.5,
                        max_workers=8, min_workers=2)


def every_family() -> list[exposition.Family]:
    stats = metrics.ReportStats(window=30, clock=lambda: 100.0)
    for seconds in (0.001, 0.005, 0.0051, 0.3, 1.0, 299.9, 301.0, 1e9, -1.0):
        stats.done(seconds)
    stats.slow_request()
    stats.flush()
    return stats.families() + metrics.pool_families(pool(), 1234567.5,
                                                    {"jobs": (12.0, True), "gone": (None, False), 'odd "name"\\\n': (7.0, None)},
                                                    {"gone": 4})


@pytest.mark.parametrize("openmetrics", [False, True])
def test_every_family_renders_as_prometheus_client_renders_it(openmetrics):
    families = every_family()
    ours = exposition.render_openmetrics(families) if openmetrics else exposition.render_text(families)
    theirs = (pc_openmetrics if openmetrics else pc_text)(as_prometheus_client(families)).decode()
    assert ours == theirs
    assert 'podsup_queue_depth{queue="odd \\"name\\"\\\\\\n"} 7.0\n' in ours  # label values escaped


def test_the_report_fed_families_equal_real_prometheus_client_objects():
    if hasattr(prometheus_client, "disable_created_metrics"):
        prometheus_client.disable_created_metrics()  # podsup exports no *_created series
    registry = CollectorRegistry(auto_describe=False)
    requests = Counter("podsup_requests", "Requests or jobs finished by workers (done reports).", registry=registry)
    duration = Histogram("podsup_request_duration_seconds",
                         "Duration of requests or jobs, as reported by workers (done <seconds>).",
                         buckets=metrics.DURATION_BUCKETS, registry=registry)
    slow = Counter("podsup_slow_requests", "Requests or jobs that took longer than --slow-request.",
                   registry=registry)
    stats = metrics.ReportStats()
    for seconds in (0.0, 0.005, 0.007, 0.25, 0.26, 4.0, 60.0, 1000.0, 0.1 + 0.2):
        requests.inc()
        duration.observe(seconds)
        stats.done(seconds)
    slow.inc()
    stats.slow_request()
    for render in (exposition.render_text, exposition.render_openmetrics):
        theirs = (pc_text if render is exposition.render_text else pc_openmetrics)(registry).decode()
        assert render(stats.families()) == theirs


@pytest.mark.parametrize("value", [0, 1, -1, 0.5, 1e-9, 123456.0, 1234567.0, 12345678.9, 2 ** 53, 1e21, -1e21,
                                   math.inf, -math.inf, math.nan, 0.1 + 0.2, 300.0])
def test_values_are_written_as_go_writes_them(value):
    assert exposition.go_float(value) == floatToGoString(value)


@pytest.mark.parametrize("accept", [
    None, "", "*/*", "text/plain", "text/plain;version=0.0.4", "text/plain; version=1.0.0",
    "text/plain;version=1.0.0;escaping=allow-utf-8",
    "application/openmetrics-text", "application/openmetrics-text; version=0.0.1",
    "application/openmetrics-text;version=1.0.0",
    "application/openmetrics-text;version=1.0.0;escaping=dots",
    "application/openmetrics-text;version=1.0.0;escaping=nonsense",
    # Prometheus 2.x's scrape header, and 3.x's
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;"
    "version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,"
    "*/*;q=0.2",
    "text/html, application/openmetrics-text;version=0.0.1, text/plain;version=0.0.4",
])
def test_content_negotiation_answers_as_prometheus_client_does(accept):
    encoder, content_type = choose_encoder(accept)
    openmetrics, ours = exposition.negotiate(accept)
    assert ours == content_type
    assert openmetrics == ("openmetrics" in getattr(encoder, "func", encoder).__module__)


def test_name_filter_keeps_whole_families_or_named_samples():
    families = every_family()
    kept = exposition.keep_named(families, frozenset({"podsup_requests", "podsup_request_duration_seconds_count",
                                                      "podsup_draining", "nothing"}))
    assert [f.name for f in kept] == ["podsup_requests", "podsup_request_duration_seconds", "podsup_draining"]
    assert [s.name for s in kept[1].samples] == ["podsup_request_duration_seconds_count"]
