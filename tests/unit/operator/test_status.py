"""Conditions and status, pure."""
from __future__ import annotations

import pytest

from podsup import names
from podsup_operator.conditions import get_condition, set_condition
from podsup_operator.status import compute_status, status_patch

from .conftest import make_pool

T0, T1 = "2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z"


def test_set_condition_appends_and_keeps_transition_time_when_status_unchanged():
    conds = set_condition([], "Ready", "False", "NotYet", "0/1", 1, T0)
    assert conds == [{"type": "Ready", "status": "False", "reason": "NotYet", "message": "0/1",
                      "lastTransitionTime": T0, "observedGeneration": 1}]
    same = set_condition(conds, "Ready", "False", "StillNot", "0/2", 2, T1)
    assert same[0]["lastTransitionTime"] == T0 and same[0]["reason"] == "StillNot"
    assert same[0]["observedGeneration"] == 2
    flipped = set_condition(same, "Ready", "True", "Ok", "1/1", 2, T1)
    assert flipped[0]["lastTransitionTime"] == T1


def test_set_condition_preserves_other_writers_types_and_does_not_mutate():
    theirs = {"type": "ScaledToZero", "status": "True", "reason": "Idle", "message": "",
              "lastTransitionTime": T0}
    before = [theirs]
    after = set_condition(before, "Ready", "True", "Ok", "", None, T1)
    assert after[0] == theirs and after[1]["type"] == "Ready" and "observedGeneration" not in after[1]
    assert before == [theirs]


def test_set_condition_refuses_bad_status():
    with pytest.raises(ValueError, match="True, False or Unknown"):
        set_condition([], "Ready", "yes", "R", "", None, T0)


def deployment(wanted=2, ready=2, updated=2, replicas=2, conditions=()):
    return {"metadata": {"generation": 4}, "spec": {"replicas": wanted},
            "status": {"observedGeneration": 4, "replicas": replicas, "readyReplicas": ready,
                       "updatedReplicas": updated, "conditions": list(conditions)}}


def test_status_numbers_selector_and_workers():
    pool = make_pool({"processes": 4})
    st = compute_status(pool, deployment(ready=2), None, None, T0)
    assert st["replicas"] == 2 and st["readyReplicas"] == 2 and st["updatedReplicas"] == 2
    assert st["workers"] == 8
    assert st["selector"] == f"{names.POOL_LABEL}=jobs"
    assert st["observedGeneration"] == 3
    assert get_condition(st["conditions"], "Ready")["status"] == "True"
    assert get_condition(st["conditions"], "Progressing")["reason"] == "RolloutComplete"
    assert get_condition(st["conditions"], "Degraded")["status"] == "False"
    assert get_condition(st["conditions"], "ScalingActive")["reason"] == "AutoscalingDisabled"


def test_rollout_in_progress_is_not_ready():
    st = compute_status(make_pool({}), deployment(wanted=3, ready=1, updated=1, replicas=3), None, None, T0)
    assert get_condition(st["conditions"], "Ready")["status"] == "False"
    assert get_condition(st["conditions"], "Progressing")["status"] == "True"


def test_missing_deployment_and_apply_error_degrade():
    st = compute_status(make_pool({}), None, None, "422 Deployment is invalid", T0)
    assert get_condition(st["conditions"], "Ready")["reason"] == "DeploymentMissing"
    degraded = get_condition(st["conditions"], "Degraded")
    assert degraded["status"] == "True" and degraded["reason"] == "ApplyFailed"
    assert degraded["message"] == "422 Deployment is invalid"


def test_progress_deadline_exceeded_degrades():
    stuck = {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
             "message": "ReplicaSet has timed out progressing."}
    st = compute_status(make_pool({}), deployment(ready=0, conditions=[stuck]), None, None, T0)
    assert get_condition(st["conditions"], "Progressing")["reason"] == "ProgressDeadlineExceeded"
    assert get_condition(st["conditions"], "Degraded")["reason"] == "ProgressDeadlineExceeded"


