"""The per-pool poller's tick against a real redis-server, with the Kubernetes
calls behind the ``Kube`` seam faked (a dict world) and a fake monotonic
clock: Secret-held URLs, status writes only on change (queueDepth throttled),
conditions and Events on metrics trouble and recovery, busy workers holding
scale to zero, and forgetting a pool."""
from __future__ import annotations

import pytest

from podsup import names
from podsup_operator.metrics_api.poller import METRICS_AVAILABLE, QUEUE_DEPTH_WRITE_INTERVAL, PoolPoller
from podsup_operator.metrics_api.provider import MetricError, MetricsProvider
from podsup_operator.metrics_api.sources.pods import PodScraper
from podsup_operator.metrics_api.sources.queue import QueueRegistry
from podsup_operator.scale_to_zero import Phase

from .helpers import FakePods, pod

NS = "shop"


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


class FakeKube:
    """The poller's Kubernetes calls on a dict world; status patches are
    merge patches applied to ``body`` like the API server would."""

    def __init__(self, body: dict, replicas: int | None = 1):
        self.body = body
        self.replicas = replicas
        self.secrets: dict[tuple[str, str], str] = {}
        self.status_patches: list[dict] = []
        self.scales: list[int] = []

    def secret_value(self, namespace, name, key):
        return self.secrets.get((name, key))

    def deployment_replicas(self, namespace, name):
        return self.replicas

    def scale_deployment(self, namespace, name, replicas):
        self.scales.append(replicas)
        self.replicas = replicas

    def patch_pool_status(self, namespace, name, status, resource_version=None):
        if resource_version != self.body["metadata"].get("resourceVersion"):
            return False  # the API server's optimistic concurrency: 409
        self.status_patches.append(status)
        current = self.body.setdefault("status", {})
        for key, value in status.items():
            if value is None:
                current.pop(key, None)
            else:
                current[key] = value
        self.body["metadata"]["resourceVersion"] = str(int(self.body["metadata"]["resourceVersion"]) + 1)
        return True


def pool_body(queue: dict, min_replicas: int = 1, cooldown: int = 0) -> dict:
    return {"apiVersion": f"{names.API_GROUP}/{names.API_VERSION}", "kind": names.KIND,
            "metadata": {"name": "orders", "namespace": NS, "generation": 3, "resourceVersion": "7"},
            "spec": {"queue": queue, "autoscaling": {"enabled": True, "minReplicas": min_replicas, "maxReplicas": 3,
                                                     "idleCooldownSeconds": cooldown}},
            "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "R", "message": "m",
                                       "lastTransitionTime": "2024-01-01T00:00:00Z"}]}}


def cond(body, type_):
    return next((c for c in body["status"].get("conditions", []) if c["type"] == type_), None)


@pytest.fixture
async def world():
    providers = []

    def make(body, replicas=1):
        kube = FakeKube(body, replicas)
        pods = FakePods()
        registry = QueueRegistry()
        provider = MetricsProvider(registry, pods, PodScraper(timeout=30.0, ttl=0.0))
        providers.append(provider)
        events = []
        clock = Clock()
        poller = PoolPoller(NS, "orders", registry, provider, kube, lambda *e: events.append(e), monotonic=clock)
        return poller, kube, pods, registry, provider, events, clock
    yield make
    for provider in providers:  # the scraper's HTTP session lives on this test's event loop
        await provider.scraper.close()


async def test_url_from_the_secret_and_a_rotated_secret_rebuilds_the_probe(world, redis_server):
    queue = {"type": "redis", "name": "jobs", "urlSecretRef": {"name": "broker", "key": "url"}}
    poller, kube, _, registry, _, events, _ = world(pool_body(queue))
    try:
        await poller.tick(kube.body)
        c = cond(kube.body, METRICS_AVAILABLE)
        assert c["status"] == "False" and c["reason"] == "QueueDepthUnavailable"
        assert "Secret 'broker' key 'url' is missing" in c["message"]
        assert events == [("Warning", "MetricsUnavailable", c["message"])]
        assert cond(kube.body, "Ready")["message"] == "m"  # other writers' conditions kept

        redis_server.client().rpush("jobs", "a", "b")
        kube.secrets[("broker", "url")] = f"redis://127.0.0.1:{redis_server.port}/0?list=jobs"
        await poller.tick(kube.body)
        assert kube.body["status"]["queueDepth"] == 2
        assert cond(kube.body, METRICS_AVAILABLE)["status"] == "True"
        assert events[-1][:2] == ("Normal", "MetricsAvailable")
        assert registry.pools(NS)["orders"].value == 2

        redis_server.client().rpush("other", "x")
        kube.secrets[("broker", "url")] = f"redis://127.0.0.1:{redis_server.port}/0?list=other"
        await poller.tick(kube.body)
        assert kube.body["status"]["queueDepth"] == 1  # the new URL is read, not the cached probe's
    finally:
        poller.close()


