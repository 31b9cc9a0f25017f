"""Scale-in order end to end at our seams: the poller's tick scrapes real
``podsup run`` processes standing in for the pool's pods (their ``--http``
ports as the pods' metrics ports), and sets each pod's
``controller.kubernetes.io/pod-deletion-cost`` through the real ``Kube``
client against kmock — a merge patch of the one annotation, only where the
cost changed, at most MAX_PATCHES per pass and once per pod per interval."""
from __future__ import annotations

import asyncio
import sys

import pytest

from podsup import names
from podsup_operator import deletion_cost
from podsup_operator.metrics_api.kube import Kube, api_client
from podsup_operator.metrics_api.poller import PoolPoller
from podsup_operator.metrics_api.provider import MetricsProvider
from podsup_operator.metrics_api.sources.pods import PodScraper
from podsup_operator.metrics_api.sources.queue import QueueRegistry
from tests.integration.podsup_process import PodsupProcess, worker
from tests.integration.servers import sample
from tests.waiting import wait_for

from .helpers import KMOCK_NS, ReviewingEmulator, pod, post, url

pytestmark = pytest.mark.kmock(cls=ReviewingEmulator)

NS = KMOCK_NS
LABELS = {names.POOL_LABEL: "orders"}
PODS = "v1/pods"


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def pool() -> dict:
    return {"apiVersion": f"{names.API_GROUP}/{names.API_VERSION}", "kind": names.KIND,
            "metadata": {"name": "orders", "namespace": NS, "uid": "u-orders"},
            "spec": {"autoscaling": {"enabled": True, "minReplicas": 1, "maxReplicas": 20}}}


def annotation(kmock, name: str) -> str | None:
    raw = kmock.objects[kmock.resource(PODS), NS, name].raw
    return ((raw.get("metadata") or {}).get("annotations") or {}).get(deletion_cost.ANNOTATION)


def pod_patches(kmock) -> list:
    return [r for r in list(kmock) if r.method.value == "PATCH" and r.resource == kmock.resource(PODS)]


async def test_deletion_cost_follows_the_busy_workers_of_real_podsup_pods(emulator):
    busy = PodsupProcess(["run", "--workers", "2", "--", sys.executable, worker("metrics_worker")],
                         env={"JOB_SECONDS": "3600"})
    idle = PodsupProcess(["run", "--workers", "2", "--", sys.executable, worker("sleeper")])
    with busy, idle:
        await asyncio.to_thread(
            wait_for, lambda: (sample(busy.http_port, "podsup_workers", state="busy") or 0) == 2
            and (sample(idle.http_port, "podsup_workers", state="idle") or 0) == 2,
            timeout=60, message="two busy and two idle workers")
        await post(emulator, url("podsup.io/v1alpha1/workerpools"), pool())
        # 11 pods on the busy podsup, and two on the idle one: one of them with
        # a stale cost (it was busy), one without (already cost 0).
        pods = [pod(f"busy-{i:02d}", NS, LABELS, busy.http_port) for i in range(11)]
        pods += [pod("idle-stale", NS, LABELS, idle.http_port), pod("idle-new", NS, LABELS, idle.http_port)]
        pods[-2]["metadata"]["annotations"] = {deletion_cost.ANNOTATION: "500"}
        for p in pods:
            await post(emulator, url(PODS), {"apiVersion": "v1", "kind": "Pod", **p})

        clock = Clock()
        with api_client() as client:
            kube = Kube(client)
            provider = MetricsProvider(QueueRegistry(), kube.list_pods, PodScraper(timeout=30.0, ttl=0.0))
            poller = PoolPoller(NS, "orders", QueueRegistry(), provider, kube, lambda *e: None, monotonic=clock)
            try:
                await poller.tick(pool())
                first = pod_patches(emulator)
                assert len(first) == deletion_cost.MAX_PATCHES  # the bound per pass
                for request in first:
                    assert request.headers["Content-Type"] == "application/merge-patch+json"
                    assert request.params["fieldManager"] == names.FIELD_MANAGER
                    assert set(request.data) == {"metadata"}
                assert first[0].data == {"metadata": {"annotations": {deletion_cost.ANNOTATION: "0"}}}
                assert annotation(emulator, "idle-stale") == "0"  # the largest correction first
                assert all(r.data["metadata"]["annotations"][deletion_cost.ANNOTATION] == "200" for r in first[1:])

                clock.t += 1
                await poller.tick(pool())
                assert len(pod_patches(emulator)) == 12  # the two busy pods left over, nothing else
                assert all(annotation(emulator, f"busy-{i:02d}") == "200" for i in range(11))
                assert annotation(emulator, "idle-new") is None  # cost 0 already: never written

                clock.t += 1
                await poller.tick(pool())
                assert len(pod_patches(emulator)) == 12  # nothing changed: no writes

                # someone rewrites a cost: put back, but not before the pod's interval is over
                patched_at = 1000.0  # busy-00 was in the first pass (the order is by name among equals)
                async with emulator.patch(url(PODS, "busy-00"), json={
                        "metadata": {"annotations": {deletion_cost.ANNOTATION: "7"}}},
                        headers={"Content-Type": "application/merge-patch+json"}) as resp:
                    assert resp.status < 300
                clock.t = patched_at + deletion_cost.MIN_INTERVAL - 0.5
                await poller.tick(pool())
                assert annotation(emulator, "busy-00") == "7"
                clock.t = patched_at + deletion_cost.MIN_INTERVAL
                await poller.tick(pool())
                assert annotation(emulator, "busy-00") == "200"
                assert len(pod_patches(emulator)) == 14
            finally:
                poller.close()
                await provider.scraper.close()
