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
from podsup_operator.status import compute_status
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


async def test_status_workers_of_a_dynamic_pool_is_the_running_count_of_its_real_podsup():
    """processes (the start count) x ready pods would say 1; podsup grew to 3
    busy workers, and status.workers (the WORKERS column) says 3."""
    grown = PodsupProcess(["run", "--workers", "1", "--min-workers", "1", "--max-workers", "3",
                           "--spare-workers", "1", "--", sys.executable, worker("metrics_worker")],
                          env={"JOB_SECONDS": "3600"})
    with grown:
        await asyncio.to_thread(
            wait_for, lambda: (sample(grown.http_port, "podsup_workers", state="busy") or 0) == 3,
            timeout=60, message="the dynamic pool grown to 3 busy workers")
        body = pods_only_body()
        body["spec"].update(processes=1, dynamicProcesses={"min": 1, "max": 3})
        body["status"].update(readyReplicas=1, workers=1)  # what a reconcile before the scrape wrote
        kube = PodKube(body)
        pods = FakePods()
        pods.pods = [pod("grown", NS, LABELS, grown.http_port)]
        provider = MetricsProvider(QueueRegistry(), pods, PodScraper(timeout=30.0, ttl=0.0))
        poller = PoolPoller(NS, "orders", QueueRegistry(), provider, kube, lambda *e: None, monotonic=Clock())
        try:
            await poller.tick(kube.body)
            assert kube.body["status"]["live"]["workers"]["running"] == 3
            assert kube.body["status"]["workers"] == 3
            assert compute_status(kube.body, {"spec": {"replicas": 1}, "status": {"readyReplicas": 1}}, None, None,
                                  "2026-01-01T00:00:00Z")["workers"] == 3  # the reconcile agrees: no tug of war
        finally:
            poller.close()
            await provider.scraper.close()
