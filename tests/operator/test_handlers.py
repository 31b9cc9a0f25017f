"""The kopf handlers wired to the real reconcile, against kmock.

Each test runs the whole operator in-process on a looptime event loop (virtual
time: the 60 s resync timer passes instantly) and asserts on kmock's stored
objects and recorded requests.
"""
from __future__ import annotations

import asyncio
from typing import Any

import pytest

from podsup import names
from podsup_operator import config, handlers, metrics
from podsup_operator.apply import APPLY_CONTENT_TYPE

from .conftest import DEP, HPA, NS, OPERATOR_IMAGE, PDB, SVC, WP, ApplyingEmulator, pool_manifest, \
    running_operator, wait_until

pytestmark = [pytest.mark.looptime, pytest.mark.kmock(cls=ApplyingEmulator)]

WRITE_METHODS = {"POST", "PATCH", "PUT", "DELETE"}


def obj(kmock: Any, resource: str, name: str = "pool") -> Any:
    key = (kmock.resource(resource), NS, name)
    if key in kmock.objects and not kmock.objects[key].deleted:
        return kmock.objects[key]
    return None


def raw(kmock: Any, resource: str, name: str = "pool") -> dict | None:
    found = obj(kmock, resource, name)
    return found.raw if found is not None else None


def writes(kmock: Any) -> list[Any]:
    """Write requests to anything but Events (which kopf may post)."""
    return [r for r in list(kmock) if r.method.value in WRITE_METHODS
            and not (r.resource is not None and r.resource.plural == "events")]


def _counted(collector: Any, suffix: str, **labels: str) -> float:
    return sum(sample.value for family in collector.collect() for sample in family.samples
               if sample.name.endswith(suffix) and labels.items() <= sample.labels.items())


def reconciles(trigger: str | None = None) -> float:
    """Reconciles started so far (the operator's own counter, process-wide), by trigger."""
    return _counted(metrics.RECONCILES, "_total", **({"trigger": trigger} if trigger else {}))


@pytest.fixture
def in_flight() -> Any:
    """A predicate: is a reconcile of this test running now (started, not yet
    finished: the duration histogram counts every end, raised or not)?"""
    base = reconciles() - _counted(metrics.DURATION, "_count")
    return lambda: reconciles() - _counted(metrics.DURATION, "_count") > base


def pool_lists(kmock: Any) -> list[Any]:
    """The resync's listings of WorkerPools (ours, not kopf's own listing or watch)."""
    return [r for r in list(kmock) if r.method.value == "GET" and r.name is None
            and r.resource == kmock.resource(WP) and "watch" not in r.params
            and not r.headers.get("User-Agent", "").startswith("kopf")]


def posted_events(kmock: Any) -> list[dict]:
    return [r.data for r in list(kmock) if r.method.value == "POST" and r.resource is not None
            and r.resource.plural == "events"]


def url(resource: str, name: str | None = None, sub: str | None = None) -> str:
    group_version, plural = resource.rsplit("/", 1)
    base = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
    path = f"{base}/namespaces/{NS}/{plural}"
    if name:
        path += f"/{name}"
    if sub:
        path += f"/{sub}"
    return path


async def create_pool(kmock: Any, manifest: dict) -> None:
    async with kmock.post(url(WP), json=manifest) as resp:
        assert resp.status < 300, await resp.text()


async def patch(kmock: Any, resource: str, name: str, body: dict, sub: str | None = None) -> None:
    async with kmock.patch(url(resource, name, sub), json=body,
                           headers={"Content-Type": "application/merge-patch+json"}) as resp:
        assert resp.status < 300, await resp.text()


async def delete(kmock: Any, resource: str, name: str) -> None:
    async with kmock.delete(url(resource, name)) as resp:
        assert resp.status < 300, await resp.text()


def condition(pool: dict | None, type_: str) -> dict | None:
    for cond in ((pool or {}).get("status") or {}).get("conditions") or []:
        if cond["type"] == type_:
            return cond
    return None


async def converged(kmock: Any, name: str = "pool") -> dict:
    """Wait until the Deployment exists and the status has conditions."""
    await wait_until(lambda: raw(kmock, DEP, name) is not None, f"Deployment {name}")
    return await wait_until(lambda: condition(raw(kmock, WP, name), "Ready") and raw(kmock, WP, name),
                            f"status of {name}")


