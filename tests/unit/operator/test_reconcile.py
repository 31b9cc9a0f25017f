"""The reconcile loop at our own seam (ClusterApi): decisions, errors, Events.

kmock covers the wiring end to end (tests/operator); these cover the branches
that are awkward to provoke there. ``FakeApi`` stands in for ClusterApi only —
the class the operator owns — storing objects as the API server would return
them after an apply.
"""
from __future__ import annotations

import copy
import json

import pytest

from podsup import names
from podsup_operator.apply import HANDOVER_FIELD_MANAGER
from podsup_operator.reconcile import (ChildConflict, ChildrenFailed, describe_error, is_subset, owns_replicas,
                                       reconcile)

from .conftest import make_pool

IMAGE = "op:1"


class ApiDown(Exception):
    pass


class Conflict(Exception):
    status = 409


class Invalid(Exception):
    """What the kubernetes client raises for a 422 (status and the Status body)."""
    status = 422

    def __init__(self, kind: str):
        super().__init__("Unprocessable Entity")
        self.body = json.dumps({"kind": "Status", "status": "Failure", "reason": "Invalid", "code": 422,
                                "message": f'{kind}.apps "jobs" is invalid: spec.template.spec.containers[0].'
                                           f'resources.requests: Invalid value: "2": must be less than or equal '
                                           f'to cpu limit of 1'})


class FakeApi:
    def __init__(self, fail_kind: str | None = None, refuse: dict[str, Exception] | None = None):
        self.objects: dict[tuple[str, str], dict] = {}
        self.calls: list[tuple[str, str]] = []
        self.fail_kind = fail_kind
        #: kind → the error its apply raises (a refusal by the API server)
        self.refuse = refuse or {}
        self.status_patches: list[dict] = []
        self.conflicts = 0
        self.fresh_pool: dict | None = None

    def get(self, api_version, kind, namespace, name):
        self.calls.append(("get", kind))
        obj = self.objects.get((kind, name))
        return copy.deepcopy(obj) if obj else None

    def apply(self, obj, manager=names.FIELD_MANAGER):
        if manager != names.FIELD_MANAGER:  # a partial apply by another manager: merged into the live object
            self.calls.append(("apply", obj["kind"], manager, copy.deepcopy(obj["spec"])))
            self.objects[(obj["kind"], obj["metadata"]["name"])]["spec"].update(copy.deepcopy(obj["spec"]))
            return {}
        self.calls.append(("apply", obj["kind"]))
        if obj["kind"] == self.fail_kind:
            raise ApiDown(f"{obj['kind']} refused")
        if obj["kind"] in self.refuse:
            raise self.refuse[obj["kind"]]
        stored = copy.deepcopy(obj)
        stored["metadata"]["uid"] = f"uid-{obj['kind']}"
        stored.setdefault("status", {})
        self.objects[(obj["kind"], obj["metadata"]["name"])] = stored
        return copy.deepcopy(stored)

    def delete(self, api_version, kind, namespace, name, uid=None):
        self.calls.append(("delete", kind))
        self.objects.pop((kind, name), None)

    def patch_status(self, pool, status):
        self.calls.append(("patch_status", "WorkerPool"))
        if self.conflicts:
            self.conflicts -= 1
            raise Conflict()
        self.status_patches.append(status)
        return {}

    def scale(self, namespace, name, replicas):
        self.calls.append(("scale", "Deployment"))
        self.objects[("Deployment", name)]["spec"]["replicas"] = replicas
        return {"spec": {"replicas": replicas}}

    def get_pool(self, namespace, name):
        self.calls.append(("get", "WorkerPool"))
        return copy.deepcopy(self.fresh_pool)

    def writes(self):
        return [c for c in self.calls if c[0] != "get"]


def events_recorder():
    events = []
    return events, lambda type_, reason, message: events.append((type_, reason, message))


def test_first_reconcile_creates_children_and_reports_them():
    api, (events, emit) = FakeApi(), events_recorder()
    outcome = reconcile(make_pool({}), api, IMAGE, emit=emit)
    assert outcome.applied == ["Deployment", "Service"]
    assert ("Normal", "Created", "Created Deployment jobs") in events
    assert api.status_patches and "conditions" in api.status_patches[0]


def test_second_reconcile_with_nothing_changed_writes_nothing():
    api = FakeApi()
    pool = make_pool({"disruption": {"minAvailable": 1}})
    reconcile(pool, api, IMAGE)
    pool["status"] = api.status_patches[-1]
    api.calls.clear()
    outcome = reconcile(pool, api, IMAGE)
    assert outcome.writes == 0 and api.writes() == []