async def test_status_is_written_only_on_change_and_queue_depth_is_throttled(world, redis_server):
    queue = {"type": "redis", "name": "jobs", "url": f"redis://127.0.0.1:{redis_server.port}/0"}
    poller, kube, _, _, _, _, clock = world(pool_body(queue))
    r = redis_server.client()
    try:
        r.rpush("jobs", *"abcde")
        await poller.tick(kube.body)
        assert kube.body["status"]["queueDepth"] == 5
        writes = len(kube.status_patches)
        await poller.tick(kube.body)
        assert len(kube.status_patches) == writes  # nothing changed: no write

        r.rpush("jobs", "f")
        clock.t += QUEUE_DEPTH_WRITE_INTERVAL / 2
        await poller.tick(kube.body)
        assert kube.body["status"]["queueDepth"] == 5 and len(kube.status_patches) == writes  # throttled
        clock.t += QUEUE_DEPTH_WRITE_INTERVAL
        await poller.tick(kube.body)
        assert kube.body["status"]["queueDepth"] == 6

        r.delete("jobs")
        clock.t += 0.1
        await poller.tick(kube.body)
        assert kube.body["status"]["queueDepth"] == 0  # reaching 0 is written at once

        redis_server.stop()
        await poller.tick(kube.body)
        assert "queueDepth" not in kube.body["status"]  # unknown, not stale
    finally:
        poller.close()


async def test_pod_metrics_failures_show_in_the_condition(world, redis_server, dead_port):
    queue = {"type": "redis", "name": "jobs", "url": f"redis://127.0.0.1:{redis_server.port}/0"}
    poller, kube, pods, _, provider, events, _ = world(pool_body(queue))
    try:
        pods.pods = [pod("orders-1", NS, {names.POOL_LABEL: "orders"}, dead_port)]
        with pytest.raises(MetricError):  # the HPA's ask fails: no pod answered
            await provider.pods(NS, "*", names.METRIC_BUSY_RATIO, f"{names.POOL_LABEL}=orders")
        await poller.tick(kube.body)
        c = cond(kube.body, METRICS_AVAILABLE)
        assert (c["status"], c["reason"]) == ("False", "PodMetricsUnavailable") and "orders-1" in c["message"]
        assert events[-1][:2] == ("Warning", "MetricsUnavailable")
    finally:
        poller.close()


async def test_busy_workers_unknown_hold_scale_to_zero_and_known_idle_scales(world, redis_server, dead_port):
    queue = {"type": "redis", "name": "jobs", "url": f"redis://127.0.0.1:{redis_server.port}/0"}
    poller, kube, pods, _, _, events, clock = world(pool_body(queue, min_replicas=0, cooldown=0))
    try:
        pods.pods = [pod("orders-1", NS, {names.POOL_LABEL: "orders"}, dead_port)]  # /metrics unreachable
        await poller.tick(kube.body)
        clock.t += 10
        await poller.tick(kube.body)
        assert kube.scales == [] and poller.state.phase is not Phase.SCALED_TO_ZERO

        pods.pods = []  # no ready pod: nobody is busy
        await poller.tick(kube.body)
        assert kube.scales == [0]
        assert cond(kube.body, "ScaledToZero")["status"] == "True"
        assert events[-1][:2] == ("Normal", "ScaledToZero")
    finally:
        poller.close()


async def test_forget_stops_serving_the_pool(world, redis_server):
    queue = {"type": "redis", "name": "jobs", "url": f"redis://127.0.0.1:{redis_server.port}/0"}
    poller, kube, _, registry, _, _, _ = world(pool_body(queue))
    await poller.tick(kube.body)
    assert "orders" in registry.pools(NS)
    poller.forget()
    assert registry.pools(NS) == {}


