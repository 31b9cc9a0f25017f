"""The metrics API over real HTTPS: certificates generated with cryptography,
front-proxy and bearer-token callers, discovery, values from a real
redis-server and real /metrics endpoints, and every refusal."""
from __future__ import annotations

import asyncio
import datetime as dt

import aiohttp
import pytest
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from podsup import names
from podsup_operator.metrics_api.auth import RequestHeaderConfig
from podsup_operator.metrics_api.sources.queue import QueueProbe, broker_url

from .helpers import CUS, EXT, FRONT_PROXY_CN, HPA_HEADERS, HPA_USER, NS, pod


def assert_status(body: dict, code: int, reason: str):
    assert body["kind"] == "Status" and body["status"] == "Failure"
    assert body["code"] == code and body["reason"] == reason, body
    assert "items" not in body


# --- discovery -------------------------------------------------------------

async def test_discovery_lists_both_group_versions_for_a_front_proxy_user_without_groups(api):
    status, body = await api.get(EXT, headers={"X-Remote-User": "system:kube-aggregator"})
    assert status == 200
    assert body["kind"] == "APIResourceList" and body["groupVersion"] == "external.metrics.k8s.io/v1beta1"
    assert [r["name"] for r in body["resources"]] == [names.METRIC_QUEUE_DEPTH]
    assert body["resources"][0]["kind"] == "ExternalMetricValueList" and body["resources"][0]["namespaced"]
    status, body = await api.get(CUS, headers={"X-Remote-User": "system:kube-aggregator"})
    assert status == 200 and body["groupVersion"] == "custom.metrics.k8s.io/v1beta2"
    assert {r["name"] for r in body["resources"]} == {f"pods/{names.METRIC_REQUESTS_PER_SECOND}",
                                                      f"pods/{names.METRIC_BUSY_RATIO}",
                                                      f"pods/{names.METRIC_POOL_SATURATION}"}
    # The aggregator sends no X-Remote-Group: the SAR still carries system:authenticated.
    user, attrs = api.sar.reviews[0]
    assert "system:authenticated" in user.groups
    assert attrs == {"nonResourceAttributes": {"path": EXT, "verb": "get"}}


async def test_group_documents_and_group_list(api):
    status, body = await api.get("/apis/custom.metrics.k8s.io", headers=HPA_HEADERS)
    assert status == 200 and body["kind"] == "APIGroup"
    assert body["preferredVersion"] == {"groupVersion": "custom.metrics.k8s.io/v1beta2", "version": "v1beta2"}
    status, body = await api.get("/apis", headers=HPA_HEADERS)
    assert [g["name"] for g in body["groups"]] == ["external.metrics.k8s.io", "custom.metrics.k8s.io"]


async def test_health_needs_no_credentials(api):
    url = f"https://127.0.0.1:{api.port}/healthz"
    async with aiohttp.ClientSession() as s:
        async with s.get(url, ssl=api.client_ctx(None)) as r:
            assert r.status == 200 and await r.text() == "ok"


# --- authentication --------------------------------------------------------

async def test_no_certificate_and_no_token_is_401_without_data(api):
    api.queues.put(NS, "orders", _reading(5), 5)
    status, body = await api.get(f"{EXT}/namespaces/{NS}/{names.METRIC_QUEUE_DEPTH}?labelSelector=workerpool%3Dorders",
                                 cert=None, headers={"X-Remote-User": "system:admin", "X-Remote-Group": "system:masters"})
    assert status == 401
    assert_status(body, 401, "Unauthorized")
    assert api.sar.reviews == []


async def test_headers_from_a_certificate_whose_cn_is_not_allowed_are_ignored(api):
    status, body = await api.get(EXT, cert="front_proxy_other_cn",
                                 headers={"X-Remote-User": "system:admin", "X-Remote-Group": "system:masters"})
    assert status == 401
    assert_status(body, 401, "Unauthorized")


async def test_a_client_certificate_from_another_ca_fails_the_handshake(api):
    with pytest.raises(aiohttp.ClientConnectionError):
        await api.get(EXT, cert="rogue", headers=HPA_HEADERS)


async def test_bearer_token_is_verified_by_tokenreview_and_cached(api):
    for _ in range(3):
        status, body = await api.get(EXT, cert=None, headers={"Authorization": "Bearer hpa-token"})
        assert status == 200 and body["kind"] == "APIResourceList"
    assert api.tokens.calls == 1
    status, body = await api.get(EXT, cert=None, headers={"Authorization": "Bearer forged"})
    assert_status(body, 401, "Unauthorized")


