"""status.live from real podsup processes standing in for the pool's pods
(their ``--http`` ports as the pods' metrics ports), through the poller's
tick with the Kubernetes calls faked at the ``Kube`` seam: the figures are
podsup's own, a quiet pool is written once and then never again, and a
change is written no sooner than 10 s after the last write."""
from __future__ import annotations

import asyncio
import sys

from podsup import names
from podsup_operator.live_status import WRITE_INTERVAL
from podsup_operator.metrics_api.poller import PoolPoller
from podsup_operator.metrics_api.provider import MetricsProvider
from podsup_operator.metrics_api.sources.pods import PodScraper
from podsup_operator.metrics_api.sources.queue import QueueRegistry
from tests.integration.podsup_process import PodsupProcess, worker
from tests.integration.servers import sample
from tests.waiting import wait_for

from .helpers import FakePods, pod
from .test_poller import NS, Clock, FakeKube, pods_only_body

LABELS = {names.POOL_LABEL: "orders"}


class PodKube(FakeKube):
    def patch_pod(self, namespace, name, body):
        pass  # the deletion cost has its own test (test_scale_in)


async def test_live_figures_of_real_podsup_pods_and_no_writes_while_quiet():
    busy = PodsupProcess(["run", "--workers", "2", "--", sys.executable, worker("metrics_worker")],
                         env={"JOB_SECONDS": "3600"})
    idle = PodsupProcess(["run", "--workers", "3", "--", sys.executable, worker("sleeper")])
    with busy, idle:
        await asyncio.to_thread(
            wait_for, lambda: (sample(busy.http_port, "podsup_workers", state="busy") or 0) == 2
            and (sample(idle.http_port, "podsup_workers", state="idle") or 0) == 3,
            timeout=60, message="two busy and three idle workers")
        kube = PodKube(pods_only_body())
        pods = FakePods()
        pods.pods = [pod("busy", NS, LABELS, busy.http_port), pod("idle", NS, LABELS, idle.http_port)]
        provider = MetricsProvider(QueueRegistry(), pods, PodScraper(timeout=30.0, ttl=0.0))
        clock = Clock()
        poller = PoolPoller(NS, "orders", QueueRegistry(), provider, kube, lambda *e: None, monotonic=clock)
        try:
            await poller.tick(kube.body)
            live = kube.body["status"]["live"]
            assert live["pods"] == 2 and live["restarts"] == 0
            assert live["workers"] == {"desired": 5, "running": 5, "busy": 2, "idle": 3}
            assert live["busyRatio"] == 0.4 and live["requestsPerSecond"] == 0.0
            assert "queueDepth" not in live
            writes = len(kube.status_patches)

            for _ in range(5):  # a quiet pool: polls and resyncs write nothing
                clock.t += WRITE_INTERVAL + 1
                await poller.tick(kube.body)
            assert len(kube.status_patches) == writes

            both = list(pods.pods)
            pods.pods = both[1:]  # the busy pod is gone (scaled in): written at once
            clock.t += 1
            await poller.tick(kube.body)
            assert len(kube.status_patches) == writes + 1
            assert kube.body["status"]["live"]["workers"] == {"desired": 3, "running": 3, "busy": 0, "idle": 3}

            pods.pods = both  # back within 10 s of that write: held
            clock.t += WRITE_INTERVAL - 1
            await poller.tick(kube.body)
            assert len(kube.status_patches) == writes + 1
            assert kube.body["status"]["live"]["pods"] == 1
            clock.t += 1
            await poller.tick(kube.body)
            assert len(kube.status_patches) == writes + 2
            assert kube.body["status"]["live"]["workers"]["busy"] == 2
        finally:
            poller.close()
            await provider.scraper.close()
