"""``podsup-operator render`` and the contract of its output: every object it
produces validates against the upstream Kubernetes OpenAPI schemas of the
oldest and newest versions we support."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from podsup_operator.cli import main

from .conftest import make_pool
from .test_crd import EXAMPLES, K8S_VERSIONS

ROOT = Path(__file__).resolve().parents[3]

#: A pool using every field that changes the output.
FULL = make_pool({
    "imagePullPolicy": "IfNotPresent", "args": ["-v"], "workingDir": "/app",
    "env": [{"name": "A", "value": "1"}, {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
    "envFrom": [{"secretRef": {"name": "s"}}],
    "resources": {"requests": {"cpu": "500m", "memory": "128Mi"}, "limits": {"memory": "1Gi"}},
    "processes": 6, "replicas": 3,
    "ports": [{"name": "http", "containerPort": 8080, "servicePort": 80}, {"name": "dns", "containerPort": 53,
                                                                          "protocol": "UDP"}],
    "supervisor": {"stopSignal": "QUIT", "gracefulTimeoutSeconds": 20, "drainDelaySeconds": 3,
                   "normalExitCodes": [0, 4], "backoffMaxSeconds": 30, "crashloopThreshold": 5,
                   "crashloopIntervalSeconds": 60, "maxRequests": 500, "maxRequestsJitter": 50,
                   "maxLifetimeSeconds": 600, "maxRss": "300Mi", "heartbeatTimeoutSeconds": 30,
                   "requestTimeoutSeconds": 60, "slowRequestSeconds": 5, "minReady": 3, "logFormat": "json",
                   "metricsPort": 9100},
    "queue": {"type": "redis", "name": "jobs", "url": "redis://r:6379/1", "pollIntervalSeconds": 1},
    "autoscaling": {"enabled": True, "minReplicas": 0, "maxReplicas": 30,
                    "targets": {"queueDepthPerReplica": 10, "requestsPerSecondPerReplica": 1.5,
                                "busyWorkersPercent": 75, "cpuPercent": 70},
                    "behavior": {"scaleUp": {"policies": [{"type": "Pods", "value": 4, "periodSeconds": 15}]}}},
    "disruption": {"minAvailable": "50%"},
    "pod": {"nodeSelector": {"pool": "workers"}, "tolerations": [{"key": "k", "operator": "Exists",
                                                                   "effect": "NoSchedule"}],
            "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 1, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname"}}]}},
            "serviceAccountName": "workers", "imagePullSecrets": [{"name": "reg"}], "labels": {"team": "x"},
            "annotations": {"note": "y"}, "securityContext": {"runAsNonRoot": True, "fsGroup": 1000},
            "containerSecurityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True},
            "priorityClassName": "batch",
            "volumes": [{"name": "cfg", "configMap": {"name": "cfg"}}]},
    "volumeMounts": [{"name": "cfg", "mountPath": "/cfg"}],
}, namespace="default", uid=None)


def render(path: Path, capsys) -> tuple[int, str, str]:
    code = main(["render", "-f", str(path), "--operator-image", "op:1"])
    out, err = capsys.readouterr()
    return code, out, err


def manifests() -> list[tuple[str, Path]]:
    return [(p.name, p) for p in EXAMPLES]


@pytest.fixture
def full_file(tmp_path) -> Path:
    path = tmp_path / "full.yaml"
    path.write_text(yaml.safe_dump(FULL))
    return path


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_rendered_examples_and_full_pool_validate_upstream(version, full_file, capsys):
    seen = set()
    for path in [p for _, p in manifests()] + [full_file]:
        code, out, err = render(path, capsys)
        assert code == 0, err
        for obj in yaml.safe_load_all(out):
            kubernetes_validate.validate(obj, version, strict=True)
            seen.add(obj["kind"])
    assert seen == {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"}


def test_render_prints_the_children_in_order(full_file, capsys):
    code, out, _ = render(full_file, capsys)
    assert code == 0
    docs = list(yaml.safe_load_all(out))
    assert [d["kind"] for d in docs] == ["Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"]
    assert docs[0]["spec"]["template"]["spec"]["initContainers"][0]["image"] == "op:1"


def test_render_applies_crd_defaults(tmp_path, capsys):
    path = tmp_path / "min.yaml"
    path.write_text(yaml.safe_dump(make_pool({}, defaults=False, uid=None)))
    code, out, _ = render(path, capsys)
    dep = next(yaml.safe_load_all(out))
    assert code == 0 and dep["spec"]["replicas"] == 1
    cmd = dep["spec"]["template"]["spec"]["containers"][0]["command"]
    assert cmd[cmd.index("--graceful-timeout") + 1] == "30"


def test_render_of_an_invalid_pool_prints_the_schema_messages(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(make_pool({"processes": 0, "autoscaling": {"enabled": True}},
                                             defaults=False, name="bad")))
    code, out, err = render(path, capsys)
    assert code == 2 and out == ""
    assert 'The WorkerPool "bad" is invalid:' in err
    assert "spec.processes: Invalid value: 0: spec.processes in body should be greater than or equal to 1" in err
    assert "Traceback" not in err


def test_render_reports_cel_failures(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(make_pool({"autoscaling": {"enabled": True, "maxReplicas": 2}},
                                             defaults=False)))
    code, _, err = render(path, capsys)
    assert code == 2
    assert "spec.autoscaling: Invalid value: autoscaling.targets needs at least one target" in err


@pytest.mark.parametrize("content,message", [
    ("a: [", "not valid YAML"),
    ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", "document 1 is a ConfigMap, not a WorkerPool"),
    ("", "no WorkerPool found"),
])
def test_render_refuses_other_input_clearly(tmp_path, capsys, content, message):
    path = tmp_path / "in.yaml"
    path.write_text(content)
    code, _, err = render(path, capsys)
    assert code == 2 and message in err and "Traceback" not in err
    assert len(err.splitlines()) == 1, err


def test_render_missing_file(tmp_path, capsys):
    code, _, err = render(tmp_path / "nope.yaml", capsys)
    assert code == 2 and "cannot read" in err
    code, _, err = render(tmp_path, capsys)  # a directory
    assert code == 2 and "cannot read" in err and len(err.splitlines()) == 1


def test_render_refuses_a_file_that_is_not_utf8_in_one_line(tmp_path, capsys):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(yaml.safe_dump(make_pool({"env": [{"name": "CITY", "value": "Zürich"}]},
                                              defaults=False), allow_unicode=True).encode("latin-1"))
    code, out, err = render(path, capsys)
    assert code == 2 and out == ""
    assert err.startswith(f"error: {path}: not UTF-8 text (byte 0xfc on line ") and "Traceback" not in err
    assert len(err.splitlines()) == 1, err


def test_render_refuses_a_key_given_twice_as_kubectl_does(tmp_path, capsys):
    path = tmp_path / "twice.yaml"
    text = yaml.safe_dump(make_pool({}, defaults=False), sort_keys=False)
    path.write_text(text.replace("  image: ", "  image: first\n  image: ", 1))
    line = text.splitlines().index(next(l for l in text.splitlines() if l.startswith("  image: "))) + 2
    code, out, err = render(path, capsys)
    assert code == 2 and out == ""
    assert f'line {line}, column 3: key "image" already set in map (first at line {line - 1})' in err
    assert len(err.splitlines()) == 1, err


def test_render_accepts_an_explicit_key_over_a_merged_one(tmp_path, capsys):
    """``<<: *anchor`` then the same key is YAML's override, not a key given twice."""
    path = tmp_path / "merge.yaml"
    path.write_text("apiVersion: podsup.io/v1alpha1\nkind: WorkerPool\nmetadata: {name: merged}\n"
                    "spec:\n  <<: {image: 'python:3.12', command: [python, w.py], processes: 2}\n"
                    "  processes: 4\n")
    code, out, err = render(path, capsys)
    assert code == 0, err
    cmd = next(yaml.safe_load_all(out))["spec"]["template"]["spec"]["containers"][0]["command"]
    assert cmd[cmd.index("--workers") + 1] == "4"


