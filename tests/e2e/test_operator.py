"""End to end against a real cluster named by KUBECONFIG (skipped otherwise).

What kmock cannot show: real server-side apply (create-on-apply, field
ownership), the CRD's schema and CEL rules enforced by the API server, the
scale subresource, and garbage collection through ownerReferences. Runs the
operator as a subprocess (``podsup-operator run --namespace NS``) against a
throw-away namespace. Pods need not become ready: the assertions are about the
objects the operator manages.
"""
from __future__ import annotations

import pytest
import yaml

from podsup import names
from tests.e2e import cluster
from tests.e2e.cluster import WP, apply_example, cluster_reason, get, kubectl, owned
from tests.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(bool(cluster_reason()), reason=str(cluster_reason()))]


@pytest.fixture(scope="module")
def namespace():
    with cluster.namespace() as ns:
        yield ns


@pytest.fixture(scope="module")
def operator(namespace, tmp_path_factory):
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    # The metrics API has its own e2e tests.
    extra = ["--no-metrics-api"] if "--no-metrics-api" in cluster.operator_help() else []
    with cluster.operator(namespace, log, *extra) as proc:
        yield proc


def test_pool_lifecycle(namespace, operator):
    image = apply_example("php-socket-server.yaml", namespace)["spec"]["image"]
    pool = wait_for(lambda: get(WP, "php-echo", namespace), 30, interval=1, message="the WorkerPool")
    uid = pool["metadata"]["uid"]
    for kind in ("deployment", "service", "hpa", "pdb"):
        wait_for(lambda: owned(get(kind, "php-echo", namespace), uid), 60,
            interval=1, message=f"{kind} owned by the pool")
    status = wait_for(lambda: (get(WP, "php-echo", namespace) or {}).get("status", {}).get("conditions")
                      and get(WP, "php-echo", namespace)["status"], 60,
                          interval=1, message="status conditions")
    assert {c["type"] for c in status["conditions"]} >= {"Ready", "Progressing", "Degraded", "ScalingActive"}
    assert status["selector"] == f"{names.POOL_LABEL}=php-echo"

    # Drift: an edit to the pod template is put back; a deleted Deployment comes back.
    kubectl("set", "image", "deployment/php-echo", "worker=evil:1", "-n", namespace)
    wait_for(lambda: get("deployment", "php-echo", namespace)["spec"]["template"]["spec"]["containers"][0]["image"]
             == image, 90, interval=1, message="the image edit to be reverted")
    kubectl("delete", "deployment", "php-echo", "-n", namespace, "--wait=true")
    wait_for(lambda: owned(get("deployment", "php-echo", namespace), uid), 90,
        interval=1, message="the Deployment to be restored")

    # Deleting the pool garbage-collects the children.
    kubectl("delete", WP, "php-echo", "-n", namespace, "--wait=true")
    wait_for(lambda: get("deployment", "php-echo", namespace) is None, 120,
        interval=1, message="garbage collection of the Deployment")


def test_kubectl_scale_changes_the_deployment(namespace, operator):
    apply_example("python-queue-worker.yaml", namespace)
    wait_for(lambda: get("deployment", "py-jobs", namespace), 60, interval=1, message="the Deployment")
    kubectl("scale", WP, "py-jobs", "--replicas", "3", "-n", namespace)
    wait_for(lambda: get("deployment", "py-jobs", namespace)["spec"]["replicas"] == 3, 60,
        interval=1, message="3 replicas")
    # Server-side apply: the operator is the field manager of the Deployment's spec.
    managers = {m["manager"] for m in get("deployment", "py-jobs", namespace)["metadata"]["managedFields"]
                if m["operation"] == "Apply"}
    assert names.FIELD_MANAGER in managers


def test_dropped_fields_are_removed_and_autoscaling_keeps_the_running_count(namespace, operator):
    """Real server-side apply: a field dropped from the pool leaves the child;
    turning autoscaling on does not reset replicas to 1 (the hand-off)."""
    pool = apply_example("python-queue-worker.yaml", namespace)
    name = pool["metadata"]["name"]
    pool["spec"]["replicas"] = 3
    pool["spec"].setdefault("pod", {})["nodeSelector"] = {"kubernetes.io/os": "linux"}
    kubectl("apply", "-f", "-", input=yaml.safe_dump(pool))
    wait_for(lambda: (lambda d: d and d["spec"]["replicas"] == 3
                      and d["spec"]["template"]["spec"].get("nodeSelector"))(get("deployment", name, namespace)),
             60, interval=1, message="3 replicas and the nodeSelector")

    del pool["spec"]["pod"]["nodeSelector"]
    kubectl("apply", "-f", "-", input=yaml.safe_dump(pool))
    wait_for(lambda: not get("deployment", name, namespace)["spec"]["template"]["spec"].get("nodeSelector"), 60,
             interval=1, message="the dropped nodeSelector removed from the Deployment")

    pool["spec"]["autoscaling"] = {"enabled": True, "minReplicas": 1, "maxReplicas": 5,
                                   "targets": {"cpuPercent": 80}}
    kubectl("apply", "-f", "-", input=yaml.safe_dump(pool))
    wait_for(lambda: get("hpa", name, namespace), 60, interval=1, message="the HPA")
    deployment = wait_for(lambda: (lambda d: d if any(m["manager"] == "podsup-operator-handover"
                                                      for m in d["metadata"].get("managedFields", [])) else None)(
        get("deployment", name, namespace)), 60, interval=1, message="the replicas hand-off")
    assert deployment["spec"]["replicas"] == 3, "turning autoscaling on must not reset replicas to 1"


def test_queue_autoscaled_example_gets_an_external_queue_depth_hpa(namespace, operator):
    """The queue-depth example on a real API server: CRD defaults and CEL
    accept it; its HPA scales on the External podsup_queue_depth metric with
    an AverageValue target (a global backlog is never a Pods metric), with
    minReplicas 1 (the operator owns 0 <-> 1)."""
    pool = apply_example("queue-autoscaled.yaml", namespace)
    name = pool["metadata"]["name"]
    hpa = wait_for(lambda: get("hpa", name, namespace), 60, interval=1, message="the HPA")
    (metric,) = [m for m in hpa["spec"]["metrics"] if m["type"] == "External"]
    assert metric["external"]["metric"]["name"] == names.METRIC_QUEUE_DEPTH
    assert metric["external"]["target"] == {"type": "AverageValue", "averageValue": "20"}
    assert hpa["spec"]["minReplicas"] == 1 and hpa["spec"]["maxReplicas"] == 20
    assert not [m for m in hpa["spec"]["metrics"] if m["type"] == "Pods"
                and m["pods"]["metric"]["name"] == names.METRIC_QUEUE_DEPTH]
