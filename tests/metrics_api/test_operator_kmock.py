"""The metrics API's kopf wiring, in-process against kmock (the API emulator),
with a real redis-server as the broker and the operator's own HTTPS server.

One scenario, end to end: a WorkerPool with ``minReplicas: 0`` and an empty
queue is scaled to 0 through the Deployment's scale subresource (Event,
ScaledToZero=True, status.queueDepth 0); LPUSH wakes it to 1 replica; the
operator's HTTPS endpoint answers the External metric from its own poll
(front-proxy client certificate, SAR answered by the emulator); the broker
going away turns into MetricsAvailable=False, a Warning Event and a 503 —
never a 0. Real time (the broker is real), short intervals.
"""
from __future__ import annotations

import asyncio
import contextlib
import ssl

import aiohttp
import kopf
import pytest

from podsup import names
from podsup_operator.metrics_api import handlers
from podsup_operator.metrics_api.kube import SCALE_FIELD_MANAGER

from .helpers import FRONT_PROXY_CN, ReviewingEmulator, post, url

pytestmark = pytest.mark.kmock(cls=ReviewingEmulator)

WP = f"{names.API_GROUP}/{names.API_VERSION}/{names.PLURAL}"
DEP = "apps/v1/deployments"
NS = "shop"


async def wait_until(predicate, what: str, timeout: float = 30.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def stored(kmock, resource: str, name: str, ns: str = NS) -> dict | None:
    key = (kmock.resource(resource), ns, name)
    if key in kmock.objects and not kmock.objects[key].deleted:
        return kmock.objects[key].raw
    return None


def condition(pool: dict | None, type_: str) -> dict | None:
    return next((c for c in ((pool or {}).get("status") or {}).get("conditions") or [] if c["type"] == type_), None)


def events(kmock, reason: str) -> list[dict]:
    """Events kopf posted (kmock has no generateName, so read the requests, not the store)."""
    return [r.data for r in kmock["post", kmock.resource("v1/events")] if (r.data or {}).get("reason") == reason]


@contextlib.asynccontextmanager
async def operator(kmock):
    registry = kopf.OperatorRegistry()
    handlers.register(registry)
    kopf.on.login(registry=registry)(kopf.login_via_client)  # the default registry has it built in
    settings = kopf.OperatorSettings()
    settings.scanning.disabled = True
    settings.posting.enabled = True
    stop = asyncio.Event()
    task = asyncio.create_task(kopf.operator(registry=registry, clusterwide=True, standalone=True,
                                             settings=settings, stop_flag=stop))
    try:
        await wait_until(lambda: len(kmock["watch", kmock.resource(WP)]) > 0, "the WorkerPool watch")
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=60)


def scale_reads(kmock) -> int:
    """The pollers' reads of the Deployment's replicas: one per tick of a pool with scale to zero."""
    return len([r for r in kmock[kmock.resource(DEP)] if r.subresource == "scale" and r.method.value == "GET"])