def test_spec_change_is_applied_as_update():
    api, (events, emit) = FakeApi(), events_recorder()
    reconcile(make_pool({"replicas": 2}), api, IMAGE)  # 2 and 4 pods: the same default PDB
    outcome = reconcile(make_pool({"replicas": 4}), api, IMAGE, emit=emit)
    assert outcome.applied == ["Deployment"]
    assert api.objects[("Deployment", "jobs")]["spec"]["replicas"] == 4
    assert any(reason == "Updated" for _, reason, _ in events)


def test_child_not_in_spec_is_deleted_only_if_we_control_it():
    api = FakeApi()
    auto = {"enabled": True, "maxReplicas": 3, "targets": {"busyWorkersPercent": 60}}
    reconcile(make_pool({"autoscaling": auto}), api, IMAGE)
    assert ("HorizontalPodAutoscaler", "jobs") in api.objects
    outcome = reconcile(make_pool({}), api, IMAGE)  # one pod: no HPA, and no default PDB either
    assert outcome.deleted == ["HorizontalPodAutoscaler", "PodDisruptionBudget"]

    foreign = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "jobs"}}
    api.objects[("PodDisruptionBudget", "jobs")] = foreign
    assert reconcile(make_pool({}), api, IMAGE).deleted == []
    assert ("PodDisruptionBudget", "jobs") in api.objects


def condition(status_patch: dict, type_: str) -> dict:
    return next(c for c in status_patch["conditions"] if c["type"] == type_)


def test_foreign_child_is_a_conflict_with_warning_and_degraded_status():
    api, (events, emit) = FakeApi(), events_recorder()
    api.objects[("Deployment", "jobs")] = {"apiVersion": "apps/v1", "kind": "Deployment",
                                           "metadata": {"name": "jobs"}, "spec": {}}
    with pytest.raises(ChildrenFailed) as info:
        reconcile(make_pool({}), api, IMAGE, emit=emit)
    assert [kind for kind, _ in info.value.failures] == ["Deployment"]
    assert isinstance(info.value.failures[0][1], ChildConflict)
    assert ("Warning", "ApplyFailed") in [e[0:2] for e in events]
    degraded = condition(api.status_patches[-1], "Degraded")
    assert degraded["status"] == "True" and degraded["message"] == (
        "Deployment: Deployment prod/jobs exists and is not controlled by this WorkerPool; delete or rename it")
    assert ("apply", "Deployment") not in api.calls
    assert ("apply", "Service") in api.calls, "the other children are still applied"
    ready = condition(api.status_patches[-1], "Ready")
    assert ready["reason"] == "DeploymentMissing", "a foreign Deployment is not reported as the pool's"


def test_api_error_is_raised_for_retry_after_recording_it():
    api, (events, emit) = FakeApi(fail_kind="Service"), events_recorder()
    with pytest.raises(ChildrenFailed, match="Service: ApiDown: Service refused"):
        reconcile(make_pool({}), api, IMAGE, emit=emit)
    assert ("Warning", "ApplyFailed", "Service jobs: ApiDown: Service refused") in events
    assert condition(api.status_patches[-1], "Degraded")["reason"] == "ApplyFailed"


