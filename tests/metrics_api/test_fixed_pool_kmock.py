"""A fixed-size WorkerPool (no queue, no autoscaling) gets a poller too: the
metrics API's kopf wiring, in-process against kmock, with a real ``podsup
run`` process standing in for the pool's one pod (its ``--http`` port as the
pod's metrics port). Its live figures reach ``status.live``, its pod gets a
deletion cost, and no ``MetricsAvailable`` condition is written (nothing
reads a fixed pool's metrics)."""
from __future__ import annotations

import asyncio
import sys

import pytest

from podsup import names
from podsup_operator import deletion_cost
from podsup_operator.metrics_api import handlers
from tests.integration.podsup_process import PodsupProcess, worker
from tests.integration.servers import sample
from tests.waiting import wait_for

from .helpers import ReviewingEmulator, pod, post, url
from .test_operator_kmock import NS, WP, condition, operator, stored, wait_until

pytestmark = pytest.mark.kmock(cls=ReviewingEmulator)

PODS = "v1/pods"


@pytest.mark.timeout(240)  # real time: kopf's start and stop, a real podsup
async def test_a_fixed_size_pool_is_polled_live_status_and_deletion_cost(emulator, monkeypatch):
    kmock = emulator
    monkeypatch.setattr(handlers, "SETTINGS", handlers.Settings(enabled=False))
    busy = PodsupProcess(["run", "--workers", "2", "--", sys.executable, worker("metrics_worker")],
                         env={"JOB_SECONDS": "3600"})
    with busy:
        await asyncio.to_thread(
            wait_for, lambda: (sample(busy.http_port, "podsup_workers", state="busy") or 0) == 2,
            timeout=60, message="two busy workers")
        p = pod("orders-1", NS, {names.POOL_LABEL: "orders"}, busy.http_port)
        await post(kmock, url(PODS), {"apiVersion": "v1", "kind": "Pod", **p,
                                      "metadata": {**p["metadata"], "uid": "pod-uid"}})
        async with operator(kmock):
            await post(kmock, url(WP), {
                "apiVersion": f"{names.API_GROUP}/{names.API_VERSION}", "kind": names.KIND,
                "metadata": {"name": "orders", "namespace": NS, "uid": "wp-uid", "generation": 1,
                             "resourceVersion": "1"},
                "spec": {"image": "x", "replicas": 1, "processes": 2},
                "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "AllReplicasReady",
                                           "message": "kept", "lastTransitionTime": "2024-01-01T00:00:00Z"}]}})
            live = await wait_until(lambda: ((stored(kmock, WP, "orders") or {}).get("status") or {}).get("live"),
                                    "status.live of the fixed pool")
            assert live["pods"] == 1
            assert live["workers"] == {"desired": 2, "running": 2, "busy": 2, "idle": 0}
            await wait_until(lambda: ((stored(kmock, PODS, "orders-1").get("metadata") or {})
                                      .get("annotations") or {}).get(deletion_cost.ANNOTATION) == "200",
                             "the pod's deletion cost (2 busy workers x 100)")
            pool = stored(kmock, WP, "orders")
            assert condition(pool, "MetricsAvailable") is None
            assert condition(pool, "Ready")["message"] == "kept"
