"""Every pod the chart deploys and the operator renders passes the
`restricted` Pod Security Standard by default (tests/pod_security.py, the
official controls), and a pool that asks for a read-only root filesystem
gets a writable /tmp."""
from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import uuid

import pytest
import yaml

from podsup import names
from tests.chart.conftest import ROOT, SCENARIOS, render, scenario_values
from tests.pod_security import pod_specs, restricted_violations

IMAGE = "registry.example.com/podsup-operator:test"


def example_pools() -> list[dict]:
    from podsup_operator.crd import workerpool_schema
    from podsup_operator.validation import apply_defaults

    pools = []
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == names.KIND:
                pools.append(apply_defaults(doc, workerpool_schema()))
    assert pools
    preloaded = copy.deepcopy(pools[0])
    preloaded["spec"]["command"] = ["python3"]
    preloaded["spec"].setdefault("supervisor", {})["preload"] = "app:main"
    pools.append(preloaded)
    return pools


def rendered_pods(pool: dict) -> list[tuple[dict, dict]]:
    from podsup_operator.builders import desired_children

    return [p for child in desired_children(pool, IMAGE).values() if child for p in pod_specs(child)]


def chart_pods(values: dict) -> list[tuple[str, dict, dict]]:
    return [(o["__template__"], spec, ann) for o in render(values) for spec, ann in pod_specs(o)]


@pytest.mark.parametrize("values", [{}] + [scenario_values(p) for p in SCENARIOS],
                         ids=["default"] + [p.name for p in SCENARIOS])
def test_chart_pods_are_restricted(values):
    pods = chart_pods(values)
    assert pods, "the chart deploys no pod?"
    for template, spec, annotations in pods:
        assert restricted_violations(spec, annotations) == [], template


@pytest.mark.parametrize("pool", example_pools(), ids=lambda p: p["metadata"]["name"])
def test_operator_pods_are_restricted(pool):
    pods = rendered_pods(pool)
    assert pods
    for spec, annotations in pods:
        assert restricted_violations(spec, annotations) == []
        if "initContainers" in spec:  # the init container has one too (it had none)
            assert spec["initContainers"][0]["securityContext"]["readOnlyRootFilesystem"] is True


def test_a_pool_loosening_its_security_context_is_its_own_choice():
    pool = copy.deepcopy(example_pools()[0])
    pool["spec"].setdefault("pod", {})["containerSecurityContext"] = {"allowPrivilegeEscalation": True}
    (spec, annotations), = rendered_pods(pool)
    assert restricted_violations(spec, annotations) != []