async def test_front_proxy_groups_and_extra_reach_the_access_review(api):
    api.queues.put(NS, "orders", _reading(5), 5)
    headers = {"X-Remote-User": "alice", "X-Remote-Group": "team-a",
               "X-Remote-Extra-Scopes%2Fa": "s1"}
    status, body = await api.get(f"{EXT}/namespaces/{NS}/{names.METRIC_QUEUE_DEPTH}?labelSelector=workerpool%3Dorders",
                                 headers=headers)
    assert status == 403
    user, attrs = api.sar.reviews[-1]
    assert user.name == "alice" and set(user.groups) == {"team-a", "system:authenticated"}
    assert dict(user.extra) == {"scopes/a": ("s1",)}


# --- authorization ---------------------------------------------------------

async def test_unauthorized_user_gets_403_and_no_data(api):
    api.queues.put(NS, "orders", _reading(42), 5)
    status, body = await api.get(f"{EXT}/namespaces/{NS}/{names.METRIC_QUEUE_DEPTH}?labelSelector=workerpool%3Dorders",
                                 cert=None, headers={"Authorization": "Bearer bob-token"})
    assert status == 403
    assert_status(body, 403, "Forbidden")
    assert "42" not in str(body)
    _, attrs = api.sar.reviews[-1]
    assert attrs == {"resourceAttributes": {"group": "external.metrics.k8s.io", "version": "v1beta1",
                                            "resource": names.METRIC_QUEUE_DEPTH, "verb": "list",
                                            "namespace": NS}}


async def test_access_reviews_are_cached_per_user_and_request(api):
    api.queues.put(NS, "orders", _reading(1), 5)
    path = f"{EXT}/namespaces/{NS}/{names.METRIC_QUEUE_DEPTH}?labelSelector=workerpool%3Dorders"
    for _ in range(5):
        status, _ = await api.get(path, headers=HPA_HEADERS)
        assert status == 200
    assert len(api.sar.reviews) == 1
    await api.get(path, headers={"X-Remote-User": "carol"})
    assert len(api.sar.reviews) == 2


async def test_failing_token_and_access_reviews_are_503_without_data(api):
    api.queues.put(NS, "orders", _reading(42), 5)
    path = f"{EXT}/namespaces/{NS}/{names.METRIC_QUEUE_DEPTH}?labelSelector=workerpool%3Dorders"

    async def broken(*_):
        raise ConnectionError("apiserver unreachable")

    api.api.authn._review = broken
    status, body = await api.get(path, cert=None, headers={"Authorization": "Bearer new-token"})
    assert_status(body, 503, "ServiceUnavailable")
    assert "TokenReview" in body["message"] and "42" not in str(body)
    api.api.authz._review = broken
    status, body = await api.get(path, headers={"X-Remote-User": "dave"})
    assert_status(body, 503, "ServiceUnavailable")
    assert "SubjectAccessReview" in body["message"] and "42" not in str(body)


# --- external metric from a real redis-server -------------------------------

