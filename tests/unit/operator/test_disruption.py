"""The pool's PodDisruptionBudget: spec.disruption's, or maxUnavailable 1 by
default for a pool that may run more than one pod; and the CRD refuses a
minAvailable that keeps every pod of the smallest pool (it blocks every node
drain)."""
from __future__ import annotations

import pytest

from podsup_operator.builders.pdb import DEFAULT_MAX_UNAVAILABLE, build_pdb
from podsup_operator.validation import InvalidWorkerPool, validate_workerpool

from .conftest import make_pool

AUTO = {"enabled": True, "minReplicas": 2, "maxReplicas": 6, "targets": {"busyWorkersPercent": 70}}
REFUSED = "disruption.minAvailable must be less than autoscaling.minReplicas"


@pytest.mark.parametrize("spec", [{"replicas": 2}, {"replicas": 10}, {"autoscaling": AUTO},
                                  {"autoscaling": {**AUTO, "minReplicas": 0}}],
                         ids=["2 pods", "10 pods", "autoscaled", "scale to zero"])
def test_a_pool_of_several_pods_gets_max_unavailable_one(spec):
    pdb = build_pdb(make_pool(spec))
    assert pdb["spec"]["maxUnavailable"] == DEFAULT_MAX_UNAVAILABLE == 1
    assert "minAvailable" not in pdb["spec"]
    assert pdb["spec"]["selector"]["matchLabels"]


@pytest.mark.parametrize("spec", [{}, {"replicas": 1}, {"replicas": 0},
                                  {"autoscaling": {**AUTO, "minReplicas": 1, "maxReplicas": 1}}],
                         ids=["default", "1 pod", "0 pods", "autoscaled to at most 1"])
def test_a_single_pod_pool_gets_none(spec):
    assert build_pdb(make_pool(spec)) is None


@pytest.mark.parametrize("disruption", [{"minAvailable": 1}, {"minAvailable": "50%"}, {"maxUnavailable": "25%"},
                                        {"maxUnavailable": 3}])
def test_spec_disruption_says_otherwise(disruption):
    for spec in ({"replicas": 1}, {"replicas": 4}, {"autoscaling": AUTO}):
        if disruption.get("minAvailable") == 1 and spec == {"replicas": 1}:
            continue  # refused by the CRD, below
        pdb = build_pdb(make_pool({**spec, "disruption": disruption}))
        assert {k: v for k, v in pdb["spec"].items() if k != "selector"} == disruption


def validate(spec):
    validate_workerpool(make_pool(spec, defaults=False))


@pytest.mark.parametrize("spec", [
    {"autoscaling": AUTO, "disruption": {"minAvailable": 2}},           # == minReplicas (the old PHP example)
    {"autoscaling": AUTO, "disruption": {"minAvailable": 3}},           # above it
    {"autoscaling": {**AUTO, "minReplicas": 0}, "disruption": {"minAvailable": 1}},
    {"replicas": 3, "disruption": {"minAvailable": 3}},
    {"disruption": {"minAvailable": 1}},                                # replicas defaults to 1
], ids=["equal", "above", "scale-to-zero", "fixed equal", "fixed default"])
def test_crd_refuses_a_min_available_that_blocks_every_drain(spec):
    with pytest.raises(InvalidWorkerPool) as info:
        validate(spec)
    assert any(REFUSED in e for e in info.value.errors), info.value.errors


@pytest.mark.parametrize("spec", [
    {"autoscaling": AUTO, "disruption": {"minAvailable": 1}},
    {"autoscaling": AUTO, "disruption": {"minAvailable": "50%"}},       # a percent is the user's call
    {"autoscaling": AUTO, "disruption": {"maxUnavailable": 1}},
    {"replicas": 3, "disruption": {"minAvailable": 2}},
    {"replicas": 0, "disruption": {"minAvailable": 0}},
    {"disruption": {"minAvailable": "100%"}},
])
def test_crd_accepts_budgets_that_let_a_drain_through(spec):
    validate(spec)
