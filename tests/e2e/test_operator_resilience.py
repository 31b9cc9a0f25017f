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
from pathlib import Path
from typing import Callable

import pytest

from tests.e2e import cluster
from tests.e2e.cluster import WP, apply, condition, cluster_reason, events_of, get, owned
from tests.waiting import Timeout, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300),
              pytest.mark.skipif(bool(cluster_reason()), reason=str(cluster_reason()))]


def pool(name: str, ns: str, **spec) -> dict:
    return {"apiVersion": "podsup.io/v1alpha1", "kind": "WorkerPool",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"image": "registry.example.com/worker:1", "command": ["python", "-m", "worker"], **spec}}


def reconciled(name: str, ns: str, log: Path, timeout: float = 60) -> dict:
    """Wait until the pool's Deployment exists, controlled by the pool, and
    the pool has status conditions; return the pool. A timeout shows the end
    of the operator's log."""
    def tail(what: str) -> Callable[[], str]:
        return lambda: f"{what}; the operator's log ends with:\n{log.read_text()[-3000:]}"

    uid = wait_for(lambda: (get(WP, name, ns) or {}).get("metadata", {}).get("uid"), 30,
                   interval=1, message=tail(f"WorkerPool {name}"))
    wait_for(lambda: owned(get("deployment", name, ns), uid), timeout, interval=1,
             message=tail(f"the Deployment of {name} owned by it"))
    return wait_for(lambda: (lambda p: p if condition(p, "Ready") else None)(get(WP, name, ns)),
                    timeout, interval=1, message=tail(f"status conditions of {name}"))


# Remove when the metrics API may fail on its own (issue 14 part 1): until then
# kopf retries the failed startup activity every 60 s and reconciles nothing.
@pytest.mark.xfail(strict=True, raises=Timeout, reason="issue 14: a failing metrics API blocks reconciliation")
def test_pools_reconcile_while_the_metrics_api_port_is_taken(tmp_path):
    log = tmp_path / "operator.log"
    with cluster.namespace("podsup-port") as ns, socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))  # the metrics API binds all interfaces
        taken.listen()
        port = taken.getsockname()[1]
        with cluster.operator(ns, log, "--metrics-api", "--metrics-api-port", str(port)) as proc:
            apply(pool("jobs", ns))
            reconciled("jobs", ns, log)
            assert proc.poll() is None, log.read_text()
        text = log.read_text()
    assert str(port) in text, f"the log does not name the port that could not be bound:\n{text}"
    assert "Traceback" not in text, text


@pytest.fixture(scope="module")
def namespace():
    with cluster.namespace("podsup-reject") as ns:
        yield ns


@pytest.fixture(scope="module")
def operator_log(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("operator") / "operator.log"


@pytest.fixture(scope="module")
def operator(namespace, operator_log):
    with cluster.operator(namespace, operator_log, "--no-metrics-api") as proc:
        yield proc


def test_a_child_the_api_server_rejects_degrades_only_its_pool(namespace, operator, operator_log):
    apply(pool("bad", namespace, resources={"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}))
    apply(pool("good", namespace))

    reconciled("good", namespace, operator_log)
    good = get(WP, "good", namespace)
    assert condition(good, "Degraded").get("status") == "False", good["status"]

    rejection = "must be less than or equal to cpu limit"
    degraded = wait_for(lambda: (lambda c: c if c.get("status") == "True" else None)(
        condition(get(WP, "bad", namespace), "Degraded")), 90, interval=1, message="bad Degraded")
    assert rejection in degraded.get("message", ""), degraded
    assert "Deployment" in degraded["message"], degraded
    event = wait_for(lambda: next((e for e in events_of("WorkerPool", "bad", namespace)
                                   if e.get("type") == "Warning" and rejection in e.get("message", "")), None),
                     60, interval=1, message="a Warning Event with the API server's message")
    assert event["involvedObject"]["namespace"] == namespace
    assert get("deployment", "bad", namespace) is None
