"""e2e: autoscaling with nothing but the operator, on the cluster named by
$KUBECONFIG (skipped with the reason when there is none, without
$PODSUP_E2E_IMAGE, the operator image the cluster can pull, or when no node
is Ready: the operator, redis and the workers must run as pods).

Installs the chart with the metrics API on, then checks what only a real
control plane can show:
- both APIServices Available, and a real ``kubectl get --raw`` of the External
  metric through the aggregator (Available=True alone does not prove the
  caBundle: the availability probe skips TLS verification);
- a WorkerPool on a real Redis list (minReplicas 0): scaled to 0 when idle,
  woken by LPUSH, the HPA reaching ScalingActive=True and adding replicas,
  back to 0 after the list is drained. The time from the LPUSH spike to the
  Deployment's replicas changing is printed (the issue's goal: <= 20 s).
"""
from __future__ import annotations

import json
import os
import subprocess
import time
import uuid

import pytest
import yaml

from podsup import names
from tests.e2e.cluster import WP, cluster_reason, pods_reason
from tests.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1500)]

RELEASE = "podsup-metrics-e2e"


def cluster_or_skip() -> str:
    """The operator image to install; skips (each with its own reason) without
    a cluster, without an image, or on a control plane that cannot run pods."""
    reason = cluster_reason()
    if reason:
        pytest.skip(reason)
    image = os.environ.get("PODSUP_E2E_IMAGE")
    if not image:
        pytest.skip("PODSUP_E2E_IMAGE is not set (the operator image the cluster can pull)")
    reason = pods_reason()
    if reason:
        pytest.skip(f"needs pods Running (the operator, redis, workers): {reason}")
    return image


def kubectl(*args: str, stdin: str | None = None, check: bool = True) -> str:
    proc = subprocess.run(["kubectl", *args], input=stdin, capture_output=True, text=True, timeout=120)
    if check:
        assert proc.returncode == 0, f"kubectl {' '.join(args)}: {proc.stderr}"
    return proc.stdout


def get(namespace: str, kind: str, name: str) -> dict:
    return json.loads(kubectl("-n", namespace, "get", kind, name, "-o", "json"))


def condition(obj: dict, type_: str) -> dict:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == type_), {})


REDIS = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: redis}
spec:
  selector: {matchLabels: {app: redis}}
  template:
    metadata: {labels: {app: redis}}
    spec:
      containers:
        - {name: redis, image: "redis:7-alpine", ports: [{containerPort: 6379}]}
---
apiVersion: v1
kind: Service
metadata: {name: redis}
spec:
  selector: {app: redis}
  ports: [{port: 6379}]
"""


def pool(namespace: str) -> dict:
    return {
        "apiVersion": f"{names.API_GROUP}/{names.API_VERSION}", "kind": names.KIND,
        "metadata": {"name": "jobs", "namespace": namespace},
        "spec": {
            # A worker that pops one job every 2 s (so the backlog drains);
            # a glibc image, as the standalone podsup binary needs.
            "image": "redis:7",
            "command": ["sh", "-c", "while true; do redis-cli -h redis BLPOP jobs 5 >/dev/null; sleep 2; done"],
            "processes": 1,
            "queue": {"type": "redis", "name": "jobs", "url": "redis://redis:6379/0", "pollIntervalSeconds": 2},
            "autoscaling": {"enabled": True, "minReplicas": 0, "maxReplicas": 4, "idleCooldownSeconds": 30,
                            "targets": {"queueDepthPerReplica": 10},
                            "behavior": {"scaleUp": {"stabilizationWindowSeconds": 0}}},
        },
    }


def test_hpa_scales_a_pool_from_zero_on_queue_depth_served_by_the_operator():
    image = cluster_or_skip()
    from tests.chart.conftest import CHART, helm

    repository, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "")
    namespace = f"podsup-mapi-{uuid.uuid4().hex[:6]}"
    values = {"image": {"repository": repository, "tag": tag}, "metricsApi": {"enabled": True}}
    helm("install", CHART, json.dumps(values), RELEASE, namespace)
    try:
        for api in ("v1beta1.external.metrics.k8s.io", "v1beta2.custom.metrics.k8s.io"):
            wait_for(lambda api=api: condition(json.loads(kubectl("get", "apiservice", api, "-o", "json")),
                                               "Available").get("status") == "True",
                     300, interval=2, message=f"APIService {api} Available")
        kubectl("-n", namespace, "apply", "-f", "-", stdin=REDIS)
        wait_for(lambda: (get(namespace, "deployment", "redis").get("status") or {}).get("readyReplicas") == 1,
                 300, interval=2, message="redis ready")
        kubectl("apply", "-f", "-", stdin=yaml.safe_dump(pool(namespace)))

        raw = (f"/apis/external.metrics.k8s.io/v1beta1/namespaces/{namespace}/{names.METRIC_QUEUE_DEPTH}"
               f"?labelSelector={names.EXTERNAL_SELECTOR_LABEL}%3Djobs")
        value = wait_for(lambda: json.loads(kubectl("get", "--raw", raw, check=False) or "{}").get("items"),
                         300, interval=2, message="the External metric through the aggregator")
        assert value[0]["value"] == "0" and value[0]["metricLabels"] == {names.EXTERNAL_SELECTOR_LABEL: "jobs"}

        def replicas() -> int:
            return (get(namespace, "deployment", "jobs").get("spec") or {}).get("replicas", 0)

        wait_for(lambda: replicas() == 0, 300, interval=2, message="the idle pool scaled to 0")
        assert condition(get(namespace, WP, "jobs"), "ScaledToZero").get("status") == "True"

        redis_pod = kubectl("-n", namespace, "get", "pod", "-l", "app=redis", "-o", "jsonpath={.items[0].metadata.name}")
        t0 = time.monotonic()
        kubectl("-n", namespace, "exec", redis_pod, "--", "redis-cli", "rpush", "jobs", *[f"j{i}" for i in range(40)])
        wait_for(lambda: replicas() >= 1, 120, interval=0.5, message="woken from zero")
        woke = time.monotonic() - t0
        wait_for(lambda: replicas() >= 2, 180, interval=0.5, message="the HPA adding replicas for 40 jobs")
        spike = time.monotonic() - t0
        print(f"\nspike-to-replicas: 0->1 after {woke:.1f}s, 1->{replicas()} after {spike:.1f}s")
        hpa = get(namespace, "hpa", "jobs")
        assert condition(hpa, "ScalingActive").get("status") == "True", hpa.get("status")

        pods_raw = (f"/apis/custom.metrics.k8s.io/v1beta2/namespaces/{namespace}/pods/%2A/"
                    f"{names.METRIC_BUSY_RATIO}?labelSelector={names.POOL_LABEL}%3Djobs")
        items = wait_for(lambda: json.loads(kubectl("get", "--raw", pods_raw, check=False) or "{}").get("items"),
                         180, interval=2, message="the Pods metric through the aggregator")
        assert all(i["describedObject"]["kind"] == "Pod" for i in items)

        kubectl("-n", namespace, "exec", redis_pod, "--", "redis-cli", "del", "jobs")
        wait_for(lambda: replicas() == 0, 600, interval=2, message="back to 0 after the queue drained")
    finally:
        subprocess.run(["kubectl", "-n", namespace, "delete", WP, "--all", "--wait=true", "--timeout=120s"],
                       capture_output=True, timeout=180)
        helm("uninstall", "-", RELEASE, namespace)
        subprocess.run(["kubectl", "delete", "namespace", namespace, "--wait=false"], capture_output=True, timeout=60)
