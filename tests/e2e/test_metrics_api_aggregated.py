"""The metrics API behind the real aggregator and the real HPA controller,
without pods: what ``test_metrics_api_e2e.py`` checks in-cluster, on a bare
control plane (kube-apiserver + kube-controller-manager, no kubelet).

The operator runs here, out of the cluster, serving its metrics API on a
port of this host; a selector-less Service with an Endpoints object naming
this host's (non-loopback) address lets the aggregator reach it, as it
reaches any extension API server (the API server must route to endpoints:
``--enable-aggregator-routing=true``, as there is no kube-proxy). The queue
is a real redis-server on loopback, polled by the operator.

Checks: the APIService Available; ``kubectl get --raw`` of the External
metric through the aggregator (front-proxy authentication, caBundle
verification); the kube-controller-manager's HPA scaling the pool's
Deployment on the queue depth and back down when the queue is drained; and
scale to zero and back (the operator moves 0 <-> 1, the HPA the rest).
Spike-to-replicas times are printed (run with -s).
"""
from __future__ import annotations

import base64
import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from podsup import names
from tests.e2e import cluster
from tests.e2e.cluster import WP, apply, cluster_reason, condition, get, kubectl
from tests.waiting import Timeout, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600),
              pytest.mark.skipif(bool(cluster_reason()), reason=str(cluster_reason()))]

SERVICE = "podsup-metrics-api"
GROUP_VERSION = "v1beta1.external.metrics.k8s.io"


