"""The CRD: canonical file up to date, valid for the Kubernetes versions we
support, structural, documented, and its CEL rules doing what they say."""
from __future__ import annotations

from pathlib import Path

import celpy
import kubernetes_validate
import pytest
import yaml

from podsup import names
from podsup_operator.crd import workerpool_crd, workerpool_schema
from podsup_operator.validation import InvalidWorkerPool, cel_rules, validate_workerpool

from .conftest import make_pool

ROOT = Path(__file__).resolve().parents[3]
CRD_FILE = ROOT / "crds" / "workerpools.podsup.io.yaml"
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.yaml")
                  if (yaml.safe_load(p.read_text()) or {}).get("kind") == names.KIND)
#: Oldest and newest Kubernetes versions we support.
K8S_VERSIONS = ["1.30", "1.37"]


def test_crd_file_is_the_generated_crd():
    assert yaml.safe_load(CRD_FILE.read_text()) == workerpool_crd(), (
        "crds/workerpools.podsup.io.yaml is stale: run `podsup-operator crd > crds/workerpools.podsup.io.yaml`")


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_crd_validates_against_upstream_schema(version):
    kubernetes_validate.validate(yaml.safe_load(CRD_FILE.read_text()), version, strict=True)


def test_crd_names_subresources_and_printer_columns():
    crd = workerpool_crd()
    spec = crd["spec"]
    assert crd["metadata"]["name"] == f"{names.PLURAL}.{names.API_GROUP}"
    assert spec["names"]["kind"] == names.KIND and spec["names"]["shortNames"] == ["wp"]
    assert spec["scope"] == "Namespaced"
    version = spec["versions"][0]
    assert version["name"] == names.API_VERSION
    assert version["subresources"] == {"status": {}, "scale": {
        "specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector"}}
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns == {"Ready": ".status.readyReplicas", "Replicas": ".status.replicas",
                       "Workers": ".status.workers", "Busy": ".status.live.workers.busy",
                       "RPS": ".status.live.requestsPerSecond", "Queue": ".status.queueDepth",
                       "Age": ".metadata.creationTimestamp"}
    assert list(columns).index("Busy") == list(columns).index("Workers") + 1


FORBIDDEN = {"$ref", "definitions", "dependencies", "additionalItems", "patternProperties", "id", "$schema",
             "uniqueItems"}


def _walk(node, path="<root>"):
    yield path, node
    for key, sub in (node.get("properties") or {}).items():
        yield from _walk(sub, f"{path}.{key}")
    if isinstance(node.get("items"), dict):
        yield from _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _walk(node["additionalProperties"], f"{path}{{}}")


def test_schema_is_structural():
    """The rules of apiextensions' structural schemas
    (https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#specifying-a-structural-schema)."""
    problems = []
    for path, node in _walk(workerpool_schema()):
        if not node.get("type") and not node.get("x-kubernetes-int-or-string"):
            problems.append(f"{path}: no type")
        if node.get("x-kubernetes-int-or-string") and node.get("type"):
            problems.append(f"{path}: int-or-string must not set type")
        if "properties" in node and "additionalProperties" in node:
            problems.append(f"{path}: properties and additionalProperties together")
        if node.get("type") == "array" and not isinstance(node.get("items"), dict):
            problems.append(f"{path}: array without items schema")
        if FORBIDDEN & set(node):
            problems.append(f"{path}: forbidden keywords {FORBIDDEN & set(node)}")
        if node.get("x-kubernetes-list-type") == "map":
            item = node["items"]
            for key in node["x-kubernetes-list-map-keys"]:
                if key not in item.get("required", []) and "default" not in item["properties"][key]:
                    problems.append(f"{path}: list-map key {key} must be required or defaulted")
    metadata = workerpool_schema()["properties"]["metadata"]
    if set(metadata) - {"type"}:
        problems.append("metadata may only declare type at the root")
    assert problems == []


def test_every_field_is_described():
    """So `kubectl explain workerpool.spec...` is useful."""
    undocumented = [path for path, node in _walk(workerpool_schema())
                    if "{}" not in path and path.split(".")[-1] != "metadata" and "[]" not in path[-2:]
                    and not node.get("description")]
    assert undocumented == []


def test_defaults_are_valid_against_their_own_schema():
    pool = make_pool({})
    assert pool["spec"]["processes"] == 1 and pool["spec"]["replicas"] == 1
    assert pool["spec"]["supervisor"]["metricsPort"] == names.DEFAULT_HTTP_PORT
    validate_workerpool(pool)


def test_every_cel_rule_compiles():
    env = celpy.Environment()
    rules = cel_rules(workerpool_schema())
    assert len(rules) >= 10
    for _path, rule, message in rules:
        env.compile(rule)
        assert message and not message.endswith(".")


VALID = [
    {},
    {"autoscaling": {"enabled": True, "minReplicas": 0, "maxReplicas": 5, "targets": {"busyWorkersPercent": 80}}},
    {"autoscaling": {"enabled": False}},
    {"queue": {"type": "redis", "name": "jobs", "url": "rediss://redis:6379/0"},
     "autoscaling": {"enabled": True, "maxReplicas": 5, "targets": {"queueDepthPerReplica": 10}}},
    {"queue": {"type": "amqp", "name": "q", "urlSecretRef": {"name": "s", "key": "url"}}},
    {"resources": {"requests": {"cpu": "250m"}},
     "autoscaling": {"enabled": True, "maxReplicas": 3, "targets": {"cpuPercent": 60}}},
    {"disruption": {"maxUnavailable": "50%"}},
    {"ports": [{"name": "http", "containerPort": 8080}, {"name": "admin", "containerPort": 8081}]},
    {"processes": 4, "supervisor": {"minReady": 4}},
    {"volumeMounts": [{"name": "w", "mountPath": "/w"}], "pod": {"volumes": [{"name": "w", "emptyDir": {}}]}},
    {"command": ["python3"], "supervisor": {"preload": "app.workers:main"}},
]

