"""One failing part never stops reconciliation (issue 14), on a real API server.

- The metrics API cannot bind its port: the operator still reconciles pools
  (kopf runs no resource handler until every startup activity succeeded, so a
  failing metrics-API startup used to block everything).
- A child the API server rejects although the CRD accepted the pool
  (requests above limits: only the core validation of the Deployment knows):
  that pool reports Degraded with the API server's own message and a Warning
  Event, while another pool in the same namespace reconciles normally.
"""
from __future__ import annotations

import socket

import pytest

from tests.e2e import cluster
from tests.e2e.cluster import apply, condition, cluster_reason, events_of, get, owned
from tests.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(bool(cluster_reason()), reason=str(cluster_reason()))]


def pool(name: str, ns: str, **spec) -> dict:
    return {"apiVersion": "podsup.io/v1alpha1", "kind": "WorkerPool",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"image": "registry.example.com/worker:1", "command": ["python", "-m", "worker"], **spec}}


def reconciled(name: str, ns: str, timeout: float = 90) -> dict:
    """Wait until the pool's Deployment exists, controlled by the pool, and
    the pool has status conditions; return the pool."""
    uid = wait_for(lambda: (get("workerpool", name, ns) or {}).get("metadata", {}).get("uid"), 30,
                   interval=1, message=f"WorkerPool {name}")
    wait_for(lambda: owned(get("deployment", name, ns), uid), timeout, interval=1,
             message=f"the Deployment of {name} owned by it")
    return wait_for(lambda: (lambda p: p if condition(p, "Ready") else None)(get("workerpool", name, ns)),
                    timeout, interval=1, message=f"status conditions of {name}")


def test_pools_reconcile_while_the_metrics_api_port_is_taken(tmp_path):
    log = tmp_path / "operator.log"
    with cluster.namespace("podsup-port") as ns, socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))  # the metrics API binds all interfaces
        taken.listen()
        port = taken.getsockname()[1]
        with cluster.operator(ns, log, "--metrics-api", "--metrics-api-port", str(port)) as proc:
            apply(pool("jobs", ns))
            reconciled("jobs", ns)
            assert proc.poll() is None, log.read_text()
        text = log.read_text()
    assert str(port) in text, f"the log does not name the port that could not be bound:\n{text}"
    assert "Traceback" not in text, text


@pytest.fixture(scope="module")
def namespace():
    with cluster.namespace("podsup-reject") as ns:
        yield ns


@pytest.fixture(scope="module")
def operator(namespace, tmp_path_factory):
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    with cluster.operator(namespace, log, "--no-metrics-api") as proc:
        yield proc


def test_a_child_the_api_server_rejects_degrades_only_its_pool(namespace, operator):
    apply(pool("bad", namespace, resources={"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}))
    apply(pool("good", namespace))

    reconciled("good", namespace)
    good = get("workerpool", "good", namespace)
    assert condition(good, "Degraded").get("status") == "False", good["status"]

    rejection = "must be less than or equal to cpu limit"
    degraded = wait_for(lambda: (lambda c: c if c.get("status") == "True" else None)(
        condition(get("workerpool", "bad", namespace), "Degraded")), 90, interval=1, message="bad Degraded")
    assert rejection in degraded.get("message", ""), degraded
    assert "Deployment" in degraded["message"], degraded
    event = wait_for(lambda: next((e for e in events_of("WorkerPool", "bad", namespace)
                                   if e.get("type") == "Warning" and rejection in e.get("message", "")), None),
                     60, interval=1, message="a Warning Event with the API server's message")
    assert event["involvedObject"]["namespace"] == namespace
    assert get("deployment", "bad", namespace) is None