def host_address() -> str | None:
    """This host's address on its default route (the aggregator may not dial
    loopback: Endpoints refuse 127.0.0.0/8)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("203.0.113.1", 9))  # UDP: no packet is sent, this only picks the route
        except OSError:
            return None
        address = s.getsockname()[0]
    return None if address.startswith("127.") else address


def available() -> dict:
    proc = kubectl("get", "apiservice", GROUP_VERSION, "-o", "json", check=False)
    return condition(json.loads(proc.stdout), "Available") if proc.returncode == 0 else {}


def wait_until_available(port: int, log: Path) -> None:
    """The APIService Available, or a skip when the API server cannot reach
    this host while the metrics API does listen here (a cluster elsewhere, or
    an aggregator dialing ClusterIPs with no kube-proxy): an environment
    limit, not a failure. A TLS or authentication problem still fails."""
    try:
        wait_for(lambda: available().get("status") == "True", 60, interval=1, message="APIService Available")
        return
    except Timeout:
        pass
    message = available().get("message", "")
    listening = wait_for(lambda: socket.create_connection(("127.0.0.1", port), timeout=5), 30, interval=1,
                         message=lambda: f"the metrics API listening; log:\n{log.read_text()[-2000:]}")
    listening.close()
    if any(s in message for s in ("dial tcp", "i/o timeout", "no route to host", "connection refused")):
        pytest.skip(f"the API server's aggregator cannot reach this host: {message[:300]}")
    raise AssertionError(f"APIService {GROUP_VERSION} not Available: {message}; log:\n{log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def redis_queue(tmp_path_factory):
    from tests.integration.servers import RedisServer

    try:
        server = RedisServer(str(tmp_path_factory.mktemp("redis")))
        server.start()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def served(tmp_path_factory, redis_queue):
    """(namespace, operator log): the operator running with its metrics API
    registered as external.metrics.k8s.io and Available."""
    from podsup_operator.metrics_api import certs

    address = host_address()
    if address is None:
        pytest.skip("this host has no non-loopback IPv4 address for the aggregator to dial")
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        port = s.getsockname()[1]
    existing = kubectl("get", "apiservice", GROUP_VERSION, "-o", "json", check=False)
    if existing.returncode == 0:
        pytest.skip(f"APIService {GROUP_VERSION} already exists on this cluster (another metrics API owns it)")

    tmp_path = tmp_path_factory.mktemp("aggregated")
    with cluster.namespace("podsup-agg") as ns:
        ca, serving = certs.self_signed_serving(SERVICE, ns)
        serving.write(tmp_path / "tls.crt", tmp_path / "tls.key")
        kubectl("apply", "-f", "-", input=yaml.safe_dump_all([
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": SERVICE, "namespace": ns},
             "spec": {"ports": [{"name": "https", "port": 443, "targetPort": port}]}},
            {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": SERVICE, "namespace": ns},
             "subsets": [{"addresses": [{"ip": address}], "ports": [{"name": "https", "port": port}]}]},
        ]))
        apiservice = {
            "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
            "metadata": {"name": GROUP_VERSION, "labels": {"podsup-e2e": ns}},
            "spec": {"group": "external.metrics.k8s.io", "version": "v1beta1", "groupPriorityMinimum": 100,
                     "versionPriority": 100, "service": {"name": SERVICE, "namespace": ns, "port": 443},
                     "caBundle": base64.b64encode(ca.cert_pem).decode()}}
        log = tmp_path / "operator.log"
        try:
            with cluster.operator(ns, log, "--metrics-api", "--metrics-api-port", str(port),
                                  "--tls-cert-file", str(tmp_path / "tls.crt"),
                                  "--tls-key-file", str(tmp_path / "tls.key"),
                                  env={"PODSUP_METRICS_API_SERVICE": SERVICE, "POD_NAMESPACE": ns}):
                kubectl("apply", "-f", "-", input=json.dumps(apiservice))
                wait_until_available(port, log)
                yield ns, log
        finally:
            # An APIService whose backend is gone would block namespace deletion.
            kubectl("delete", "apiservice", GROUP_VERSION, "--wait=false", check=False)


def queue_pool(name: str, ns: str, url: str, **autoscaling: Any) -> dict:
    return {"apiVersion": "podsup.io/v1alpha1", "kind": "WorkerPool", "metadata": {"name": name, "namespace": ns},
            "spec": {"image": "registry.example.com/worker:1", "command": ["python", "-m", "worker"],
                     "queue": {"type": "redis", "name": name, "url": url, "pollIntervalSeconds": 1},
                     "autoscaling": {"enabled": True, "targets": {"queueDepthPerReplica": 10},
                                     "behavior": {"scaleUp": {"stabilizationWindowSeconds": 0},
                                                  "scaleDown": {"stabilizationWindowSeconds": 0}},
                                     **autoscaling}}}


def external_metric(ns: str, name: str) -> list[dict]:
    raw = (f"/apis/external.metrics.k8s.io/v1beta1/namespaces/{ns}/{names.METRIC_QUEUE_DEPTH}"
           f"?labelSelector={names.EXTERNAL_SELECTOR_LABEL}%3D{name}")
    proc = kubectl("get", "--raw", raw, check=False)
    return json.loads(proc.stdout).get("items") if proc.returncode == 0 else []


def replicas(name: str, ns: str) -> int:
    return ((get("deployment", name, ns) or {}).get("spec") or {}).get("replicas", 0)


def test_hpa_scales_on_queue_depth_served_through_the_aggregator(served, redis_queue):
    ns, log = served
    name = "jobs"
    apply(queue_pool(name, ns, redis_queue.url, minReplicas=1, maxReplicas=4))
    items = wait_for(lambda: external_metric(ns, name), 60, interval=1,
                     message=lambda: f"the External metric through the aggregator; log:\n{log.read_text()[-2000:]}")
    assert items[0]["value"] == "0" and items[0]["metricLabels"] == {names.EXTERNAL_SELECTOR_LABEL: name}

    wait_for(lambda: get("hpa", name, ns) and replicas(name, ns) == 1, 60, interval=1,
             message="the HPA and 1 replica")
    redis_queue.client().rpush(name, *[f"j{i}" for i in range(40)])
    t0 = time.monotonic()
    wait_for(lambda: replicas(name, ns) == 4, 120, interval=0.5,
             message=lambda: f"4 replicas for 40 jobs (now {replicas(name, ns)}); HPA status: "
                             f"{(get('hpa', name, ns) or {}).get('status')}")
    print(f"\nqueue spike -> Deployment at 4 replicas after {time.monotonic() - t0:.1f}s (HPA sync period of "
          f"this kube-controller-manager included)")
    hpa = get("hpa", name, ns)
    assert condition(hpa, "ScalingActive").get("status") == "True", hpa["status"]
    assert external_metric(ns, name)[0]["value"] == "40"

    redis_queue.client().delete(name)
    wait_for(lambda: replicas(name, ns) == 1, 120, interval=1, message="back to 1 replica after the queue drained")


def test_scale_to_zero_and_back_on_a_real_control_plane(served, redis_queue):
    """minReplicas 0: idle → the operator scales to 0 (ScaledToZero); a job
    arrives → it scales to 1 and the HPA takes it from there; drained → 0."""
    ns, log = served
    name = "zero"
    apply(queue_pool(name, ns, redis_queue.url, minReplicas=0, maxReplicas=4, idleCooldownSeconds=3))
    wait_for(lambda: get("deployment", name, ns) and replicas(name, ns) == 0, 120, interval=1,
             message=lambda: f"the idle pool scaled to 0 (now {replicas(name, ns)}); log:\n{log.read_text()[-2000:]}")
    assert condition(get(WP, name, ns), "ScaledToZero").get("status") == "True"

    redis_queue.client().rpush(name, *[f"j{i}" for i in range(15)])
    t0 = time.monotonic()
    wait_for(lambda: replicas(name, ns) >= 1, 60, interval=0.5, message="woken from zero")
    woke = time.monotonic() - t0
    wait_for(lambda: replicas(name, ns) == 2, 120, interval=0.5,
             message=lambda: f"the HPA at 2 replicas for 15 jobs (now {replicas(name, ns)})")
    print(f"\nfrom zero: 0 -> 1 after {woke:.1f}s, 1 -> 2 (HPA) after {time.monotonic() - t0:.1f}s")

    redis_queue.client().delete(name)
    wait_for(lambda: replicas(name, ns) == 0, 180, interval=1, message="back to 0 after the queue drained")