async def test_a_status_write_racing_another_writer_is_retried_next_tick(world, redis_server):
    queue = {"type": "redis", "name": "jobs", "url": f"redis://127.0.0.1:{redis_server.port}/0"}
    poller, kube, _, _, _, events, _ = world(pool_body(queue))
    try:
        stale = {**kube.body, "metadata": {**kube.body["metadata"], "resourceVersion": "6"}}
        await poller.tick(stale)  # read before someone else's write: refused, nothing claimed
        assert kube.status_patches == [] and events == []
        await poller.tick(kube.body)
        assert cond(kube.body, METRICS_AVAILABLE)["status"] == "True" and len(kube.status_patches) == 1
    finally:
        poller.close()


def pods_only_body() -> dict:
    body = pool_body({})
    del body["spec"]["queue"]
    body["spec"]["autoscaling"]["targets"] = {"busyWorkersPercent": 80}
    return body


async def test_a_pool_without_a_queue_is_unknown_until_its_pods_metrics_are_asked_for(world, dead_port):
    poller, kube, pods, registry, provider, events, _ = world(pods_only_body())
    await poller.tick(kube.body)
    c = cond(kube.body, METRICS_AVAILABLE)
    assert (c["status"], c["reason"]) == ("Unknown", "NotReadYet") and events == []
    assert "queueDepth" not in kube.body["status"] and registry.pools(NS) == {}

    pods.pods = [pod("orders-1", NS, {names.POOL_LABEL: "orders"}, dead_port)]  # /metrics unreachable
    with pytest.raises(MetricError):
        await provider.pods(NS, "*", names.METRIC_BUSY_RATIO, f"{names.POOL_LABEL}=orders")
    await poller.tick(kube.body)
    c = cond(kube.body, METRICS_AVAILABLE)
    assert (c["status"], c["reason"]) == ("False", "PodMetricsUnavailable") and "orders-1" in c["message"]
    assert events == [("Warning", "MetricsUnavailable", c["message"])]


def fixed_body() -> dict:
    body = pool_body({})
    del body["spec"]["queue"], body["spec"]["autoscaling"]
    return body


async def test_a_fixed_size_pool_gets_live_figures_and_no_metrics_condition(world, dead_port):
    """No queue, no autoscaling: the scrape alone (status.live, deletion
    cost), no MetricsAvailable (nothing reads its metrics; a stale one from
    when it was autoscaled is removed), and a quiet pool is not rewritten."""
    body = fixed_body()
    body["status"]["conditions"].append({"type": METRICS_AVAILABLE, "status": "True", "reason": "MetricsReadable",
                                         "message": "old", "lastTransitionTime": "2024-01-01T00:00:00Z"})
    poller, kube, pods, registry, _, events, clock = world(body)
    await poller.tick(kube.body)
    assert kube.body["status"]["live"]["pods"] == 0 and kube.body["status"]["live"]["workers"]["running"] == 0
    assert cond(kube.body, METRICS_AVAILABLE) is None and cond(kube.body, "Ready")["message"] == "m"
    assert events == [] and registry.pools(NS) == {} and kube.scales == []
    assert pods.calls == 1  # its pods were listed for the scrape
    writes = len(kube.status_patches)
    for _ in range(3):
        clock.t += 60
        await poller.tick(kube.body)
    assert len(kube.status_patches) == writes and pods.calls == 4


async def test_removing_the_queue_at_zero_replicas_scales_back_to_one_and_stops_serving_it(world, redis_server):
    queue = {"type": "redis", "name": "jobs", "url": f"redis://127.0.0.1:{redis_server.port}/0"}
    body = pool_body(queue, min_replicas=0, cooldown=0)
    poller, kube, pods, registry, _, events, _ = world(body, replicas=0)
    try:
        await poller.tick(kube.body)
        assert poller.state.phase is Phase.SCALED_TO_ZERO and "orders" in registry.pools(NS)
        assert kube.body["status"]["queueDepth"] == 0

        del kube.body["spec"]["queue"]  # the user drops the queue (and with it scale to zero)
        await poller.tick(kube.body)
        assert kube.scales == [1] and poller.state.phase is Phase.DISABLED
        assert events[-1][:2] == ("Normal", "ScaleToZeroDisabled")
        assert registry.pools(NS) == {} and "queueDepth" not in kube.body["status"]
    finally:
        poller.close()