def test_a_refused_child_degrades_the_pool_the_others_are_applied_and_it_recovers():
    """A 422 from the API server for the Deployment: Degraded=True with the API
    server's message and a Warning Event; Service and PDB applied all the same;
    once the Deployment applies, Degraded is False again."""
    api, (events, emit) = FakeApi(refuse={"Deployment": Invalid("Deployment")}), events_recorder()
    pool = make_pool({"disruption": {"maxUnavailable": 1}})
    with pytest.raises(ChildrenFailed) as info:
        reconcile(pool, api, IMAGE, emit=emit, now=lambda: "2026-01-01T00:00:00Z")
    message = ('422 Deployment.apps "jobs" is invalid: spec.template.spec.containers[0].resources.requests: '
               'Invalid value: "2": must be less than or equal to cpu limit of 1')
    assert str(info.value) == f"Deployment: {message}"
    assert ("Service", "jobs") in api.objects and ("PodDisruptionBudget", "jobs") in api.objects
    assert ("Deployment", "jobs") not in api.objects
    assert ("Warning", "ApplyFailed", f"Deployment jobs: {message}") in events
    degraded = condition(api.status_patches[-1], "Degraded")
    assert (degraded["status"], degraded["reason"], degraded["message"]) == ("True", "ApplyFailed",
                                                                          f"Deployment: {message}")
    pool["status"] = api.status_patches[-1]

    del api.refuse["Deployment"]  # e.g. the LimitRange was fixed
    reconcile(pool, api, IMAGE, emit=emit, now=lambda: "2026-01-01T00:01:00Z")
    degraded = condition(api.status_patches[-1], "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("False", "AsExpected")
    assert degraded["lastTransitionTime"] == "2026-01-01T00:01:00Z"
    assert ("Deployment", "jobs") in api.objects


def test_every_refused_child_is_reported_not_only_the_first():
    refuse = {"Deployment": Invalid("Deployment"), "PodDisruptionBudget": ApiDown("forbidden")}
    api, (events, emit) = FakeApi(refuse=refuse), events_recorder()
    with pytest.raises(ChildrenFailed) as info:
        reconcile(make_pool({"disruption": {"minAvailable": 1}}), api, IMAGE, emit=emit)
    assert [kind for kind, _ in info.value.failures] == ["Deployment", "PodDisruptionBudget"]
    assert ("Service", "jobs") in api.objects
    warned = [m.split(" ", 1)[0] for t, r, m in events if (t, r) == ("Warning", "ApplyFailed")]
    assert warned == ["Deployment", "PodDisruptionBudget"]
    message = condition(api.status_patches[-1], "Degraded")["message"]
    assert message.startswith("Deployment: 422 ") and "; PodDisruptionBudget: ApiDown: forbidden" in message


def test_a_refused_update_keeps_reporting_the_running_deployment():
    api = FakeApi()
    reconcile(make_pool({"replicas": 2}), api, IMAGE)
    api.objects[("Deployment", "jobs")]["status"] = {"replicas": 2, "readyReplicas": 2, "updatedReplicas": 2}
    api.refuse["Deployment"] = Invalid("Deployment")
    with pytest.raises(ChildrenFailed):
        reconcile(make_pool({"replicas": 3}), api, IMAGE)
    assert api.status_patches[-1]["readyReplicas"] == 2
    assert condition(api.status_patches[-1], "Degraded")["status"] == "True"


def test_a_failed_read_is_a_failure_of_that_child_only():
    class Unreadable(FakeApi):
        def get(self, api_version, kind, namespace, name):
            if kind == "Service":
                raise ApiDown("connection reset")
            return super().get(api_version, kind, namespace, name)

    api = Unreadable()
    with pytest.raises(ChildrenFailed, match="^Service: ApiDown: connection reset$"):
        reconcile(make_pool({}), api, IMAGE)
    assert ("Deployment", "jobs") in api.objects


def test_status_conflict_rereads_the_pool_and_keeps_other_writers_conditions():
    api = FakeApi()
    pool = make_pool({})
    theirs = {"type": "ScaledToZero", "status": "True", "reason": "Idle", "message": "",
              "lastTransitionTime": "2026-01-01T00:00:00Z"}
    api.fresh_pool = {**make_pool({}), "status": {"conditions": [theirs]}}
    api.conflicts = 1
    reconcile(pool, api, IMAGE)
    written = api.status_patches[-1]["conditions"]
    assert written[0] == theirs and {c["type"] for c in written[1:]} == {
        "Ready", "Progressing", "Degraded", "ScalingActive"}
    assert ("get", "WorkerPool") in api.calls


def test_persistent_status_conflict_is_raised_for_retry():
    api = FakeApi()
    api.fresh_pool = make_pool({})
    api.conflicts = 99
    with pytest.raises(Conflict):
        reconcile(make_pool({}), api, IMAGE)


@pytest.mark.parametrize("text,value", [("500m", "0.5"), ("1Gi", "1073741824"), ("2k", "2000"), ("1e3", "1000"),
                                        (".5", "0.5"), (3, "3")])
def test_parse_quantity(text, value):
    from decimal import Decimal

    from podsup_operator.reconcile import parse_quantity
    assert parse_quantity(text) == Decimal(value)


@pytest.mark.parametrize("text", ["abc", "1.0.0", "5X", True, None, ""])
def test_parse_quantity_rejects_non_quantities(text):
    from podsup_operator.reconcile import parse_quantity
    assert parse_quantity(text) is None


def test_describe_error_uses_the_api_message():
    class Fake(Exception):
        status = 422
        body = '{"kind":"Status","message":"Deployment.apps \\"x\\" is invalid: spec.template: bad"}'
    assert describe_error(Fake()) == '422 Deployment.apps "x" is invalid: spec.template: bad'


@pytest.mark.parametrize("desired,live,expected", [
    ({"a": 1}, {"a": 1, "b": 2}, True),
    ({"a": 1}, {"a": 2}, False),
    ({"a": {"b": [1, {"c": 2}]}}, {"a": {"b": [1, {"c": 2, "d": 3}]}}, True),
    ({"l": [1, 2]}, {"l": [1, 2, 3]}, False),
    ({"requests": {"cpu": 1}}, {"requests": {"cpu": "1"}}, True),
    ({"requests": {"cpu": "0.5", "memory": "1Gi"}}, {"requests": {"cpu": "500m", "memory": "1073741824"}}, True),
    ({"limits": {"cpu": "1.5"}}, {"limits": {"cpu": "1"}}, False),
    ({"target": {"averageValue": "0.7"}}, {"target": {"averageValue": "700m"}}, True),
    ({"image": "1.0"}, {"image": "1"}, False),  # not a quantity field: compared as written
    ({"cpu": 1}, {"cpu": "1"}, False),
    ({"x": True}, {"x": "True"}, False),
    ({"missing": None}, {}, False),
])
def test_is_subset(desired, live, expected):
    assert is_subset(desired, live) is expected


AUTOSCALED = {"autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 5,
                              "targets": {"busyWorkersPercent": 80}}}


