"""status.live (pure): the pods' figures summed, the hysteresis that keeps a
quiet pool unwritten, the 10-minute restart window, the per-pool throttle,
and the reconcile's status patch leaving the poller's figures alone."""
from __future__ import annotations

from podsup_operator import live_status as ls
from podsup_operator.metrics_api.sources.figures import PodFigures, parse_figures
from podsup_operator.status import compute_status, status_patch


def test_aggregate_sums_the_pods():
    a = PodFigures(desired=4, running=4, busy=3, idle=1, requests_per_second=2.5, queue_depth=7)
    b = PodFigures(desired=4, running=3, busy=0, idle=3, requests_per_second=0.25, queue_depth=9)
    live = ls.aggregate([a, b], restarts=2, crash_looping=1)
    assert live == {"pods": 2, "workers": {"desired": 8, "running": 7, "busy": 3, "idle": 4},
                    "requestsPerSecond": 2.75, "busyRatio": 0.429, "restarts": 2, "queueDepth": 9,
                    "crashLoopingPods": 1}
    assert ls.aggregate([], 0) == {"pods": 0, "workers": {"desired": 0, "running": 0, "busy": 0, "idle": 0},
                                   "requestsPerSecond": 0.0, "busyRatio": 0.0, "restarts": 0,
                                   "crashLoopingPods": 0}


def test_changes_inside_the_hysteresis_are_not_written():
    old = ls.aggregate([PodFigures(desired=4, running=4, busy=2, idle=2, requests_per_second=20.0)], 0)
    assert not ls.changed(old, dict(old))
    assert not ls.changed(old, {**old, "requestsPerSecond": 21.9})   # within 10 %
    assert ls.changed(old, {**old, "requestsPerSecond": 22.1})
    low = {**old, "requestsPerSecond": 1.0}
    assert not ls.changed(low, {**low, "requestsPerSecond": 1.4})    # within 0.5/s
    assert not ls.changed(old, {**old, "busyRatio": 0.54})
    assert ls.changed(old, {**old, "busyRatio": 0.56})
    assert ls.changed(old, {**old, "workers": {**old["workers"], "busy": 3}})
    assert ls.changed(old, {**old, "restarts": 1})
    assert ls.changed(old, {**old, "crashLoopingPods": 1})
    assert ls.changed(None, old) and ls.changed({}, old)


def test_restarts_count_the_last_ten_minutes_per_pod():
    w = ls.RestartWindow(window=600)
    assert w.observe(0, {"a": 5, "b": 0}) == 0      # first seen: a baseline, not 5 new restarts
    assert w.observe(100, {"a": 7, "b": 1}) == 3
    # at 650 the window starts at 50: a's two restarts happened between 0 and
    # 100, so they may be inside it and still count; b's one as well
    assert w.observe(650, {"a": 7, "b": 1}) == 3
    assert w.observe(701, {"a": 8, "b": 1}) == 1  # the sample of 100 is the baseline now
    assert w.observe(710, {"a": 2}) == 2          # a's podsup restarted (counter reset); b is gone
    assert w.observe(720, {"a": 2, "b": 4}) == 2  # b is new again: a baseline


def test_the_throttle_writes_changes_at_most_every_interval():
    t = ls.Throttle(interval=10)
    one = ls.aggregate([PodFigures(running=2, busy=1, idle=1)], 0)
    two = ls.aggregate([PodFigures(running=2, busy=2)], 0)
    assert t.due({}, one, 100) == one
    t.wrote(100)
    assert t.due(one, one, 200) is None            # unchanged: never
    assert t.due(one, two, 109.9) is None          # changed, too soon
    assert t.due(one, two, 110) == two
    assert t.due(one, None, 500) is None           # unknown (no pod read): nothing


def test_parse_figures_reads_a_podsup_page():
    text = """# TYPE podsup_workers gauge
podsup_workers{state="starting"} 1
podsup_workers{state="idle"} 2
podsup_workers{state="busy"} 3
podsup_workers{state="stopping"} 0
# TYPE podsup_workers_desired gauge
podsup_workers_desired 6
# TYPE podsup_workers_running gauge
podsup_workers_running 6
# TYPE podsup_worker_restarts counter
podsup_worker_restarts_total{reason="exit"} 2
podsup_worker_restarts_total{reason="rss"} 1
# TYPE podsup_worker_exits counter
podsup_worker_exits_total{kind="exit",code="1"} 2
podsup_worker_exits_total{kind="signal",code="SIGKILL"} 0
# TYPE podsup_worker_rss_bytes gauge
podsup_worker_rss_bytes{worker="1"} 1000
podsup_worker_rss_bytes{worker="2"} 500
# TYPE podsup_requests_per_second gauge
podsup_requests_per_second 4.5
# TYPE podsup_queue_depth gauge
podsup_queue_depth{queue="jobs"} 12
"""
    f = parse_figures(text)
    assert (f.starting, f.idle, f.busy, f.desired, f.running) == (1, 2, 3, 6, 6)
    assert f.restarts == 3 and f.exits == {"exit 1": 2} and f.rss_bytes == 1500
    assert f.requests_per_second == 4.5 and f.queue_depth == 12
    assert parse_figures("").queue_depth is None


def test_a_resync_leaves_the_live_figures_alone():
    pool = {"apiVersion": "podsup.io/v1alpha1", "kind": "WorkerPool",
            "metadata": {"name": "orders", "namespace": "shop", "generation": 2},
            "spec": {"image": "x", "command": ["w"], "processes": 2, "replicas": 1}}
    deployment = {"metadata": {"generation": 1}, "spec": {"replicas": 1},
                  "status": {"observedGeneration": 1, "replicas": 1, "readyReplicas": 1, "updatedReplicas": 1}}
    now = "2026-01-01T00:00:00Z"
    pool["status"] = {**compute_status(pool, deployment, None, None, now),
                      "live": ls.aggregate([PodFigures(running=2, busy=1, idle=1)], 0)}
    assert status_patch(pool["status"], compute_status(pool, deployment, None, None, now)) == {}


def test_one_parse_gives_the_hpa_values_and_the_figures():
    import pytest

    from podsup_operator.metrics_api.sources.figures import parse_page
    from podsup_operator.metrics_api.sources.pods import PodScraper, parse_exposition

    text = ("# TYPE podsup_busy_ratio gauge\npodsup_busy_ratio 0.5\n"
            "# TYPE podsup_workers gauge\npodsup_workers{state=\"busy\"} 1\n")
    values, figures = parse_page(text, PodScraper.METRICS)
    assert values == parse_exposition(text, PodScraper.METRICS) == {"podsup_busy_ratio": 0.5}
    assert figures.busy == 1
    with pytest.raises(ValueError):
        parse_page("this is { not exposition", PodScraper.METRICS)
