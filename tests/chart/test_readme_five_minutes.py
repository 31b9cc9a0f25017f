"""README "Kubernetes in five minutes" describes what exists: its WorkerPool
is accepted and rendered by the real `podsup-operator render`, the commands
name real chart values, objects, containers and files."""
from __future__ import annotations

import json
import pathlib
import re
import subprocess
import sys

import yaml

from podsup import names
from tests.chart.conftest import one, render

ROOT = pathlib.Path(__file__).resolve().parents[2]


def section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("## Kubernetes in five minutes")
    end = text.index("\n## ", start + 10)
    return text[start:end]


def workerpool() -> dict:
    blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", section(), re.S)]
    (pool,) = [b for b in blocks if b.get("kind") == names.KIND]
    return pool


def operator_render(pool: dict, tmp_path) -> list[dict]:
    path = tmp_path / "pool.yaml"
    path.write_text(yaml.safe_dump(pool))
    proc = subprocess.run([sys.executable, "-m", "podsup_operator.cli", "render", "-f", str(path)],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def merge(base, patch):
    if isinstance(base, dict) and isinstance(patch, dict):
        return {**base, **{k: merge(base.get(k), v) for k, v in patch.items()}}
    return patch


def test_readme_workerpool_renders_the_children_it_describes(tmp_path):
    pool = workerpool()
    children = {o["kind"]: o for o in operator_render(pool, tmp_path)}
    assert {"Deployment", "Service", "PodDisruptionBudget"} <= set(children)
    pod = children["Deployment"]["spec"]["template"]["spec"]
    exec_container = re.search(r"kubectl exec deploy/(\S+) -c (\S+) -- (\S+) status", section())
    assert exec_container.group(1) == pool["metadata"]["name"]
    containers = {c["name"]: c for c in pod["containers"]}
    assert exec_container.group(2) in containers
    assert exec_container.group(3) == f"{names.SHARED_BIN_DIR}/podsup"
    assert containers[exec_container.group(2)]["command"][0] == exec_container.group(3)
    assert pod["initContainers"][0]["command"][1] == names.IMAGE_BINARY_PATH
    assert f"-l {names.POOL_LABEL}={pool['metadata']['name']}" in section()
    assert children["Deployment"]["spec"]["template"]["metadata"]["labels"][names.POOL_LABEL] == pool["metadata"]["name"]


def test_readme_autoscaling_patch_gives_the_hpa_target_it_quotes(tmp_path):
    patch = re.search(r"kubectl patch wp hello --type merge -p \\\n\s+'(\{.*?\})'", section())
    assert patch, "the autoscaling patch command"
    pool = merge(workerpool(), json.loads(patch.group(1)))
    hpa = next(o for o in operator_render(pool, tmp_path) if o["kind"] == "HorizontalPodAutoscaler")
    (metric,) = hpa["spec"]["metrics"]
    assert metric["pods"]["metric"]["name"] == names.METRIC_BUSY_RATIO
    quoted = re.search(r"TARGETS climbs above (\S+)", section()).group(1)
    assert metric["pods"]["target"]["averageValue"] == quoted


def test_readme_helm_commands_use_real_values_and_names():
    text = section()
    schema = json.loads((ROOT / "charts" / "podsup-operator" / "values.schema.json").read_text())
    keys = re.findall(r"--set '?([\w.]+)=", text) + re.findall(r"`([a-zA-Z]+\.[\w.]+)=", text)
    assert "image.repository" in keys and "operator.watchNamespaces" in keys
    for dotted in keys:
        node = schema
        for part in dotted.split("."):
            assert part in node.get("properties", {}), f"README sets {dotted}: no such chart value"
            node = node["properties"][part]
    release = re.search(r"helm install (\S+) charts/podsup-operator -n (\S+)", text)
    deployment = one(render(release=release.group(1)), "Deployment")["metadata"]["name"]
    assert f"-n {release.group(2)} rollout status deployment/{deployment}" in text


def test_readme_links_and_paths_exist():
    text = section()
    for link in re.findall(r"\]\(([^)#]+)\)", text):
        if not link.startswith("http"):
            assert (ROOT / link).exists(), link
    assert f"`{names.IMAGE_BINARY_PATH}`" in text and f"`{names.SHARED_BIN_DIR}/podsup`" in text
    assert re.search(r"^podsup-binary:", (ROOT / "Makefile").read_text(), re.M)


def test_readme_tmp_emptydir_advice_renders(tmp_path):
    """README: a pool with a read-only root filesystem gets an emptyDir at
    /tmp from the operator (the binary unpacks there)."""
    promise = "`pod.containerSecurityContext.readOnlyRootFilesystem` is true gets an `emptyDir` at `/tmp`"
    assert promise in " ".join(section().split())
    assert promise in " ".join((ROOT / "docs" / "standalone-binary.md").read_text().split())
    pool = merge(workerpool(), {"spec": {"pod": {"containerSecurityContext": {"readOnlyRootFilesystem": True}}}})
    dep = next(o for o in operator_render(pool, tmp_path) if o["kind"] == "Deployment")
    pod = dep["spec"]["template"]["spec"]
    (tmp,) = [v for v in pod["volumes"] if v["name"] == "podsup-tmp"]
    assert tmp == {"name": "podsup-tmp", "emptyDir": {}}
    worker = next(c for c in pod["containers"] if c["command"][0] == f"{names.SHARED_BIN_DIR}/podsup")
    assert {"name": "podsup-tmp", "mountPath": "/tmp"} in worker["volumeMounts"]