@pytest.mark.timeout(240)  # real time on a loaded machine: kopf's start and stop alone take seconds
async def test_scale_to_zero_and_back_with_metrics_served_by_the_operator(emulator, pki, redis_server, monkeypatch):
    kmock = emulator
    monkeypatch.setattr(handlers, "SETTINGS", handlers.Settings(
        enabled=True, host="127.0.0.1", port=0, cert_file=pki.paths["serving"][0], key_file=pki.paths["serving"][1]))
    await post(kmock, url("v1/configmaps", ns="kube-system"), {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "extension-apiserver-authentication", "namespace": "kube-system"},
        "data": {"requestheader-client-ca-file": pki.front_proxy_ca.cert_pem.decode(),
                 "requestheader-allowed-names": f'["{FRONT_PROXY_CN}"]',
                 "requestheader-username-headers": '["X-Remote-User"]',
                 "requestheader-group-headers": '["X-Remote-Group"]',
                 "requestheader-extra-headers-prefix": '["X-Remote-Extra-"]'}})
    await post(kmock, url(DEP), {"apiVersion": "apps/v1", "kind": "Deployment",
                                 "metadata": {"name": "orders", "namespace": NS, "uid": "dep-uid"},
                                 "spec": {"replicas": 1}})

    async with operator(kmock):
        rt = handlers.runtime()
        await wait_until(lambda: rt.port, "the metrics API to listen")
        await post(kmock, url(WP), {
            "apiVersion": f"{names.API_GROUP}/{names.API_VERSION}", "kind": names.KIND,
            "metadata": {"name": "orders", "namespace": NS, "uid": "wp-uid", "generation": 1,
                         "resourceVersion": "1"},
            "spec": {"image": "x", "queue": {"type": "redis", "name": "orders-jobs", "url": redis_server.url,
                                             "pollIntervalSeconds": 0.2},
                     "autoscaling": {"enabled": True, "minReplicas": 0, "maxReplicas": 5,
                                     "idleCooldownSeconds": 1, "targets": {"queueDepthPerReplica": 10}}},
            "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "AllReplicasReady",
                                       "message": "kept", "lastTransitionTime": "2024-01-01T00:00:00Z"}]}})

        # Idle for the cooldown → scaled to 0 through the scale subresource.
        await wait_until(lambda: (stored(kmock, DEP, "orders") or {}).get("spec", {}).get("replicas") == 0,
                         "the Deployment scaled to 0")
        (scale,) = [r for r in kmock[kmock.resource(DEP)] if r.subresource == "scale" and r.method.value == "PATCH"]
        assert scale.data == {"spec": {"replicas": 0}}
        assert scale.params.get("fieldManager") == SCALE_FIELD_MANAGER
        await wait_until(lambda: (condition(stored(kmock, WP, "orders"), "ScaledToZero") or {}).get("status")
                         == "True", "ScaledToZero=True")
        pool = stored(kmock, WP, "orders")
        assert pool["status"]["queueDepth"] == 0
        assert condition(pool, "Ready")["message"] == "kept"  # other writers' conditions preserved
        assert condition(pool, "MetricsAvailable")["status"] == "True"
        assert not pool["metadata"].get("finalizers"), "a finalizer would block deletion while the operator is down"
        await wait_until(lambda: events(kmock, "ScaledToZero"), "the ScaledToZero Event")

        # First message → back to 1 replica; the HPA takes over from there.
        redis_server.client().rpush("orders-jobs", "a", "b", "c")
        await wait_until(lambda: stored(kmock, DEP, "orders")["spec"]["replicas"] == 1, "the Deployment at 1")
        await wait_until(lambda: stored(kmock, WP, "orders")["status"].get("queueDepth") == 3, "queueDepth 3")
        assert condition(stored(kmock, WP, "orders"), "ScaledToZero")["status"] == "False"
        await wait_until(lambda: events(kmock, "ScaledFromZero"), "the ScaledFromZero Event")

        # The operator's own HTTPS endpoint serves the polled value.
        ctx = ssl.create_default_context(cadata=pki.serving_ca.cert_pem.decode())
        ctx.load_cert_chain(*pki.paths["front_proxy"])
        metric_url = (f"https://127.0.0.1:{rt.port}/apis/external.metrics.k8s.io/v1beta1/namespaces/{NS}/"
                      f"{names.METRIC_QUEUE_DEPTH}?labelSelector=workerpool%3Dorders")
        async with aiohttp.ClientSession() as s:
            async with s.get(metric_url, ssl=ctx, headers={"X-Remote-User": "system:hpa"}) as r:
                body = await r.json()
                assert r.status == 200, body
                assert body["items"][0]["value"] == "3"
            async with s.get(metric_url, ssl=ctx, headers={"X-Remote-User": "mallory"}) as r:
                assert r.status == 403

            # The broker goes away: an error everywhere, never a 0.
            redis_server.stop()
            await wait_until(lambda: (condition(stored(kmock, WP, "orders"), "MetricsAvailable") or {})
                             .get("status") == "False", "MetricsAvailable=False")
            reads_at_outage = scale_reads(kmock)
            pool = stored(kmock, WP, "orders")
            assert condition(pool, "MetricsAvailable")["reason"] == "QueueDepthUnavailable"
            assert "queueDepth" not in pool["status"] or pool["status"]["queueDepth"] is None
            await wait_until(lambda: events(kmock, "MetricsUnavailable"), "the MetricsUnavailable Event")
            async with s.get(metric_url, ssl=ctx, headers={"X-Remote-User": "system:hpa"}) as r:
                body = await r.json()
                assert r.status == 503 and body["kind"] == "Status" and "unreachable" in body["message"]
            # An unknown backlog never scales: still 1 replica after ticks spanning
            # more than the idle cooldown (1 s; a tick is at least 0.2 s apart).
            await wait_until(lambda: scale_reads(kmock) >= reads_at_outage + 8,
                             "8 more poller ticks with the broker down")
            assert stored(kmock, DEP, "orders")["spec"]["replicas"] == 1
