"""The operator's per-pool gauges (what the dashboard and the alerts compare):
replicas from the Deployment, the HPA's counts and targets, and no series
left behind by a pool that is gone."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from podsup_operator.builders import build_hpa
from podsup_operator.metrics import PoolCollector, hpa_targets

from .conftest import make_pool


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def scrape(collector) -> dict[tuple, float]:
    registry = CollectorRegistry()
    registry.register(collector)
    out = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in family.samples:
            out[(s.name, s.labels.get("workerpool"), s.labels.get("state") or s.labels.get("metric"))] = s.value
    return out


AUTO = {"enabled": True, "maxReplicas": 8, "targets": {"busyWorkersPercent": 70}}


def test_replicas_hpa_and_targets_of_a_pool():
    clock = Clock()
    collector = PoolCollector(max_age=180, clock=clock)
    pool = make_pool({"autoscaling": AUTO})
    deployment = {"spec": {"replicas": 3}, "status": {"replicas": 4, "readyReplicas": 2, "updatedReplicas": 1}}
    hpa = build_hpa(pool)
    hpa["status"] = {"desiredReplicas": 5, "currentReplicas": 3}
    collector.record(pool, deployment, hpa)
    got = scrape(collector)
    assert got[("podsup_operator_pool_replicas", "jobs", "desired")] == 3
    assert got[("podsup_operator_pool_replicas", "jobs", "current")] == 4
    assert got[("podsup_operator_pool_replicas", "jobs", "ready")] == 2
    assert got[("podsup_operator_pool_hpa_replicas", "jobs", "max")] == 8
    assert got[("podsup_operator_pool_hpa_replicas", "jobs", "desired")] == 5
    assert got[("podsup_operator_pool_hpa_target", "jobs", "podsup_busy_ratio")] == 0.7


def test_a_pool_not_reconciled_for_max_age_is_dropped():
    clock = Clock()
    collector = PoolCollector(max_age=180, clock=clock)
    collector.record(make_pool({}, name="gone"), {"spec": {"replicas": 1}, "status": {}}, None)
    clock.now += 100
    collector.record(make_pool({}, name="live"), {"spec": {"replicas": 1}, "status": {}}, None)
    clock.now += 100
    pools = {key[1] for key in scrape(collector)}
    assert pools == {"live"}


def test_hpa_targets_parse_quantities_and_utilisation():
    pool = make_pool({"queue": {"type": "redis", "name": "q", "url": "redis://r:6379/0"},
                      "resources": {"requests": {"cpu": "1"}},
                      "autoscaling": {"enabled": True, "maxReplicas": 5, "targets": {
                          "queueDepthPerReplica": 20, "busyWorkersPercent": 70, "cpuPercent": 80,
                          "requestsPerSecondPerReplica": 1.5}}})
    assert hpa_targets(build_hpa(pool)["spec"]) == {"podsup_queue_depth": 20.0, "podsup_requests_per_second": 1.5,
                                                    "podsup_busy_ratio": 0.7, "cpu": 80.0}