async def test_queue_depth_comes_from_the_real_broker(api, redis_server):
    redis_server.client().rpush("orders-jobs", *[f"job{i}" for i in range(7)])
    probe = QueueProbe(broker_url({"type": "redis", "name": "orders-jobs", "url": redis_server.url}))
    try:
        reading = await asyncio.to_thread(probe.read)
        api.queues.put(NS, "orders", reading, 5)
        status, body = await api.get(
            f"{EXT}/namespaces/{NS}/{names.METRIC_QUEUE_DEPTH}?labelSelector=workerpool%3Dorders",
            headers=HPA_HEADERS)
        assert status == 200, body
        assert body["kind"] == "ExternalMetricValueList" and body["apiVersion"] == "external.metrics.k8s.io/v1beta1"
        (item,) = body["items"]
        assert item["metricName"] == names.METRIC_QUEUE_DEPTH
        assert item["metricLabels"] == {names.EXTERNAL_SELECTOR_LABEL: "orders"}
        assert item["value"] == "7"
        stamp = dt.datetime.strptime(item["timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
        assert abs((dt.datetime.now(dt.timezone.utc) - stamp).total_seconds()) < 60

        redis_server.client().ltrim("orders-jobs", 1, 0)  # drained
        api.queues.put(NS, "orders", await asyncio.to_thread(probe.read), 5)
        _, body = await api.get(f"{EXT}/namespaces/{NS}/{names.METRIC_QUEUE_DEPTH}?labelSelector=workerpool%3Dorders",
                                headers=HPA_HEADERS)
        assert body["items"][0]["value"] == "0"

        redis_server.stop()  # broker gone: an error to the HPA, never a 0
        api.queues.put(NS, "orders", await asyncio.to_thread(probe.read), 5)
        status, body = await api.get(
            f"{EXT}/namespaces/{NS}/{names.METRIC_QUEUE_DEPTH}?labelSelector=workerpool%3Dorders",
            headers=HPA_HEADERS)
        assert status == 503
        assert_status(body, 503, "ServiceUnavailable")
        assert f"WorkerPool {NS}/orders" in body["message"] and "unreachable" in body["message"]
    finally:
        probe.close()


async def test_queue_depth_of_a_rabbitmq_queue_from_a_secret_held_url(api, rabbitmq_server):
    conn = rabbitmq_server.connection()
    try:
        channel = conn.channel()
        channel.queue_delete(queue="reports-e2e")  # the broker is per session: start from an empty queue
        channel.queue_declare(queue="reports-e2e")
        # Publisher confirms: each publish returns once the broker has enqueued the
        # message, so the probe's count (another connection) sees all four.
        channel.confirm_delivery()
        for i in range(4):
            channel.basic_publish(exchange="", routing_key="reports-e2e", body=f"r{i}".encode())
        queue = {"type": "amqp", "name": "reports-e2e", "urlSecretRef": {"name": "rabbit", "key": "url"}}
        probe = QueueProbe(broker_url(queue, f"{rabbitmq_server.url}?queue=reports-e2e"))
        try:
            reading = await asyncio.to_thread(probe.read)
            assert reading.ok, reading.error
            assert ":guest@" not in probe.target.display  # the password is never shown
            api.queues.put(NS, "reports", reading, 5)
            status, body = await api.get(f"{EXT}/namespaces/{NS}/{names.METRIC_QUEUE_DEPTH}"
                                         "?labelSelector=workerpool%3Dreports", headers=HPA_HEADERS)
            assert status == 200 and body["items"][0]["value"] == "4", body
        finally:
            probe.close()
            channel.queue_delete(queue="reports-e2e")
    finally:
        conn.close()


async def test_external_selector_errors_are_4xx_with_a_reason(api):
    api.queues.put(NS, "orders", _reading(3), 5)
    base = f"{EXT}/namespaces/{NS}/{names.METRIC_QUEUE_DEPTH}"
    status, body = await api.get(f"{base}?labelSelector=workerpool%3Dnope", headers=HPA_HEADERS)
    assert_status(body, 404, "NotFound")
    status, body = await api.get(f"{base}?labelSelector=workerpool%20in%20(orders", headers=HPA_HEADERS)
    assert_status(body, 400, "BadRequest")
    assert "unbalanced" in body["message"]
    status, body = await api.get(base, headers=HPA_HEADERS)
    assert_status(body, 400, "BadRequest")
    assert "workerpool=<pool>" in body["message"]
    status, body = await api.get(f"{EXT}/namespaces/{NS}/not_a_metric?labelSelector=workerpool%3Dorders",
                                 headers=HPA_HEADERS)
    assert_status(body, 404, "NotFound")
    # another namespace does not see the pool
    api.sar.resource_rules[HPA_USER].add(("external.metrics.k8s.io", "list"))
    status, body = await api.get(f"{EXT}/namespaces/other/{names.METRIC_QUEUE_DEPTH}?labelSelector=workerpool%3Dorders",
                                 headers=HPA_HEADERS)
    assert_status(body, 404, "NotFound")


async def test_set_selector_returns_one_item_per_matching_pool(api):
    api.queues.put(NS, "a", _reading(1), 5)
    api.queues.put(NS, "b", _reading(2.5), 5)
    api.queues.put(NS, "c", _reading(9), 5)
    _, body = await api.get(f"{EXT}/namespaces/{NS}/{names.METRIC_QUEUE_DEPTH}"
                            "?labelSelector=workerpool%20in%20(a,b)", headers=HPA_HEADERS)
    assert [(i["metricLabels"]["workerpool"], i["value"]) for i in body["items"]] == [("a", "1"), ("b", "2500m")]


async def test_writes_are_refused(api):
    status, body = await api.get(f"{EXT}/namespaces/{NS}/{names.METRIC_QUEUE_DEPTH}", method="POST",
                                 headers={"X-Remote-User": "admin", "X-Remote-Group": "system:masters"})
    # RBAC decides first (create is not granted), then the method.
    assert status == 403
    api.sar.resource_rules["admin"] = {("external.metrics.k8s.io", "create")}
    status, body = await api.get(f"{EXT}/namespaces/{NS}/{names.METRIC_QUEUE_DEPTH}", method="POST",
                                 headers={"X-Remote-User": "admin"})
    assert_status(body, 405, "MethodNotAllowed")


# --- pods metrics from real /metrics endpoints -------------------------------

class MetricsEndpoint:
    """A real prometheus_client HTTP server exposing podsup's per-pod gauges."""

    def __init__(self, rps: float | None, busy: float | None):
        self.registry = CollectorRegistry()
        if rps is not None:
            Gauge(names.METRIC_REQUESTS_PER_SECOND, "rps", registry=self.registry).set(rps)
        if busy is not None:
            Gauge(names.METRIC_BUSY_RATIO, "busy", registry=self.registry).set(busy)
        # Port 0: the kernel picks the port as it binds (no window in which
        # another process could take a port found free a moment before).
        self.server, self.thread = start_http_server(0, "127.0.0.1", self.registry)
        self.port = self.server.server_port

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoints():
    made = []

    def make(rps, busy):
        e = MetricsEndpoint(rps, busy)
        made.append(e)
        return e

    yield make
    for e in made:
        e.close()


POOL_LABELS = {names.POOL_LABEL: "web", "app.kubernetes.io/name": "podsup-workerpool"}
POD_SELECTOR = f"{names.POOL_LABEL}%3Dweb"


async def test_pods_metric_for_all_ready_pods_with_percent_encoded_wildcard(api, endpoints):
    a, b, c = endpoints(12.5, 0.25), endpoints(3, 1.0), endpoints(99, 0.9)
    api.pods.pods = [pod("web-a", NS, POOL_LABELS, a.port), pod("web-b", NS, POOL_LABELS, b.port),
                     pod("web-c", NS, POOL_LABELS, c.port, ready=False),
                     pod("other", NS, {names.POOL_LABEL: "other"}, c.port)]
    status, body = await api.get(f"{CUS}/namespaces/{NS}/pods/%2A/{names.METRIC_REQUESTS_PER_SECOND}"
                                 f"?labelSelector={POD_SELECTOR}", headers=HPA_HEADERS)
    assert status == 200, body
    assert body["kind"] == "MetricValueList" and body["apiVersion"] == "custom.metrics.k8s.io/v1beta2"
    by_pod = {i["describedObject"]["name"]: i for i in body["items"]}
    assert set(by_pod) == {"web-a", "web-b"}
    assert by_pod["web-a"]["value"] == "12500m" and by_pod["web-b"]["value"] == "3"
    item = by_pod["web-a"]
    assert item["describedObject"] == {"kind": "Pod", "namespace": NS, "name": "web-a", "apiVersion": "/v1"}
    # metric.selector echoes the metricLabelSelector (none here), not the pods' selector.
    assert item["metric"] == {"name": names.METRIC_REQUESTS_PER_SECOND}
    assert item["window"] == 30
    _, attrs = api.sar.reviews[-1]
    assert attrs["resourceAttributes"] == {"group": "custom.metrics.k8s.io", "version": "v1beta2",
                                           "resource": "pods", "subresource": names.METRIC_REQUESTS_PER_SECOND,
                                           "name": "*", "verb": "get", "namespace": NS}

    _, body = await api.get(f"{CUS}/namespaces/{NS}/pods/%2A/{names.METRIC_BUSY_RATIO}"
                            f"?labelSelector={POD_SELECTOR}", headers=HPA_HEADERS)
    assert sorted(i["value"] for i in body["items"]) == ["1", "250m"]
    assert all("window" not in i for i in body["items"])


async def test_one_named_pod(api, endpoints):
    a, b = endpoints(1, 0.5), endpoints(2, 0.5)
    api.pods.pods = [pod("web-a", NS, POOL_LABELS, a.port), pod("web-b", NS, POOL_LABELS, b.port)]
    _, body = await api.get(f"{CUS}/namespaces/{NS}/pods/web-b/{names.METRIC_REQUESTS_PER_SECOND}"
                            f"?labelSelector={POD_SELECTOR}", headers=HPA_HEADERS)
    assert [(i["describedObject"]["name"], i["value"]) for i in body["items"]] == [("web-b", "2")]
    # A metric selector the label-less series satisfies is accepted and echoed.
    _, body = await api.get(f"{CUS}/namespaces/{NS}/pods/web-b/{names.METRIC_REQUESTS_PER_SECOND}"
                            f"?labelSelector={POD_SELECTOR}&metricLabelSelector=queue%21%3Dx", headers=HPA_HEADERS)
    assert body["items"][0]["metric"] == {"name": names.METRIC_REQUESTS_PER_SECOND, "selector": {
        "matchExpressions": [{"key": "queue", "operator": "NotIn", "values": ["x"]}]}}


async def test_unreadable_pods_are_left_out_and_reported_never_zero(api, endpoints, dead_port):
    good, no_metric = endpoints(4, 0.5), endpoints(None, 0.5)
    api.pods.pods = [pod("web-a", NS, POOL_LABELS, good.port), pod("web-b", NS, POOL_LABELS, no_metric.port),
                     pod("web-c", NS, POOL_LABELS, dead_port)]
    status, body = await api.get(f"{CUS}/namespaces/{NS}/pods/%2A/{names.METRIC_REQUESTS_PER_SECOND}"
                                 f"?labelSelector={POD_SELECTOR}", headers=HPA_HEADERS)
    assert status == 200
    assert [(i["describedObject"]["name"], i["value"]) for i in body["items"]] == [("web-a", "4")]
    health = api.provider.health[(NS, "web", "pods")]
    assert not health.ok and "web-b" in health.message and "web-c" in health.message

    api.pods.pods = [pod("web-c", NS, POOL_LABELS, dead_port)]
    status, body = await api.get(f"{CUS}/namespaces/{NS}/pods/%2A/{names.METRIC_REQUESTS_PER_SECOND}"
                                 f"?labelSelector={POD_SELECTOR}", headers=HPA_HEADERS)
    assert_status(body, 503, "ServiceUnavailable")
    assert "web-c" in body["message"]


async def test_pods_metric_errors(api):
    base = f"{CUS}/namespaces/{NS}/pods/%2A"
    _, body = await api.get(f"{base}/cpu_magic?labelSelector={POD_SELECTOR}", headers=HPA_HEADERS)
    assert_status(body, 404, "NotFound")
    _, body = await api.get(f"{base}/{names.METRIC_BUSY_RATIO}", headers=HPA_HEADERS)
    assert_status(body, 400, "BadRequest")
    _, body = await api.get(f"{base}/{names.METRIC_BUSY_RATIO}?labelSelector=%3D%3Dx", headers=HPA_HEADERS)
    assert_status(body, 400, "BadRequest")
    _, body = await api.get(f"{base}/{names.METRIC_BUSY_RATIO}?labelSelector={POD_SELECTOR}"
                            "&metricLabelSelector=queue%3Dx", headers=HPA_HEADERS)
    assert_status(body, 400, "BadRequest")
    _, body = await api.get(f"{CUS}/namespaces/{NS}/services/%2A/{names.METRIC_BUSY_RATIO}", headers=HPA_HEADERS)
    assert_status(body, 404, "NotFound")
    _, body = await api.get("/apis/custom.metrics.k8s.io/v1beta1", headers=HPA_HEADERS)
    assert_status(body, 404, "NotFound")


def _reading(value):
    import time as _t

    from podsup_operator.metrics_api.sources.queue import QueueReading
    return QueueReading(float(value), None, _t.time())


# --- front-proxy settings change while serving ----------------------------------

async def test_a_rotated_request_header_ca_and_allowed_names_are_adopted(api, pki, tmp_path):
    from podsup_operator.metrics_api import certs
    from podsup_operator.metrics_api.handlers import Runtime, refresh_request_header_once

    new_ca = certs.new_ca("front-proxy-ca-2")
    new_client = certs.issue(new_ca, "front-proxy-client-2", client=True)
    new_client.write(tmp_path / "c.crt", tmp_path / "c.key")
    api.pki.paths["new_proxy"] = (str(tmp_path / "c.crt"), str(tmp_path / "c.key"))
    with pytest.raises(aiohttp.ClientConnectionError):
        await api.get(EXT, cert="new_proxy", headers=HPA_HEADERS)

    class Kube:
        def request_header_config(self):
            return RequestHeaderConfig.from_configmap({
                "requestheader-client-ca-file": new_ca.cert_pem.decode(),
                "requestheader-allowed-names": '["front-proxy-client-2"]'})

    old = api.api.authn.config
    rt = Runtime(kube=Kube(), registry=api.queues, provider=api.provider, api=api.api, header_config=old)
    assert await refresh_request_header_once(rt) is True
    assert await refresh_request_header_once(rt) is False  # unchanged: nothing to do
    status, body = await api.get(EXT, cert="new_proxy", headers=HPA_HEADERS)
    assert status == 200 and body["kind"] == "APIResourceList"
    status, body = await api.get(EXT, cert="front_proxy", headers=HPA_HEADERS)
    assert_status(body, 401, "Unauthorized")  # its CN is no longer allowed


async def test_a_retired_request_header_ca_names_no_user(api, pki, tmp_path):
    """After a rotation the TLS layer still trusts the old CA (an SSLContext
    cannot drop one); a client certificate it issued — with an allowed CN —
    must name no user all the same."""
    from podsup_operator.metrics_api import certs
    from podsup_operator.metrics_api.handlers import Runtime, refresh_request_header_once

    new_ca = certs.new_ca("front-proxy-ca-2")
    same_cn = certs.issue(new_ca, FRONT_PROXY_CN, client=True)  # the same CN, from the new CA
    same_cn.write(tmp_path / "c.crt", tmp_path / "c.key")
    api.pki.paths["new_proxy"] = (str(tmp_path / "c.crt"), str(tmp_path / "c.key"))

    class Kube:
        def request_header_config(self):
            return RequestHeaderConfig.from_configmap({
                "requestheader-client-ca-file": new_ca.cert_pem.decode(),
                "requestheader-allowed-names": f'["{FRONT_PROXY_CN}"]'})

    status, _ = await api.get(EXT, cert="front_proxy", headers=HPA_HEADERS)
    assert status == 200  # before the rotation
    rt = Runtime(kube=Kube(), registry=api.queues, provider=api.provider, api=api.api,
                 header_config=api.api.authn.config)
    assert await refresh_request_header_once(rt) is True
    status, body = await api.get(EXT, cert="new_proxy", headers=HPA_HEADERS)
    assert status == 200 and body["kind"] == "APIResourceList"
    status, body = await api.get(EXT, cert="front_proxy", headers=HPA_HEADERS)  # the old CA's certificate
    assert_status(body, 401, "Unauthorized")


# --- the contract with the HPAs the operator builds --------------------------------

def _selector_query(selector: dict) -> str:
    from urllib.parse import quote
    return quote(",".join(f"{k}={v}" for k, v in sorted(selector["matchLabels"].items())), safe="")


async def test_every_metric_of_a_built_hpa_is_answered(api, endpoints):
    """The HPA the builders make for a pool, asked the way the HPA controller
    asks (External: the metric's selector; Pods: the Deployment's selector),
    gets values — names, selector label and pod labels agree end to end."""
    from podsup_operator.builders.deployment import build_deployment
    from podsup_operator.builders.hpa import build_hpa

    pool = {"apiVersion": f"{names.API_GROUP}/{names.API_VERSION}", "kind": names.KIND,
            "metadata": {"name": "orders", "namespace": NS, "uid": "u1"},
            "spec": {"image": "x", "command": ["w"],
                     "queue": {"type": "redis", "name": "jobs", "url": "redis://r:6379/0"},
                     "autoscaling": {"enabled": True, "minReplicas": 0, "maxReplicas": 5,
                                     "targets": {"queueDepthPerReplica": 10, "requestsPerSecondPerReplica": 5,
                                                 "busyWorkersPercent": 70}}}}
    hpa, dep = build_hpa(pool), build_deployment(pool, "op:test")
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    e = endpoints(3, 0.5)
    api.pods.pods = [pod("orders-1", NS, pod_labels, e.port)]
    api.queues.put(NS, "orders", _reading(12), 5)
    asked = 0
    for metric in hpa["spec"]["metrics"]:
        if metric["type"] == "External":
            m = metric["external"]["metric"]
            path = f"{EXT}/namespaces/{NS}/{m['name']}?labelSelector={_selector_query(m['selector'])}"
        elif metric["type"] == "Pods":
            path = (f"{CUS}/namespaces/{NS}/pods/%2A/{metric['pods']['metric']['name']}"
                    f"?labelSelector={_selector_query(dep['spec']['selector'])}")
        else:
            continue
        status, body = await api.get(path, headers=HPA_HEADERS)
        assert status == 200 and len(body["items"]) == 1, (path, body)
        asked += 1
    assert asked == 3
