"""The WorkersCrashLooping condition against a real API server (skipped
without KUBECONFIG): the operator as a subprocess, a real ``podsup run`` in a
crash storm on this host as the pool's pod. No kubelet is needed: the Pod
object is created by the test and its status set through the status
subresource as a kubelet would (Running, not Ready — the storm fails
/readyz —, podIP 127.0.0.1 where the host's podsup listens).

What kmock cannot show: the CRD's structural schema keeps the new status
fields (``status.live.crashLoopingPods``; an unknown field would be pruned),
the condition passes the schema, and the Events are real core/v1 Events.
"""
from __future__ import annotations

import json
import sys

import pytest

from podsup import names
from podsup_operator import crash_storms
from tests.e2e import cluster
from tests.e2e.cluster import WP, apply, cluster_reason, condition, events_of, get, kubectl
from tests.integration.podsup_process import PodsupProcess, worker
from tests.integration.servers import sample
from tests.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(bool(cluster_reason()), reason=str(cluster_reason()))]

POOL = "stormy"
TYPE = crash_storms.CONDITION_TYPE


@pytest.fixture(scope="module")
def namespace():
    with cluster.namespace() as ns:
        yield ns


@pytest.fixture(scope="module")
def operator(namespace, tmp_path_factory):
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    with cluster.operator(namespace, log, "--no-metrics-api") as proc:
        yield proc


def fake_pod(namespace: str, port: int) -> None:
    """A pod of the pool whose podsup is the host's, as the kubelet would report it."""
    apply({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": f"{POOL}-host", "namespace": namespace, "labels": {names.POOL_LABEL: POOL}},
           "spec": {"containers": [{"name": "worker", "image": "x",
                                    "ports": [{"name": names.METRICS_PORT_NAME, "containerPort": port}]}]}})
    status = {"status": {"phase": "Running", "podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}],
                         "conditions": [{"type": "Ready", "status": "False"}],
                         "containerStatuses": [{"name": "worker", "image": "x", "imageID": "", "ready": False,
                                                "restartCount": 0, "state": {"running": {}}}]}}
    kubectl("patch", "pod", f"{POOL}-host", "-n", namespace, "--subresource=status", "--type=merge",
            "-p", json.dumps(status))


@pytest.mark.timeout(300)
def test_a_crash_storm_shows_in_the_pool_condition_events_and_live_status(namespace, operator):
    storming = PodsupProcess(["run", "--workers", "2", "--crashloop-threshold", "3", "--crashloop-interval", "600",
                              "--", sys.executable, worker("crasher")],
                             env={"CRASH_AFTER": "0"})
    with storming:
        wait_for(lambda: sample(storming.http_port, "podsup_crash_loop") == 1, 60, message="a crash storm")
        apply({"apiVersion": f"{names.API_GROUP}/{names.API_VERSION}", "kind": names.KIND,
               "metadata": {"name": POOL, "namespace": namespace},
               "spec": {"image": "x", "command": ["sleep", "3600"], "replicas": 0, "processes": 2}})
        fake_pod(namespace, storming.http_port)

        c = wait_for(lambda: condition(get(WP, POOL, namespace), TYPE).get("status") == "True"
                     and condition(get(WP, POOL, namespace), TYPE), 90, interval=1,
                     message="WorkersCrashLooping=True")
        assert c["reason"] == crash_storms.REASON_STORM and f"{POOL}-host since " in c["message"]
        live = wait_for(lambda: (get(WP, POOL, namespace)["status"].get("live") or {}).get("crashLoopingPods")
                        == 1 and get(WP, POOL, namespace)["status"]["live"], 60, interval=1,
                        message="status.live.crashLoopingPods kept by the schema")
        assert live["pods"] == 0  # the storming pod is not ready: no live sums from it
        warning = wait_for(lambda: [e for e in events_of(names.KIND, POOL, namespace)
                                    if e["reason"] == crash_storms.EVENT_STARTED], 60, interval=1,
                           message="the Warning Event")
        assert warning[0]["type"] == "Warning"
        table = kubectl("get", WP, POOL, "-n", namespace).stdout
        assert "WORKERS" in table.splitlines()[0]

        kubectl("delete", "pod", f"{POOL}-host", "-n", namespace, "--grace-period=0", "--force", "--wait=true")
        wait_for(lambda: condition(get(WP, POOL, namespace), TYPE).get("status") == "False", 90, interval=1,
                 message="WorkersCrashLooping=False once the pod is gone")
        ended = wait_for(lambda: [e for e in events_of(names.KIND, POOL, namespace)
                                  if e["reason"] == crash_storms.EVENT_ENDED], 60, interval=1,
                         message="the Normal Event")
        assert ended[0]["type"] == "Normal"
