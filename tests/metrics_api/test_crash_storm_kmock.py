"""The WorkersCrashLooping condition through the operator's kopf wiring,
in-process against kmock, with a real ``podsup run`` in a crash storm as the
pool's one pod (listed not Ready, as the kubelet would after its /readyz
failed): the condition is set with a Warning Event, not rewritten while
nothing changes, and cleared with a Normal Event when the pod is gone."""
from __future__ import annotations

import asyncio
import sys

import pytest

from podsup import names
from podsup_operator import crash_storms
from podsup_operator.metrics_api import handlers
from podsup_operator.metrics_api.sources import queue
from tests.integration.podsup_process import PodsupProcess, worker
from tests.integration.servers import sample
from tests.waiting import wait_for

from .helpers import ReviewingEmulator, pod, post, url
from .test_operator_kmock import NS, WP, condition, events, operator, stored, wait_until

pytestmark = pytest.mark.kmock(cls=ReviewingEmulator)

PODS = "v1/pods"
TYPE = crash_storms.CONDITION_TYPE


def status_patches(kmock) -> int:
    return len([r for r in kmock[kmock.resource(WP)] if r.subresource == "status" and r.method.value == "PATCH"])


def pod_lists(kmock) -> int:
    return len([r for r in kmock[kmock.resource(PODS)] if r.method.value == "GET"])


@pytest.mark.timeout(240)  # real time: kopf's start and stop, a real podsup
async def test_crash_storm_condition_and_events_through_the_operator(emulator, monkeypatch):
    kmock = emulator
    monkeypatch.setattr(handlers, "SETTINGS", handlers.Settings(enabled=False))
    monkeypatch.setattr(queue, "DEFAULT_POLL_INTERVAL", 0.2)  # a fixed pool's poll, shortened
    storming = PodsupProcess(["run", "--workers", "2", "--crashloop-threshold", "3", "--crashloop-interval", "600",
                              "--", sys.executable, worker("crasher")], env={"CRASH_AFTER": "0"})
    with storming:
        await asyncio.to_thread(wait_for, lambda: sample(storming.http_port, "podsup_crash_loop") == 1,
                                timeout=60, message="a podsup in a crash storm")
        p = pod("orders-1", NS, {names.POOL_LABEL: "orders"}, storming.http_port, ready=False)
        await post(kmock, url(PODS), {"apiVersion": "v1", "kind": "Pod", **p,
                                      "metadata": {**p["metadata"], "uid": "pod-uid"}})
        async with operator(kmock):
            await post(kmock, url(WP), {
                "apiVersion": f"{names.API_GROUP}/{names.API_VERSION}", "kind": names.KIND,
                "metadata": {"name": "orders", "namespace": NS, "uid": "wp-uid", "generation": 1,
                             "resourceVersion": "1"},
                "spec": {"image": "x", "replicas": 1, "processes": 2},
                "status": {"conditions": [{"type": "Ready", "status": "False", "reason": "ReplicasNotReady",
                                           "message": "kept", "lastTransitionTime": "2024-01-01T00:00:00Z"}]}})
            c = await wait_until(lambda: condition(stored(kmock, WP, "orders"), TYPE), "the crash-storm condition")
            assert (c["status"], c["reason"]) == ("True", crash_storms.REASON_STORM)
            assert "orders-1 since " in c["message"]
            assert condition(stored(kmock, WP, "orders"), "Ready")["message"] == "kept"
            (warning,) = await wait_until(lambda: events(kmock, crash_storms.EVENT_STARTED), "the Warning Event")
            assert warning["type"] == "Warning" and warning["message"] == c["message"]
            assert warning["involvedObject"]["name"] == "orders"
            await wait_until(lambda: (stored(kmock, WP, "orders")["status"].get("live") or {})
                             .get("crashLoopingPods") == 1, "status.live.crashLoopingPods")

            # a couple of polls first: the poller then holds the body the watch sent
            # back after its own write (kmock checks no resourceVersion, so a tick on
            # the older body would write again, where a real API server answers 409)
            lists = pod_lists(kmock)
            await wait_until(lambda: pod_lists(kmock) >= lists + 2, "2 more polls")
            writes, lists = status_patches(kmock), pod_lists(kmock)
            await wait_until(lambda: pod_lists(kmock) >= lists + 5, "5 more polls")
            assert status_patches(kmock) == writes  # nothing changed: not rewritten
            assert len(events(kmock, crash_storms.EVENT_STARTED)) == 1

            async with kmock.delete(url(PODS, "orders-1")) as resp:  # the pod is gone (replaced, scaled in)
                assert resp.status < 300
            await wait_until(lambda: condition(stored(kmock, WP, "orders"), TYPE)["status"] == "False",
                             "the condition cleared")
            (normal,) = await wait_until(lambda: events(kmock, crash_storms.EVENT_ENDED), "the Normal Event")
            assert normal["type"] == "Normal"