INVALID = [
    ({"autoscaling": {"enabled": True, "minReplicas": 6, "maxReplicas": 5, "targets": {"cpuPercent": 1}},
      "resources": {"requests": {"cpu": "1"}}},
     "autoscaling.minReplicas must be less than or equal to autoscaling.maxReplicas"),
    ({"autoscaling": {"enabled": True, "targets": {"busyWorkersPercent": 50}}},
     "autoscaling.maxReplicas is required when autoscaling is enabled"),
    ({"autoscaling": {"enabled": True, "maxReplicas": 3}},
     "autoscaling.targets needs at least one target when autoscaling is enabled"),
    ({"autoscaling": {"enabled": True, "maxReplicas": 3, "targets": {}}},
     "autoscaling.targets needs at least one target when autoscaling is enabled"),
    ({"autoscaling": {"enabled": True, "maxReplicas": 3, "targets": {"queueDepthPerReplica": 5}}},
     "autoscaling.targets.queueDepthPerReplica needs spec.queue"),
    ({"autoscaling": {"enabled": True, "maxReplicas": 3, "targets": {"cpuPercent": 50}}},
     "autoscaling.targets.cpuPercent needs resources.requests.cpu"),
    ({"queue": {"type": "redis", "name": "j"}}, "exactly one of queue.url and queue.urlSecretRef must be set"),
    ({"queue": {"type": "redis", "name": "j", "url": "redis://r/0", "urlSecretRef": {"name": "s", "key": "k"}}},
     "exactly one of queue.url and queue.urlSecretRef must be set"),
    ({"queue": {"type": "redis", "name": "j", "url": "redis://:secret@r:6379/0"}},
     "queue.url must not contain credentials"),
    ({"queue": {"type": "amqp", "name": "j", "url": "redis://r:6379/0"}},
     "queue.url scheme must match queue.type"),
    ({"disruption": {"minAvailable": 1, "maxUnavailable": 1}},
     "exactly one of disruption.minAvailable and disruption.maxUnavailable must be set"),
    ({"disruption": {}}, "exactly one of disruption.minAvailable and disruption.maxUnavailable must be set"),
    ({"ports": [{"name": names.METRICS_PORT_NAME, "containerPort": 80}]}, "is reserved for podsup's metrics port"),
    ({"ports": [{"name": "http", "containerPort": names.DEFAULT_HTTP_PORT}]},
     "ports[].containerPort must differ from supervisor.metricsPort"),
    ({"processes": 2, "supervisor": {"minReady": 3}}, "supervisor.minReady must be less than or equal to processes"),
    ({"pod": {"volumes": [{"name": "podsup-bin", "emptyDir": {}}]}},
     "pod.volumes[].name podsup-bin is reserved for the podsup binary"),
    ({"command": ["python3"], "args": ["app.py"], "supervisor": {"preload": "app:main"}},
     "supervisor.preload replaces the worker command: args must be empty"),
    ({"command": ["python3"], "supervisor": {"preload": "app"}}, "supervisor.preload"),
]


@pytest.mark.parametrize("spec", VALID)
def test_cel_accepts_valid_specs(spec):
    validate_workerpool(make_pool(spec, defaults=False))


@pytest.mark.parametrize("spec,message", INVALID, ids=[m for _, m in INVALID])
def test_cel_refuses_invalid_specs_with_its_message(spec, message):
    with pytest.raises(InvalidWorkerPool) as info:
        validate_workerpool(make_pool(spec, defaults=False))
    assert any(message in e for e in info.value.errors), info.value.errors


@pytest.mark.parametrize("name", ["1pool", "pool.with.dots", "x" * 64])
def test_pool_name_must_be_a_dns_label(name):
    with pytest.raises(InvalidWorkerPool) as info:
        validate_workerpool(make_pool({}, name=name, defaults=False))
    assert info.value.errors[0].startswith("metadata.name must be a DNS-1035 label")
    assert "<nil>" not in str(info.value)  # the API server's nil root path means nothing to a reader


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_validate_against_the_crd_schema(path):
    for doc in yaml.safe_load_all(path.read_text()):
        validate_workerpool(doc)


def test_there_are_the_three_examples():
    assert {p.name for p in EXAMPLES} >= {"python-queue-worker.yaml", "php-socket-server.yaml",
                                          "queue-autoscaled.yaml"}


def test_every_supervisor_duration_is_bounded_by_what_podsup_run_accepts():
    # a WorkerPool the API server takes must never make `podsup run` exit 2 in the pod
    from podsup.core.config import MAX_DURATION

    supervisor = workerpool_schema()["properties"]["spec"]["properties"]["supervisor"]["properties"]
    durations = {name: field for name, field in supervisor.items() if name.endswith("Seconds")}
    assert len(durations) >= 7
    for name, field in durations.items():
        assert field.get("maximum") is not None and field["maximum"] <= MAX_DURATION, name
