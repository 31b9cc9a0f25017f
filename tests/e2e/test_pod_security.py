"""The worker pods a WorkerPool produces pass the ``restricted`` Pod Security
Standard, as the API server's PodSecurity admission enforces it.

No kubelet needed: the ReplicaSet controller creates the pods (they stay
Pending without a node), and PodSecurity admission runs at creation, so a pod
existing in a namespace labelled ``enforce=restricted`` is the proof. A
template that violated the standard would leave the ReplicaSet with
FailedCreate events and no pods.
"""
from __future__ import annotations

import json

import pytest

from podsup import names
from tests.e2e import cluster
from tests.e2e.cluster import apply_example, cluster_reason, kubectl
from tests.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300),
              pytest.mark.skipif(bool(cluster_reason()), reason=str(cluster_reason()))]


def pods(ns: str, pool: str) -> list[dict]:
    proc = kubectl("get", "pods", "-n", ns, "-l", f"{names.POOL_LABEL}={pool}", "-o", "json")
    return json.loads(proc.stdout)["items"]


def replica_set_failures(ns: str) -> list[str]:
    proc = kubectl("get", "events", "-n", ns, "-o", "json", "--field-selector", "reason=FailedCreate")
    return [e.get("message", "") for e in json.loads(proc.stdout)["items"]]


def test_worker_pods_are_admitted_under_the_restricted_standard(tmp_path):
    with cluster.namespace("podsup-pss") as ns:
        kubectl("label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted",
                "pod-security.kubernetes.io/enforce-version=latest")
        with cluster.operator(ns, tmp_path / "operator.log", "--no-metrics-api"):
            pool = apply_example("python-queue-worker.yaml", ns)
            name, replicas = pool["metadata"]["name"], pool["spec"]["replicas"]
            created = wait_for(lambda: len(pods(ns, name)) >= replicas or replica_set_failures(ns), 120,
                               interval=1, message=lambda: f"{replicas} pods of {name} created "
                                                           f"(FailedCreate: {replica_set_failures(ns)})")
            assert created is True, f"the ReplicaSet could not create pods: {replica_set_failures(ns)}"