async def test_pollers_follow_the_watch_start_refresh_and_stop(redis_server, monkeypatch):
    """handlers.Pollers: a task per pool needing one (no kopf daemon, so no
    finalizer), fed the newest body, stopped when the pool no longer needs it."""
    import asyncio

    from podsup_operator.metrics_api import handlers

    queue = {"type": "redis", "name": "jobs", "url": f"redis://127.0.0.1:{redis_server.port}/0",
             "pollIntervalSeconds": 0.05}
    body = pool_body(queue)
    kube = FakeKube(body)
    registry = QueueRegistry()
    provider = MetricsProvider(registry, FakePods(), PodScraper(timeout=30.0, ttl=0.0))
    monkeypatch.setattr(handlers, "_runtime", handlers.Runtime(kube, registry, provider))
    pollers = handlers.Pollers()

    async def until(predicate, what, timeout=30.0):
        # a deadline in time, not a count of sleeps: ticks run broker reads in
        # threads, slow on a loaded machine
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            if loop.time() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            await asyncio.sleep(0.01)

    try:
        pollers.observe(None, body)  # the initial listing
        await until(lambda: "orders" in registry.pools(NS), "the pool's depth served")
        task = pollers.tasks[(NS, "orders")]
        redis_server.client().rpush("jobs", "a", "b")
        pollers.observe("MODIFIED", kube.body)  # same pool: the same task, the newer body
        assert pollers.tasks[(NS, "orders")] is task
        await until(lambda: kube.body["status"].get("queueDepth") == 2, "queueDepth from the newer body")

        fixed = {**kube.body, "spec": {"image": "x"}}  # no queue, no autoscaling: still polled
        pollers.observe("MODIFIED", fixed)
        await until(lambda: registry.pools(NS) == {}, "the removed queue no longer served")
        assert pollers.tasks[(NS, "orders")] is task and not task.done()

        deleting = {**kube.body, "metadata": {**kube.body["metadata"], "deletionTimestamp": "2024-01-01T00:00:00Z"}}
        pollers.observe("MODIFIED", deleting)
        await until(task.done, "the poller of a pool being deleted to stop")
        assert not pollers.tasks

        pollers.observe("ADDED", kube.body)
        await until(lambda: "orders" in registry.pools(NS), "a poller again")
        pollers.observe("DELETED", kube.body)
        await until(lambda: registry.pools(NS) == {} and not pollers.tasks, "the deleted pool forgotten")
    finally:
        await pollers.stop_all()


async def test_a_follower_serves_the_depth_and_writes_nothing_the_leader_writes(redis_server):
    """--leader-elect: every replica polls (its metrics API serves the depth
    from its own registry); only while ``leading()`` does a tick write status,
    scale through the scale subresource, or post Events."""
    queue = {"type": "redis", "name": "jobs", "url": f"redis://127.0.0.1:{redis_server.port}/0"}
    body = pool_body(queue, min_replicas=0)  # scale to zero on: an empty queue would scale 1 -> 0
    kube = FakeKube(body, replicas=1)
    registry = QueueRegistry()
    provider = MetricsProvider(registry, FakePods(), PodScraper(timeout=30.0, ttl=0.0))
    events, clock, leading = [], Clock(), [False]
    poller = PoolPoller(NS, "orders", registry, provider, kube, lambda *e: events.append(e), monotonic=clock,
                        leading=lambda: leading[0])
    try:
        redis_server.client().rpush("jobs", "a", "b", "c")
        for _ in range(3):
            await poller.tick(kube.body)
            clock.t += 60
        assert registry.pools(NS)["orders"].value == 3  # served by this replica's metrics API
        assert kube.status_patches == [] and kube.scales == [] and events == []
        assert poller.state.phase is Phase.DISABLED  # the scale-to-zero machine is the leader's alone

        leading[0] = True
        await poller.tick(kube.body)
        assert kube.body["status"]["queueDepth"] == 3 and cond(kube.body, METRICS_AVAILABLE)["status"] == "True"
        redis_server.client().delete("jobs")
        for _ in range(3):
            clock.t += 60
            await poller.tick(kube.body)
        assert kube.scales == [0]  # the leader scales an idle pool to zero
    finally:
        poller.close()
        await provider.scraper.close()
