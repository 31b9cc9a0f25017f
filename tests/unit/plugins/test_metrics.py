"""podsup's metric families from snapshots and reports, the cached page,
parsed by prometheus-client and linted by the real promtool."""
from __future__ import annotations

import shutil
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families

from podsup import names
from podsup.core.snapshot import PoolSnapshot, WorkerSnapshot
from podsup.core.states import PoolState, WorkerState
from podsup.plugins import metrics


def worker(slot: int, state: WorkerState | None, pid: int | None = 100) -> WorkerSnapshot:
    return WorkerSnapshot(id=slot, pid=pid if state else None, state=state, started_at=1.0, uptime=5.0,
                          rss_bytes=1000 + slot, cpu_percent=50.0, requests=3, qps=0.5, restarts=1,
                          last_exit=None)


def snap(**over) -> PoolSnapshot:
    data = dict(version="0.1.0", started_at=1700000000.0, uptime=5.0, state=PoolState.RUNNING, desired=4,
                running=3, ready=True, healthy=True, draining=False, crash_loop=False,
                exits={"exit 1": 2, "signal SIGKILL": 1}, restarts={"rss": 1},
                workers=(worker(0, WorkerState.BUSY), worker(1, WorkerState.IDLE), worker(2, WorkerState.STARTING),
                         worker(3, None)), queues={"reported": 7.0})
    data.update(over)
    return PoolSnapshot(**data)


class Loop:
    """The LoopHandle the metrics read: ``snapshot`` and ``generation`` (None: no caching)."""

    def __init__(self, get, generation=None):
        self.get, self.generation, self.snapshots = get, generation, 0

    def snapshot(self, measure=True, usage_max_age=0.0):
        self.snapshots += 1
        return self.get()


def build_registry(get, queues=dict, probe_errors=dict):
    """The extension, attached to a fake loop, and its report stats."""
    ext = metrics.MetricsExtension(probed=queues, probe_errors=probe_errors)
    ext.attach(Loop(get))
    return ext, ext.stats


def generate_latest(ext) -> bytes:
    return ext.exposition(None, False)[1]


