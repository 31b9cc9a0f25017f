"""The WorkersCrashLooping condition from real podsup processes standing in
for the pool's pods (their ``--http`` ports as the pods' metrics ports),
through the poller's tick with the Kubernetes calls faked at the ``Kube``
seam and a fake monotonic clock: a storming podsup fails readiness, so its
pod is listed not Ready and is read all the same; the condition names it,
is written once (not per poll), with a Warning Event; the pod restarted
calm ends it after the calm hold, with a Normal Event."""
from __future__ import annotations

import asyncio
import sys

from podsup import names
from podsup_operator import crash_storms
from podsup_operator.metrics_api.poller import PoolPoller
from podsup_operator.metrics_api.provider import MetricsProvider
from podsup_operator.metrics_api.sources.pods import PodScraper
from podsup_operator.metrics_api.sources.queue import QueueRegistry
from tests.integration.podsup_process import PodsupProcess, worker
from tests.integration.servers import http_get, sample
from tests.waiting import wait_for

from .helpers import FakePods, pod
from .test_live_status_poller import PodKube
from .test_poller import NS, Clock, cond, fixed_body

LABELS = {names.POOL_LABEL: "orders"}
TYPE = crash_storms.CONDITION_TYPE


async def test_a_crash_storm_of_real_podsup_pods_in_the_condition_events_and_live():
    storming = PodsupProcess(["run", "--workers", "2", "--crashloop-threshold", "3", "--crashloop-interval", "600",
                              "--crashloop-restart-after", "1", "--", sys.executable, worker("crasher")],
                             env={"CRASH_AFTER": "0"})
    healthy = PodsupProcess(["run", "--workers", "2", "--", sys.executable, worker("sleeper")])
    with storming, healthy:
        await asyncio.to_thread(
            wait_for, lambda: sample(storming.http_port, "podsup_crash_loop_unhealthy") == 1
            and http_get(storming.http_port, "/readyz")[0] == 503
            and (sample(healthy.http_port, "podsup_workers", state="idle") or 0) == 2,
            timeout=60, message="one podsup in a crash storm past --crashloop-restart-after, one calm")
        kube = PodKube(fixed_body())
        pods = FakePods()
        # as the kubelet sees them: the storming pod fails /readyz, so it is not Ready
        pods.pods = [pod("orders-a", NS, LABELS, healthy.http_port),
                     pod("orders-b", NS, LABELS, storming.http_port, ready=False)]
        provider = MetricsProvider(QueueRegistry(), pods, PodScraper(timeout=30.0, ttl=0.0))
        clock = Clock()
        events = []
        poller = PoolPoller(NS, "orders", QueueRegistry(), provider, kube, lambda *e: events.append(e),
                            monotonic=clock)
        try:
            await poller.tick(kube.body)
            c = cond(kube.body, TYPE)
            assert (c["status"], c["reason"]) == ("True", crash_storms.REASON_STORM)
            assert c["message"].startswith("1 pod in a crash storm") and "orders-b since " in c["message"]
            assert "liveness failing: the kubelet restarts it" in c["message"]
            assert events == [("Warning", crash_storms.EVENT_STARTED, c["message"])]
            live = kube.body["status"]["live"]
            assert live["crashLoopingPods"] == 1
            assert live["pods"] == 1 and live["workers"]["running"] == 2  # the ready pod's figures alone
            assert cond(kube.body, "Ready")["message"] == "m"  # other writers' conditions kept
            writes = len(kube.status_patches)

            for _ in range(3):  # still storming: polls write nothing, post nothing
                clock.t += 30
                await poller.tick(kube.body)
            assert len(kube.status_patches) == writes and len(events) == 1

            # the kubelet restarted the pod's container: a fresh podsup, calm for now
            pods.pods[1] = pod("orders-b", NS, LABELS, healthy.http_port)
            clock.t += 1
            await poller.tick(kube.body)
            assert cond(kube.body, TYPE)["status"] == "True" and len(events) == 1  # held against flapping
            clock.t += crash_storms.CALM_HOLD
            await poller.tick(kube.body)
            c = cond(kube.body, TYPE)
            assert (c["status"], c["reason"], c["message"]) == ("False", crash_storms.REASON_CALM,
                                                                crash_storms.CALM_MESSAGE)
            assert events[-1][:2] == ("Normal", crash_storms.EVENT_ENDED) and len(events) == 2
            clock.t += 30
            await poller.tick(kube.body)
            assert len(events) == 2
        finally:
            poller.close()
            await provider.scraper.close()