def test_a_deployment_stranded_at_zero_under_the_hpa_gets_its_minimum_back():
    api, (events, emit) = FakeApi(), events_recorder()
    pool = make_pool(AUTOSCALED)
    reconcile(pool, api, IMAGE)
    api.objects[("Deployment", "jobs")]["spec"]["replicas"] = 0  # e.g. left at 0 when the queue was removed
    api.calls.clear()
    outcome = reconcile(pool, api, IMAGE, emit=emit)
    assert outcome.scaled_to == 2 and ("scale", "Deployment") in api.writes()
    assert api.objects[("Deployment", "jobs")]["spec"]["replicas"] == 2
    assert any(reason == "ScaledFromZero" for _, reason, _ in events)
    api.calls.clear()
    assert reconcile(pool, api, IMAGE).scaled_to is None and ("scale", "Deployment") not in api.writes()


def test_a_pool_parked_at_zero_without_autoscaling_stays_there():
    api = FakeApi()
    pool = make_pool({"replicas": 0})
    reconcile(pool, api, IMAGE)
    assert reconcile(pool, api, IMAGE).scaled_to is None
    assert ("scale", "Deployment") not in api.writes()


def test_a_field_dropped_from_the_spec_is_applied_away():
    """The live object still holds a field the spec no longer sets; only the
    applied-hash annotation tells the reconcile to apply (SSA then removes it)."""
    api, (_, emit) = FakeApi(), events_recorder()
    reconcile(make_pool({"pod": {"nodeSelector": {"disk": "ssd"}}}), api, IMAGE)
    live = api.objects[("Deployment", "jobs")]
    assert live["spec"]["template"]["spec"]["nodeSelector"] == {"disk": "ssd"}
    assert names.APPLIED_HASH_ANNOTATION in live["metadata"]["annotations"]
    # what a real API server would show: our apply's fields plus the stale one
    outcome = reconcile(make_pool({}), api, IMAGE, emit=emit)
    assert outcome.applied == ["Deployment"]
    assert "nodeSelector" not in api.objects[("Deployment", "jobs")]["spec"]["template"]["spec"]


def managed_replicas(*managers):
    return [{"manager": m, "operation": op, "fieldsV1": {"f:spec": {"f:replicas": {}}}} for m, op in managers]


def test_owns_replicas_only_when_our_apply_is_the_sole_owner():
    ours = (names.FIELD_MANAGER, "Apply")
    assert owns_replicas({"metadata": {"managedFields": managed_replicas(ours)}})
    assert not owns_replicas({"metadata": {"managedFields": managed_replicas(ours, ("kube-controller-manager", "Update"))}})
    assert not owns_replicas({"metadata": {"managedFields": []}}) and not owns_replicas(None)


def test_turning_autoscaling_on_hands_replicas_over_before_dropping_them():
    api = FakeApi()
    reconcile(make_pool({"replicas": 7}), api, IMAGE)
    live = api.objects[("Deployment", "jobs")]
    assert live["spec"]["replicas"] == 7
    live["metadata"]["managedFields"] = managed_replicas((names.FIELD_MANAGER, "Apply"))
    api.calls.clear()
    autoscaled = make_pool({"replicas": 7, "autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 20,
                                                          "targets": {"busyWorkersPercent": 80}}})
    reconcile(autoscaled, api, IMAGE)
    writes = api.writes()
    handover = ("apply", "Deployment", HANDOVER_FIELD_MANAGER, {"replicas": 7})
    assert handover in writes and writes.index(handover) < writes.index(("apply", "Deployment"))


def test_no_handover_once_the_hpa_shares_replicas():
    api = FakeApi()
    autoscaled = make_pool({"autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 20,
                                            "targets": {"busyWorkersPercent": 80}}})
    reconcile(autoscaled, api, IMAGE)
    live = api.objects[("Deployment", "jobs")]
    live["spec"]["replicas"] = 5
    live["metadata"]["managedFields"] = managed_replicas((names.FIELD_MANAGER, "Apply"),
                                                         ("kube-controller-manager", "Update"))
    live["metadata"]["annotations"].clear()  # force an apply
    api.calls.clear()
    reconcile(autoscaled, api, IMAGE)
    assert ("apply", "Deployment") in api.writes()
    assert not [c for c in api.writes() if len(c) > 2 and c[2] == HANDOVER_FIELD_MANAGER]
