"""The chart's operator runs several replicas without a metrics API outage:
leader election passed and granted (least privilege, in the release
namespace), a PodDisruptionBudget, replicas spread across nodes, readiness
only while this replica's metrics API serves; and never two replicas
without leader election."""
from __future__ import annotations

import pytest

from podsup_operator.cli import build_parser
from tests.chart.conftest import find, one, render

FULLNAME = "podsup-podsup-operator"  # release "podsup"


def container(objects):
    return one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]


def test_default_two_replicas_elect_a_leader_over_a_lease_named_after_the_release():
    objects = render()
    args = build_parser().parse_args(container(objects)["args"])
    assert args.leader_elect and args.leader_elect_lease_name == FULLNAME
    assert args.leader_elect_lease_namespace is None  # POD_NAMESPACE, from the downward API
    env = {e["name"]: e for e in container(objects)["env"]}
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"


def test_the_lease_role_is_least_privilege_in_the_release_namespace():
    objects = render()
    (role,) = [r for r in find(objects, "Role") if r["metadata"]["name"].endswith("-leader-election")]
    assert role["metadata"]["namespace"] == one(objects, "Deployment")["metadata"]["namespace"]
    rules = {(tuple(r["verbs"]), tuple(r.get("resourceNames", ()))) for r in role["rules"]}
    assert rules == {(("create",), ()), (("get", "update"), (FULLNAME,))}
    assert all(r["apiGroups"] == ["coordination.k8s.io"] and r["resources"] == ["leases"] for r in role["rules"])
    (binding,) = [b for b in find(objects, "RoleBinding") if b["metadata"]["name"].endswith("-leader-election")]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["metadata"]["namespace"] == role["metadata"]["namespace"]
    # no lease grants anywhere else (cluster-wide roles included)
    for r in find(objects, "ClusterRole"):
        assert not any("leases" in rule.get("resources", []) for rule in r.get("rules") or []), r["metadata"]["name"]


def test_a_pdb_keeps_one_replica_through_a_drain():
    objects = render()
    pdb = one(objects, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    pod_labels = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert find(render({"replicaCount": 1}), "PodDisruptionBudget") == []  # would block every drain
    assert find(render({"operator": {"podDisruptionBudget": {"enabled": False}}}), "PodDisruptionBudget") == []


def test_replicas_prefer_different_nodes_unless_affinity_is_given():
    objects = render()
    anti = one(objects, "Deployment")["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    (term,) = anti["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    pod_labels = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert term["podAffinityTerm"]["labelSelector"]["matchLabels"].items() <= pod_labels.items()
    own = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["system"]}]}]}}}
    assert one(render({"operator": {"affinity": own}}), "Deployment")["spec"]["template"]["spec"]["affinity"] == own
    assert "affinity" not in one(render({"replicaCount": 1}), "Deployment")["spec"]["template"]["spec"]


def test_readiness_is_the_metrics_api_answering_https():
    probe = container(render())["readinessProbe"]["httpGet"]
    assert probe == {"path": "/readyz", "port": "metrics-api", "scheme": "HTTPS"}


def test_one_replica_without_leader_election_is_the_old_standalone_operator():
    objects = render({"replicaCount": 1, "operator": {"leaderElection": {"enabled": False}}})
    assert one(objects, "Deployment")["spec"]["replicas"] == 1
    assert "--leader-elect" not in container(objects)["args"]
    assert not [r for r in find(objects, "Role") if r["metadata"]["name"].endswith("-leader-election")]


def test_two_replicas_without_leader_election_are_refused():
    with pytest.raises(AssertionError, match="replicaCount > 1 needs operator.leaderElection.enabled"):
        render({"operator": {"leaderElection": {"enabled": False}}})