def test_dump_writes_a_shared_value_twice_instead_of_an_anchor():
    """Builders may share one dict between objects (a securityContext for
    two containers): the stream still has no ``&id001`` / ``*id001``."""
    from podsup_operator.render import dump

    shared = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    out = dump([{"kind": "A", "x": shared, "y": shared}, {"kind": "B", "z": shared}])
    assert "&" not in out and "*" not in out
    assert list(yaml.safe_load_all(out))[1]["z"] == shared


def test_render_output_has_no_yaml_anchors(full_file, capsys):
    """The init and the worker container share one securityContext object:
    written out twice, not as ``&id001`` / ``*id001``."""
    code, out, err = render(full_file, capsys)
    assert code == 0, err
    assert "&id" not in out and "*id" not in out
    dep = next(yaml.safe_load_all(out))
    pod = dep["spec"]["template"]["spec"]
    assert pod["initContainers"][0]["securityContext"] == pod["containers"][0]["securityContext"] == {
        "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}


def test_console_script_renders_from_stdin():
    """The real entry point, in a subprocess, reading stdin."""
    text = (ROOT / "examples" / "python-queue-worker.yaml").read_text()
    proc = subprocess.run([sys.executable, "-m", "podsup_operator.cli", "render", "-f", "-"], input=text,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert [d["kind"] for d in yaml.safe_load_all(proc.stdout)] == ["Deployment", "Service", "PodDisruptionBudget"]


def test_crd_subcommand_prints_the_crd(capsys):
    assert main(["crd"]) == 0
    out, _ = capsys.readouterr()
    assert yaml.safe_load(out) == yaml.safe_load((ROOT / "crds" / "workerpools.podsup.io.yaml").read_text())