def samples(ext) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(generate_latest(ext).decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_rolling_rate_window():
    rate = metrics.RollingRate(window=10, start=0.0)
    for t in range(20):
        rate.add(float(t) + 0.5, 2)
    assert rate.rate(19.9) == pytest.approx(20 / 10)       # only the last 10 one-second buckets count
    assert rate.rate(40.0) == 0.0                           # all expired


def test_rolling_rate_young_pod_divides_by_elapsed_time():
    rate = metrics.RollingRate(window=30, start=100.0)
    for _ in range(10):
        rate.add(101.0)
    assert rate.rate(102.0) == pytest.approx(10 / 2)
    assert rate.rate(100.2) == pytest.approx(10 / 1)        # at least one second


def test_busy_ratio_counts_running_workers_only():
    assert metrics.busy_ratio(snap()) == pytest.approx(1 / 3)
    assert metrics.busy_ratio(snap(workers=())) == 0.0
    stopping = snap(workers=(worker(0, WorkerState.BUSY), worker(1, WorkerState.STOPPING)))
    assert metrics.busy_ratio(stopping) == 1.0


def test_pool_families_from_a_snapshot():
    registry, stats = build_registry(lambda: snap(), queues=lambda: {"jobs": (12.0, True), "gone": (None, False)},
                                             probe_errors=lambda: {"jobs": 0, "gone": 4})
    got = samples(registry)
    assert got[("podsup_workers", (("state", "busy"),))] == 1
    assert got[("podsup_workers", (("state", "stopping"),))] == 0
    assert got[("podsup_workers_desired", ())] == 4
    assert got[("podsup_worker_restarts_total", (("reason", "rss"),))] == 1
    assert got[("podsup_worker_restarts_total", (("reason", "heartbeat"),))] == 0  # every reason is present
    assert got[("podsup_worker_exits_total", (("code", "1"), ("kind", "exit")))] == 2
    assert got[("podsup_worker_exits_total", (("code", "SIGKILL"), ("kind", "signal")))] == 1
    assert got[("podsup_worker_rss_bytes", (("worker", "2"),))] == 1002
    assert ("podsup_worker_rss_bytes", (("worker", "3"),)) not in got        # an empty slot has no process
    assert got[("podsup_worker_cpu_ratio", (("worker", "0"),))] == 0.5
    assert got[(names.METRIC_BUSY_RATIO, ())] == pytest.approx(1 / 3)
    assert got[(names.METRIC_QUEUE_DEPTH, (("queue", "jobs"),))] == 12
    assert got[(names.METRIC_QUEUE_DEPTH, (("queue", "reported"),))] == 7      # from a worker's queue report
    assert (names.METRIC_QUEUE_DEPTH, (("queue", "gone"),)) not in got        # broker down: series absent
    assert got[("podsup_queue_up", (("queue", "gone"),))] == 0
    assert got[("podsup_queue_up", (("queue", "jobs"),))] == 1
    assert ("podsup_queue_up", (("queue", "reported"),)) not in got
    assert got[("podsup_queue_probe_errors_total", (("queue", "gone"),))] == 4
    assert got[("podsup_draining", ())] == 0 and got[("podsup_crash_loop", ())] == 0
    assert got[("podsup_reports_malformed_total", ())] == getattr(snap(), "malformed_reports", 0)


def test_a_recycled_slot_is_one_series():
    old = worker(1, WorkerState.STOPPING)
    new = WorkerSnapshot(id=1, pid=200, state=WorkerState.STARTING, started_at=9.0, uptime=0.5, rss_bytes=500,
                         cpu_percent=10.0, requests=0, qps=0.0, restarts=2, last_exit=None)
    registry, _ = build_registry(lambda: snap(workers=(old, new)))
    got = samples(registry)  # the parser would refuse nothing, but Prometheus refuses duplicate series
    assert got[("podsup_worker_rss_bytes", (("worker", "1"),))] == 1001 + 500
    assert got[("podsup_worker_cpu_ratio", (("worker", "1"),))] == pytest.approx(0.6)
    assert got[("podsup_worker_uptime_seconds", (("worker", "1"),))] == 0.5
    text = generate_latest(registry).decode()
    assert text.count('podsup_worker_rss_bytes{worker="1"}') == 1


def test_snapshot_is_taken_at_every_scrape():
    state = {"snap": snap()}
    registry, _ = build_registry(lambda: state["snap"])
    assert samples(registry)[("podsup_draining", ())] == 0
    state["snap"] = snap(draining=True, crash_loop=True)
    got = samples(registry)
    assert got[("podsup_draining", ())] == 1 and got[("podsup_crash_loop", ())] == 1


def test_report_stats_feed_counter_histogram_and_rate():
    clock = {"t": 1000.0}
    registry, stats = build_registry(lambda: snap())
    stats.clock = lambda: clock["t"]
    stats._rate = metrics.RollingRate(window=30, start=990.0)
    for seconds in (0.002, 0.3, 0.3, 42.0):
        stats.done(seconds)
    stats.flush()  # once per batch of reports
    got = samples(registry)
    assert got[("podsup_requests_total", ())] == 4
    assert got[("podsup_request_duration_seconds_count", ())] == 4
    assert got[("podsup_request_duration_seconds_bucket", (("le", "0.005"),))] == 1
    assert got[("podsup_request_duration_seconds_bucket", (("le", "0.5"),))] == 3
    assert got[("podsup_request_duration_seconds_bucket", (("le", "60.0"),))] == 4
    assert got[(names.METRIC_REQUESTS_PER_SECOND, ())] == pytest.approx(4 / 10)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus) not installed")
def test_promtool_check_metrics_passes():
    registry, stats = build_registry(lambda: snap(), queues=lambda: {"jobs": (3.0, True)},
                                             probe_errors=lambda: {"jobs": 1})
    stats.done(0.1)
    text = generate_latest(registry)
    result = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, timeout=60)
    assert result.returncode == 0, (result.stdout + result.stderr).decode()


def test_the_page_is_rendered_again_only_when_the_loop_moved_or_it_is_old():
    state = {"snap": snap()}
    ext = metrics.MetricsExtension(max_age=3600)
    loop = Loop(lambda: state["snap"], generation=1)
    ext.attach(loop)
    first = generate_latest(ext)
    state["snap"] = snap(draining=True)
    assert generate_latest(ext) == first and loop.snapshots == 1      # the loop did not move: the cached page
    loop.generation = 2
    assert b"podsup_draining 1.0" in generate_latest(ext) and loop.snapshots == 2
    ext.max_age = 0.0                                                  # too old: rendered again
    generate_latest(ext)
    assert loop.snapshots == 3