async def test_create_applies_owned_children_and_writes_status(emulator: Any) -> None:
    async with running_operator(emulator):
        await create_pool(emulator, pool_manifest(ports=[{"name": "http", "containerPort": 8000}],
                                                  disruption={"maxUnavailable": 1}))
        pool = await converged(emulator)
        await wait_until(lambda: raw(emulator, PDB) is not None, "PodDisruptionBudget")
        dep, svc, pdb = raw(emulator, DEP), raw(emulator, SVC), raw(emulator, PDB)

    owner = {"apiVersion": "podsup.io/v1alpha1", "kind": "WorkerPool", "name": "pool", "uid": "uid-1",
             "controller": True, "blockOwnerDeletion": True}
    for child in (dep, svc, pdb):
        assert child["metadata"]["ownerReferences"] == [owner]
    assert dep["spec"]["replicas"] == 2
    assert dep["spec"]["template"]["spec"]["initContainers"][0]["image"] == OPERATOR_IMAGE
    assert [p["name"] for p in svc["spec"]["ports"]] == ["http", names.METRICS_PORT_NAME]
    assert raw(emulator, HPA) is None
    status = pool["status"]
    assert status["selector"] == f"{names.POOL_LABEL}=pool"
    assert status["observedGeneration"] == 1
    assert {c["type"] for c in status["conditions"]} == {"Ready", "Progressing", "Degraded", "ScalingActive"}
    assert condition(pool, "ScalingActive")["reason"] == "AutoscalingDisabled"
    assert condition(pool, "Degraded")["status"] == "False"
    assert not pool["metadata"].get("finalizers"), "a finalizer would block deletion while the operator is down"


async def test_children_are_applied_server_side_and_status_patched_with_precondition(emulator: Any) -> None:
    async with running_operator(emulator):
        await create_pool(emulator, pool_manifest())
        await converged(emulator)
    applies = [r for r in writes(emulator) if r.method.value == "PATCH" and r.resource == emulator.resource(DEP)]
    assert applies, "the Deployment was never applied"
    for request in applies:
        assert request.headers["Content-Type"] == APPLY_CONTENT_TYPE
        assert request.params["fieldManager"] == names.FIELD_MANAGER
        assert request.params["force"] == "true"
        assert request.data["kind"] == "Deployment" and request.data["apiVersion"] == "apps/v1"
    status_writes = [r for r in writes(emulator) if r.resource == emulator.resource(WP) and r.subresource == "status"
                     and "conditions" in (r.data or {}).get("status", {})]
    assert status_writes, "no status write with conditions"
    for request in status_writes:  # optimistic concurrency: other writers' conditions are never lost
        assert request.headers["Content-Type"] == "application/merge-patch+json"
        assert request.data["metadata"] == {"resourceVersion": "1"}


async def test_status_and_workers_follow_the_deployment(emulator: Any) -> None:
    async with running_operator(emulator):
        await create_pool(emulator, pool_manifest())
        await converged(emulator)
        # The Deployment controller reports 2 ready pods: the Deployment watch reconciles the owner.
        await patch(emulator, DEP, "pool", {"status": {"replicas": 2, "readyReplicas": 2, "updatedReplicas": 2,
                                                        "observedGeneration": 0}}, sub="status")
        pool = await wait_until(lambda: (raw(emulator, WP) or {}).get("status", {}).get("workers") == 6
                                and raw(emulator, WP), "workers = 3 processes x 2 ready pods")
    assert pool["status"]["readyReplicas"] == 2
    assert condition(pool, "Ready")["status"] == "True"


async def test_deleted_deployment_is_restored(emulator: Any) -> None:
    async with running_operator(emulator):
        await create_pool(emulator, pool_manifest())
        await converged(emulator)
        before_delete = len(list(emulator))
        await delete(emulator, DEP, "pool")
        # Not "is it gone now": the DELETED event may already have brought it
        # back. What is seen must be a new apply, made after the delete.

        def reapplied() -> dict | None:
            later = list(emulator)[before_delete:]
            deleted = next((i for i, r in enumerate(later) if r.method.value == "DELETE"
                            and r.resource == emulator.resource(DEP)), None)
            applied = deleted is not None and any(
                r.method.value == "PATCH" and r.resource == emulator.resource(DEP) and r.name == "pool"
                for r in later[deleted + 1:])
            return raw(emulator, DEP) if applied else None
        restored = await wait_until(reapplied, "the Deployment to be restored")
    assert restored["spec"]["template"]["spec"]["containers"][0]["image"] == "python:3.12"


