"""e2e: install the chart into the cluster named by $KUBECONFIG with Helm's
own code, apply the README's WorkerPool, and wait for the operator to
reconcile it (Deployment ready, status written). Skipped without a cluster,
or without $PODSUP_E2E_IMAGE (the operator image, pushed where the cluster
can pull it: `docker build -t IMAGE . && docker push IMAGE`)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid

import pytest
import yaml

from podsup import names
from tests.chart.conftest import CHART, helm
from tests.chart.test_readme_five_minutes import workerpool
from tests.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


def cluster_or_skip() -> str:
    kubeconfig = os.environ.get("KUBECONFIG")
    if not kubeconfig or not all(os.path.isfile(p) for p in kubeconfig.split(os.pathsep) if p):
        pytest.skip("no cluster: KUBECONFIG is not set to a kubeconfig file")
    image = os.environ.get("PODSUP_E2E_IMAGE")
    if not image:
        pytest.skip("PODSUP_E2E_IMAGE is not set (the operator image the cluster can pull)")
    if not shutil.which("kubectl"):
        pytest.skip("kubectl is not installed")
    return image


def kubectl(*args: str, stdin: str | None = None) -> str:
    proc = subprocess.run(["kubectl", *args], input=stdin, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"kubectl {' '.join(args)}: {proc.stderr}"
    return proc.stdout


def adopt_crd(release: str, namespace: str) -> None:
    """README's adoption of a CRD Helm does not own (applied by hand, by
    another test, or by a release kept with crds.keep): the chart's CRD
    template then takes it over instead of failing the install."""
    crd = f"crd/{names.PLURAL}.{names.API_GROUP}"
    if subprocess.run(["kubectl", "get", crd], capture_output=True, timeout=60).returncode != 0:
        return
    kubectl("label", crd, "app.kubernetes.io/managed-by=Helm", "--overwrite")
    kubectl("annotate", crd, "--overwrite", f"meta.helm.sh/release-name={release}",
            f"meta.helm.sh/release-namespace={namespace}")


def test_chart_installs_and_the_operator_reconciles_a_workerpool():
    image = cluster_or_skip()
    repository, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "")
    namespace = f"podsup-e2e-{uuid.uuid4().hex[:6]}"
    release = "podsup-operator"
    adopt_crd(release, namespace)
    values = {"image": {"repository": repository, "tag": tag}, "operator": {"watchNamespaces": [namespace]}}
    helm("install", CHART, json.dumps(values), release, namespace)
    try:
        pool = workerpool()
        pool["metadata"]["namespace"] = namespace
        kubectl("apply", "-f", "-", stdin=yaml.safe_dump(pool))

        def reconciled():
            wp = json.loads(kubectl("-n", namespace, "get", "wp", pool["metadata"]["name"], "-o", "json"))
            status = wp.get("status") or {}
            ready = status.get("readyReplicas") == pool["spec"]["replicas"]
            return wp if ready and status.get("observedGeneration") == wp["metadata"]["generation"] else None

        wp = wait_for(reconciled, 600, interval=2, message="WorkerPool ready with its status written")
        assert wp["status"]["workers"] == pool["spec"]["processes"] * pool["spec"]["replicas"]
        dep = json.loads(kubectl("-n", namespace, "get", "deployment", pool["metadata"]["name"], "-o", "json"))
        assert dep["metadata"]["ownerReferences"][0]["kind"] == names.KIND
    finally:
        subprocess.run(["kubectl", "-n", namespace, "delete", "wp", "--all", "--wait=true", "--timeout=120s"],
                       capture_output=True, timeout=180)
        helm("uninstall", "-", release, namespace)
        subprocess.run(["kubectl", "delete", "namespace", namespace, "--wait=false"], capture_output=True, timeout=60)