def test_scaling_active_mirrors_the_hpa():
    pool = make_pool({"replicas": 2,  # = the Deployment's count: nothing to add to the HPA's word
                      "autoscaling": {"enabled": True, "maxReplicas": 4, "targets": {"busyWorkersPercent": 50}}})
    pending = compute_status(pool, deployment(), None, None, T0)
    assert get_condition(pending["conditions"], "ScalingActive")["status"] == "Unknown"
    hpa = {"status": {"conditions": [{"type": "ScalingActive", "status": "False", "reason": "FailedGetPodsMetric",
                                      "message": "no metrics"}]}}
    st = compute_status(pool, deployment(), hpa, None, T0)
    cond = get_condition(st["conditions"], "ScalingActive")
    assert (cond["status"], cond["reason"], cond["message"]) == ("False", "FailedGetPodsMetric", "no metrics")


def test_kubectl_scale_under_the_hpa_is_reported_as_not_used():
    auto = {"enabled": True, "maxReplicas": 9, "targets": {"busyWorkersPercent": 50}}
    hpa = {"status": {"conditions": [{"type": "ScalingActive", "status": "True", "reason": "ValidMetricFound",
                                      "message": "ok"}]}}
    dep = deployment()
    dep["spec"]["replicas"] = 3
    scaled = compute_status(make_pool({"replicas": 5, "autoscaling": auto}), dep, hpa, None, T0)
    message = get_condition(scaled["conditions"], "ScalingActive")["message"]
    assert message.startswith("ok; spec.replicas (5) is not used while autoscaling is on (the HPA keeps 3")
    same = compute_status(make_pool({"replicas": 3, "autoscaling": auto}), dep, hpa, None, T0)
    assert get_condition(same["conditions"], "ScalingActive")["message"] == "ok"


def test_unchanged_status_gives_an_empty_patch_and_keeps_other_conditions():
    pool = make_pool({})
    foreign = {"type": "MetricsAvailable", "status": "True", "reason": "Ok", "message": "",
               "lastTransitionTime": T0}
    pool["status"] = {"conditions": [foreign], "queueDepth": 12}
    first = compute_status(pool, deployment(), None, None, T0)
    assert first["conditions"][0] == foreign
    pool["status"] = {**pool["status"], **first}
    again = compute_status(pool, deployment(), None, None, T1)
    assert status_patch(pool["status"], again) == {}
    pool["status"]["readyReplicas"] = 1
    assert status_patch(pool["status"], compute_status(pool, deployment(), None, None, T1)) == {"readyReplicas": 2}


def test_workers_of_a_dynamic_pool_come_from_the_live_scrape_else_the_lower_bound():
    pool = make_pool({"processes": 4, "dynamicProcesses": {"min": 2, "max": 16}})
    st = compute_status(pool, deployment(ready=2), None, None, T0)
    assert st["workers"] == 4  # no live figures yet: min x ready pods, not processes x ready pods (8)
    ready_message = get_condition(st["conditions"], "Ready")["message"]
    assert ready_message == "2/2 replicas ready, 2-16 workers per pod (dynamicProcesses)"

    pool["status"] = {"live": {"pods": 2, "workers": {"desired": 23, "running": 23, "busy": 20, "idle": 3}}}
    st = compute_status(pool, deployment(ready=2), None, None, T0)
    assert st["workers"] == 23
    assert get_condition(st["conditions"], "Ready")["message"] == ready_message  # no live count in it

    st = compute_status(pool, deployment(wanted=3, ready=3), None, None, T0)
    assert st["workers"] == 6  # the scrape read 2 of 3 ready pods: the bound again
    fixed = make_pool({"processes": 4})
    fixed["status"] = pool["status"]
    assert compute_status(fixed, deployment(ready=2), None, None, T0)["workers"] == 8  # fixed: processes x pods