def test_read_only_root_filesystem_gets_an_emptydir_at_tmp():
    from podsup_operator.builders.deployment import TMP_PATH, TMP_VOLUME

    pool = copy.deepcopy(example_pools()[0])
    pool["spec"].setdefault("pod", {})["containerSecurityContext"] = {"readOnlyRootFilesystem": True}
    (spec, _), = rendered_pods(pool)
    assert {"name": TMP_VOLUME, "emptyDir": {}} in spec["volumes"]
    worker = spec["containers"][0]
    assert worker["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"name": TMP_VOLUME, "mountPath": TMP_PATH} in worker["volumeMounts"]
    assert restricted_violations(spec, {}) == []
    # the pool's own /tmp is kept, and no second one added
    pool["spec"]["volumeMounts"] = [{"name": "scratch", "mountPath": "/tmp"}]
    pool["spec"]["pod"]["volumes"] = [{"name": "scratch", "emptyDir": {"medium": "Memory"}}]
    (spec, _), = rendered_pods(pool)
    assert TMP_VOLUME not in {v["name"] for v in spec["volumes"]}
    # a writable root: no extra volume
    pool = example_pools()[0]
    pool["spec"].get("pod", {}).pop("containerSecurityContext", None)
    (spec, _), = rendered_pods(pool)
    assert TMP_VOLUME not in {v["name"] for v in spec.get("volumes") or []}


# --- the validator itself: each control catches what it should ---------------

CLEAN = {
    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    "containers": [{"name": "c", "image": "i", "securityContext": {
        "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}],
    "volumes": [{"name": "v", "emptyDir": {}}],
}
C = ("containers", 0, "securityContext")
BREAKS = {
    "HostProcess": (("securityContext", "windowsOptions"), {"hostProcess": True}),
    "Host Namespaces": (("hostPID",), True),
    "Privileged Containers": ((*C, "privileged"), True),
    "Host Ports": (("containers", 0, "ports"), [{"containerPort": 80, "hostPort": 80}]),
    "/proc Mount Type": ((*C, "procMount"), "Unmasked"),
    "HostPath Volumes": (("volumes", 0), {"name": "v", "hostPath": {"path": "/"}}),
    "SELinux": (("securityContext", "seLinuxOptions"), {"type": "spc_t"}),
    "Sysctls": (("securityContext", "sysctls"), [{"name": "kernel.msgmax", "value": "1"}]),
    "Volume Types": (("volumes", 0), {"name": "v", "nfs": {"server": "s", "path": "/"}}),
    "Privilege Escalation": ((*C, "allowPrivilegeEscalation"), True),
    "Running as Non-root": (("securityContext", "runAsNonRoot"), False),
    "Running as Non-root user": ((*C, "runAsUser"), 0),
    "Seccomp": (("securityContext", "seccompProfile"), {"type": "Unconfined"}),
    "Capabilities": ((*C, "capabilities"), {"drop": ["ALL"], "add": ["SYS_ADMIN"]}),
    "AppArmor": ((*C, "appArmorProfile"), {"type": "Unconfined"}),
}


def put(obj, path, value):
    for key in path[:-1]:
        obj = obj[key]
    obj[path[-1]] = value


def test_the_clean_pod_is_clean():
    assert restricted_violations(CLEAN) == []


@pytest.mark.parametrize("control", sorted(BREAKS))
def test_each_control_catches_its_violation(control):
    pod = copy.deepcopy(CLEAN)
    put(pod, *BREAKS[control])
    found = restricted_violations(pod)
    assert any(v.startswith(control + ":") for v in found), found


def test_missing_fields_are_violations_too():
    pod = {"containers": [{"name": "c", "image": "i"}], "initContainers": [{"name": "init", "image": "i"}]}
    found = {v.split(":")[0] for v in restricted_violations(pod)}
    assert found == {"Privilege Escalation", "Running as Non-root", "Seccomp", "Capabilities"}


# --- cross-check with a real API server's PodSecurity admission --------------

def cluster() -> str:
    kubeconfig = os.environ.get("KUBECONFIG")
    if not kubeconfig or not os.path.isfile(kubeconfig) or not shutil.which("kubectl"):
        pytest.skip("no cluster: KUBECONFIG is not set to a kubeconfig file")
    probe = subprocess.run(["kubectl", "version", "-o", "json"], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0 or "serverVersion" not in probe.stdout:
        pytest.skip(f"no cluster answers at KUBECONFIG={kubeconfig}")
    return kubeconfig


def kubectl(*args, stdin=None):
    return subprocess.run(["kubectl", *args], input=stdin, capture_output=True, text=True, timeout=120)


@pytest.mark.e2e
def test_api_server_admission_agrees():
    """Server-side dry-run of each pod in a namespace that enforces
    `restricted`: the API server's own PodSecurity admission accepts ours
    and refuses the validator's broken examples."""
    cluster()
    ns = f"podsup-pss-{uuid.uuid4().hex[:6]}"
    manifest = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest"}}}
    assert kubectl("apply", "-f", "-", stdin=json.dumps(manifest)).returncode == 0
    try:
        specs = [spec for pool in example_pools() for spec, _ in rendered_pods(pool)]
        specs += [spec for _, spec, _ in chart_pods({})]
        for i, spec in enumerate(specs):
            spec = {k: v for k, v in spec.items() if k != "serviceAccountName"}  # the SA is not in this namespace
            pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"p{i}", "namespace": ns}, "spec": spec}
            proc = kubectl("create", "--dry-run=server", "-f", "-", stdin=json.dumps(pod))
            assert proc.returncode == 0, proc.stderr
        for control, change in BREAKS.items():
            pod_spec = copy.deepcopy(CLEAN)
            put(pod_spec, *change)
            pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bad", "namespace": ns}, "spec": pod_spec}
            proc = kubectl("create", "--dry-run=server", "-f", "-", stdin=json.dumps(pod))
            assert proc.returncode != 0, f"the API server admitted a pod breaking {control}"
    finally:
        kubectl("delete", "namespace", ns, "--wait=false")