async def test_edited_deployment_is_corrected(emulator: Any) -> None:
    async with running_operator(emulator):
        await create_pool(emulator, pool_manifest())
        await converged(emulator)
        edited = raw(emulator, DEP)
        edited["spec"]["template"]["spec"]["containers"][0]["image"] = "evil:latest"
        await patch(emulator, DEP, "pool", {"spec": {"template": edited["spec"]["template"]}})
        await wait_until(lambda: raw(emulator, DEP)["spec"]["template"]["spec"]["containers"][0]["image"]
                         == "python:3.12", "drift to be corrected")


async def settled(kmock: Any, in_flight: Any, quiet: float = 5.0, timeout: float = 40.0) -> None:
    """Wait until the follow-ups of the operator's own writes (watch events of
    its applies and status patch, kopf's annotations) are over: no reconcile
    running and no new write for ``quiet`` seconds. Virtual time; the deadline
    comes before the first resync tick (60 s after start-up), so settling never
    swallows one."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    count, since = len(writes(kmock)), loop.time()
    while True:
        now, n = loop.time(), len(writes(kmock))
        if n != count or in_flight():
            count, since = n, now
        elif now - since >= quiet:
            return
        if now > deadline:
            raise AssertionError(f"the operator kept writing after {timeout}s: "
                                 f"{[f'{r.method.value} {r.url.path}' for r in writes(kmock)[-5:]]}")
        await asyncio.sleep(0.5)


async def test_noop_resync_makes_zero_writes(emulator: Any, in_flight: Any) -> None:
    async with running_operator(emulator):
        await create_pool(emulator, pool_manifest(disruption={"minAvailable": 1}))
        await converged(emulator)
        await settled(emulator, in_flight)
        before_writes = len(writes(emulator))
        before_reads = len([r for r in list(emulator) if r.method.value == "GET" and r.name == "pool"
                            and r.resource == emulator.resource(DEP)])
        await asyncio.sleep(config.RESYNC_SECONDS * 3.5)  # virtual time: three resync ticks
        after_reads = len([r for r in list(emulator) if r.method.value == "GET" and r.name == "pool"
                           and r.resource == emulator.resource(DEP)])
        new_writes = writes(emulator)[before_writes:]
    assert after_reads >= before_reads + 3, "the resync timer did not run"
    assert new_writes == [], [f"{r.method.value} {r.url.path}" for r in new_writes]


async def test_resync_restores_a_deleted_service_and_lists_only_served_namespaces(
        emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config.CONFIG, "namespaces", [NS])
    async with running_operator(emulator):
        await create_pool(emulator, pool_manifest())
        await converged(emulator)
        await delete(emulator, SVC, "pool")  # no Service watch: the periodic resync brings it back
        await wait_until(lambda: raw(emulator, SVC) is not None, "the resync to restore the Service",
                         timeout=config.RESYNC_SECONDS * 3)
    lists = [r.url.path for r in pool_lists(emulator)]
    assert lists and all(path == url(WP) for path in lists)


async def test_scaling_the_pool_scales_the_deployment(emulator: Any) -> None:
    async with running_operator(emulator):
        await create_pool(emulator, pool_manifest())
        await converged(emulator)
        await patch(emulator, WP, "pool", {"spec": {"replicas": 5}, "metadata": {"generation": 2}})
        await wait_until(lambda: raw(emulator, DEP)["spec"].get("replicas") == 5, "Deployment replicas 5")


async def test_hpa_owns_replicas_when_autoscaling(emulator: Any, in_flight: Any) -> None:
    auto = {"enabled": True, "minReplicas": 0, "maxReplicas": 8, "targets": {"busyWorkersPercent": 70}}
    async with running_operator(emulator):
        await create_pool(emulator, pool_manifest(autoscaling=auto))
        await converged(emulator)
        hpa = await wait_until(lambda: raw(emulator, HPA), "the HPA")
        # The HPA scales the Deployment to 7; the operator must leave that alone on
        # resync and on the Deployment's event: look once both have run to the end.
        resyncs, events = reconciles("resync"), reconciles("deployment-modified")
        await patch(emulator, DEP, "pool", {"spec": {"replicas": 7}})
        await wait_until(lambda: reconciles("resync") >= resyncs + 2
                         and reconciles("deployment-modified") >= events + 1 and not in_flight(),
                         "two resyncs and the Deployment's event reconciled", timeout=config.RESYNC_SECONDS * 5)
        dep = raw(emulator, DEP)
    assert hpa["spec"]["minReplicas"] == 1 and hpa["spec"]["maxReplicas"] == 8
    assert dep["spec"]["replicas"] == 7
    dep_applies = [r for r in writes(emulator) if r.resource == emulator.resource(DEP) and r.method.value == "PATCH"
                   and r.headers.get("Content-Type") == APPLY_CONTENT_TYPE]
    assert dep_applies and all("replicas" not in r.data["spec"] for r in dep_applies)


async def test_switching_autoscaling_off_deletes_the_hpa(emulator: Any) -> None:
    auto = {"enabled": True, "minReplicas": 1, "maxReplicas": 4, "targets": {"cpuPercent": 50}}
    async with running_operator(emulator):
        await create_pool(emulator, pool_manifest(autoscaling=auto, resources={"requests": {"cpu": "1"}}))
        await wait_until(lambda: raw(emulator, HPA), "the HPA")
        await patch(emulator, WP, "pool", {"spec": {"autoscaling": {"enabled": False}}})
        await wait_until(lambda: raw(emulator, HPA) is None, "the HPA to be deleted")
        await wait_until(lambda: raw(emulator, DEP)["spec"].get("replicas") == 2, "replicas back from the spec")


async def test_deleted_pool_children_are_not_resurrected(emulator: Any, in_flight: Any) -> None:
    async with running_operator(emulator):
        await create_pool(emulator, pool_manifest())
        await converged(emulator)
        await delete(emulator, WP, "pool")
        await delete(emulator, DEP, "pool")  # what garbage collection does (kmock does not)
        # A resync that listed after the deletion has run to the end once the next one lists.
        lists = len(pool_lists(emulator))
        await wait_until(lambda: len(pool_lists(emulator)) >= lists + 2 and not in_flight(),
                         "two resyncs after the deletion", timeout=config.RESYNC_SECONDS * 5)
        assert raw(emulator, DEP) is None


async def test_a_conflicting_pool_is_degraded_and_does_not_block_others(emulator: Any) -> None:
    foreign = {"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "taken", "namespace": NS, "labels": {"app": "someone-else"}},
               "spec": {"replicas": 1}}
    async with emulator.post(url(DEP), json=foreign) as resp:
        assert resp.status < 300
    async with running_operator(emulator, events=True):
        await create_pool(emulator, pool_manifest(name="taken", uid="uid-taken"))
        await create_pool(emulator, pool_manifest(name="fine", uid="uid-fine"))
        await converged(emulator, "fine")
        bad = await wait_until(lambda: condition(raw(emulator, WP, "taken"), "Degraded"), "Degraded on 'taken'")
        assert raw(emulator, DEP, "taken")["metadata"]["labels"] == {"app": "someone-else"}

        # kopf posts Events from a queue of its own, after the handler (and its
        # status write) returned: wait for them before the operator stops.
        def by(reason: str, name: str) -> list[dict]:
            return [e for e in posted_events(emulator) if e.get("reason") == reason
                    and e["involvedObject"]["name"] == name]
        await wait_until(lambda: by("ApplyFailed", "taken") and {e["message"] for e in by("Created", "fine")}
                         >= {"Created Deployment fine", "Created Service fine"}, "the Events posted")
    assert bad["status"] == "True" and bad["reason"] == "ApplyFailed"
    assert "not controlled by this WorkerPool" in bad["message"]
    posted = posted_events(emulator)
    warnings = [e for e in posted if e.get("reason") == "ApplyFailed" and e["involvedObject"]["name"] == "taken"]
    assert warnings and warnings[0]["type"] == "Warning"
    assert "not controlled by this WorkerPool" in warnings[0]["message"]
    created = [e for e in posted if e.get("reason") == "Created" and e["involvedObject"]["name"] == "fine"]
    assert {e["message"] for e in created} >= {"Created Deployment fine", "Created Service fine"}


async def test_a_child_the_api_server_refuses_degrades_its_pool_only_and_recovers(
        emulator: Any, caplog: pytest.LogCaptureFixture) -> None:
    """422 for one pool's Deployment: that pool is Degraded with the API
    server's message and a Warning Event, its Service and PDB are applied, the
    other pool is fine; once the apply is accepted Degraded goes back to False."""
    message = ('Deployment.apps "bad" is invalid: spec.template.spec.containers[0].resources.requests: '
               'Invalid value: "2": must be less than or equal to cpu limit of 1')
    emulator.refuse(DEP, "bad", 422, "Invalid", message)

    def degraded(name: str, status: str) -> dict | None:
        cond = condition(raw(emulator, WP, name), "Degraded")
        return cond if cond and cond["status"] == status else None

    async with running_operator(emulator, events=True):
        await create_pool(emulator, pool_manifest(name="bad", uid="uid-bad", disruption={"maxUnavailable": 1}))
        await create_pool(emulator, pool_manifest(name="fine", uid="uid-fine"))
        await converged(emulator, "fine")
        bad = await wait_until(lambda: degraded("bad", "True"), "Degraded=True on 'bad'")
        await wait_until(lambda: raw(emulator, SVC, "bad") and raw(emulator, PDB, "bad"),
                         "the other children of 'bad'")
        assert raw(emulator, DEP, "bad") is None
        warning = await wait_until(lambda: [e for e in posted_events(emulator) if e.get("reason") == "ApplyFailed"
                                            and e["involvedObject"]["name"] == "bad"], "the Warning Event")
        assert degraded("fine", "False")

        emulator.accept()  # kopf retries the pool (backoff, virtual time): the Deployment is applied
        await wait_until(lambda: raw(emulator, DEP, "bad"), "the Deployment once accepted",
                         timeout=handlers.RETRY_MAX * 2)
        recovered = await wait_until(lambda: degraded("bad", "False"), "Degraded=False on 'bad'")
    assert (bad["reason"], bad["message"]) == ("ApplyFailed", f"Deployment: 422 {message}")
    assert warning[0]["type"] == "Warning" and warning[0]["message"] == f"Deployment bad: 422 {message}"
    assert recovered["reason"] == "AsExpected"
    retried = [r for r in caplog.records if "pool_changed" in r.getMessage() and "422" in r.getMessage()]
    assert retried and all(r.exc_info is None for r in retried), "one log line a retry, no traceback"


def test_retry_delay_doubles_up_to_the_maximum() -> None:
    assert [handlers.retry_delay(n) for n in range(7)] == [10, 20, 40, 80, 160, 300, 300]
    assert handlers.retry_delay(10**6) == handlers.RETRY_MAX


async def test_a_refused_service_does_not_stop_the_deployment_events(
        emulator: Any, in_flight: Any, caplog: pytest.LogCaptureFixture) -> None:
    """The Service is refused (403): the Deployment's status changes still
    reach the pool's status, each such reconcile logs one warning line."""
    emulator.refuse(SVC, "pool", 403, "Forbidden", 'services "pool" is forbidden: no')
    async with running_operator(emulator):
        await create_pool(emulator, pool_manifest())
        await wait_until(lambda: raw(emulator, DEP) is not None, "the Deployment")
        await wait_until(lambda: (condition(raw(emulator, WP), "Degraded") or {}).get("status") == "True",
                         "Degraded=True")
        events = reconciles("deployment-modified")
        await patch(emulator, DEP, "pool", {"status": {"replicas": 2, "readyReplicas": 2, "updatedReplicas": 2,
                                                        "observedGeneration": 0}}, sub="status")
        await wait_until(lambda: (raw(emulator, WP) or {}).get("status", {}).get("readyReplicas") == 2,
                         "the ready pods in the status")
        await wait_until(lambda: reconciles("deployment-modified") > events and not in_flight(),
                         "the Deployment event reconciled")
    assert raw(emulator, SVC) is None
    assert condition(raw(emulator, WP), "Degraded")["message"].startswith('Service: 403 services "pool" is forbidden')
    refused = [r for r in caplog.records if "403" in r.getMessage()]
    assert refused and all(r.exc_info is None for r in refused), [r.getMessage() for r in refused]
