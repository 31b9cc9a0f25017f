"""The WorkerPool CRD's schema and CEL rules as a real API server enforces
them: bad pools are refused at ``kubectl apply`` with a message naming the
field, and every example is accepted (server-side dry run). No operator
needed.
"""
from __future__ import annotations

import copy

import pytest
import yaml

from tests.e2e import cluster
from tests.e2e.cluster import ROOT, cluster_reason, kubectl

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(bool(cluster_reason()), reason=str(cluster_reason()))]

GOOD = {"apiVersion": "podsup.io/v1alpha1", "kind": "WorkerPool", "metadata": {"name": "bad"},
        "spec": {"image": "x", "command": ["x"]}}


@pytest.fixture(scope="module")
def namespace():
    with cluster.namespace("podsup-crd") as ns:
        yield ns


def with_spec(**spec) -> dict:
    pool = copy.deepcopy(GOOD)
    pool["spec"].update(spec)
    return pool


#: pytest.param(pool, what the API server's refusal must say (every string), id=...)
REFUSED = [
    pytest.param(with_spec(autoscaling={"enabled": True, "minReplicas": 5, "maxReplicas": 2,
                                        "targets": {"cpuPercent": 5}}, resources={"requests": {"cpu": "1"}}),
                 ["autoscaling.minReplicas must be less than or equal to autoscaling.maxReplicas"], id="min-above-max"),
    pytest.param(with_spec(ports=[{"name": "http", "containerPort": 0}]),
                 ["spec.ports[0].containerPort", "greater than or equal to 1"], id="port-0"),
    pytest.param(with_spec(ports=[{"name": "http", "containerPort": 70000}]),
                 ["spec.ports[0].containerPort", "less than or equal to 65535"], id="port-70000"),
    pytest.param(with_spec(env=[{"value": "x"}]),
                 ["spec.env[0].name", "Required value"], id="env-without-name"),
    pytest.param(with_spec(resources={"requests": {"cpu": "lots"}}),
                 ["spec.resources.requests.cpu"], id="quantity-not-a-number"),
    pytest.param(with_spec(resources={"requests": {"memory": "-5"}}),
                 ["spec.resources.requests", "greater than or equal to 0"], id="quantity-negative"),
]


@pytest.mark.parametrize("pool, expected", REFUSED)
def test_a_bad_pool_is_refused_by_the_api_server(namespace, pool, expected):
    pool = {**pool, "metadata": {**pool["metadata"], "namespace": namespace}}
    proc = kubectl("apply", "-f", "-", input=yaml.safe_dump(pool), check=False)
    assert proc.returncode != 0, f"the API server accepted {pool['spec']}"
    for text in expected:
        assert text in proc.stderr, proc.stderr


@pytest.mark.parametrize("example", sorted(p.name for p in (ROOT / "examples").glob("*.yaml")))
def test_every_example_is_accepted(namespace, example):
    pool = yaml.safe_load((ROOT / "examples" / example).read_text())
    pool["metadata"]["namespace"] = namespace
    kubectl("apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump(pool))
