"""The chart's RBAC is exactly what the operator code uses: no less (it
would fail at run time) and no more (least privilege).

What the operator uses is found from the code itself, not written down here:
  * kopf's registry (the handlers module's @kopf.on/@kopf.timer): every
    watched resource is listed and watched; kopf patches the resources it
    handles with changing/timer handlers (progress annotations, finalizer);
    kopf's settings say whether it posts Events and scans CRDs;
  * the reconcile and handlers, run over every example WorkerPool against a
    recording stand-in for ClusterApi (the operator's own seam to the API):
    every get/apply/delete/patch_status/get_pool/list_pools call it makes.
"""
from __future__ import annotations

import copy
import pathlib
import logging

import kopf
import pytest
import yaml

from podsup import names
from tests.chart.conftest import find, render

ROOT = pathlib.Path(__file__).resolve().parents[2]
CRD_RULE = ("apiextensions.k8s.io", "customresourcedefinitions")

# ClusterApi method -> RBAC verbs (server-side apply creates when missing, so
# it needs create as well as patch).
VERBS = {"get": {"get"}, "get_pool": {"get"}, "list_pools": {"list"}, "apply": {"create", "patch"},
         "delete": {"delete"}, "patch_status": {"patch"}, "scale": {"patch"}}
#: Granted by the queue pollers' role (metrics-api-rbac.yaml, rendered whether
#: or not the metrics API is on), which the operator's service account also holds.
POLLER_GRANTED = {("apps", "deployments/scale", "patch")}


def plural(api_version: str, kind: str) -> tuple[str, str]:
    from podsup_operator.apply import PLURALS

    group = api_version.rpartition("/")[0] if "/" in api_version else ""
    return group, PLURALS[(api_version, kind)]


class RecordingApi:
    """Stands in for podsup_operator.apply.ClusterApi: every child exists and
    is controlled by the pool (so the reconcile also deletes what a spec
    turns off); every call is recorded."""

    def __init__(self, pool: dict):
        self.pool = pool
        self.calls: set[tuple[str, str, str, str | None]] = set()

    def _live(self, api_version, kind, namespace, name):
        spec = {"replicas": 0} if kind == "Deployment" else {}  # stranded at 0: the rescue scale is made too
        return {"apiVersion": api_version, "kind": kind,
                "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{kind}",
                             "ownerReferences": [{"controller": True, "kind": names.KIND, "name": name,
                                                  "uid": self.pool["metadata"]["uid"]}]},
                "spec": spec, "status": {}}

    def get(self, api_version, kind, namespace, name):
        self.calls.add(("get", api_version, kind, None))
        return self._live(api_version, kind, namespace, name)

    def apply(self, obj, manager=None):
        self.calls.add(("apply", obj["apiVersion"], obj["kind"], None))
        if obj["kind"] == "Deployment":  # the live count the API returns; 0 strands an autoscaled pool
            obj = copy.deepcopy(obj)
            obj["spec"].setdefault("replicas", 0)
        return obj

    def delete(self, api_version, kind, namespace, name, uid=None):
        self.calls.add(("delete", api_version, kind, None))

    def patch_status(self, pool, status):
        self.calls.add(("patch_status", pool["apiVersion"], pool["kind"], "status"))
        return {"status": status}

    def scale(self, namespace, name, replicas):
        self.calls.add(("scale", "apps/v1", "Deployment", "scale"))
        return {"spec": {"replicas": replicas}}

    def list_pools(self, namespaces=None):
        self.calls.add(("list_pools", f"{names.API_GROUP}/{names.API_VERSION}", names.KIND, None))
        return [copy.deepcopy(self.pool)]

    def get_pool(self, namespace, name):
        self.calls.add(("get", f"{names.API_GROUP}/{names.API_VERSION}", names.KIND, None))
        gone = copy.deepcopy(self.pool)
        gone["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
        return gone


def example_pools() -> list[dict]:
    pools = []
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == names.KIND:
                doc["metadata"].setdefault("namespace", "default")  # kubectl apply's -n, or the context's
                doc["metadata"].setdefault("uid", f"uid-{path.stem}")
                doc["metadata"].setdefault("generation", 1)
                pools.append(doc)
    assert pools, "no example WorkerPool found in examples/"
    # and one autoscaled on busy workers only, which a Deployment at 0 strands
    stranded = copy.deepcopy(next(p for p in pools if (p["spec"].get("autoscaling") or {}).get("enabled")))
    stranded["spec"].pop("queue", None)
    stranded["spec"]["autoscaling"].update(minReplicas=1, targets={"busyWorkersPercent": 80})
    pools.append(stranded)
    # and a single pod with nothing but a command: no HPA, no PDB (deleted if any)
    single = copy.deepcopy(pools[0])
    single["metadata"]["name"] = "single"
    single["spec"] = {k: v for k, v in single["spec"].items() if k in ("image", "command")}
    pools.append(single)
    return pools


def api_permissions(monkeypatch) -> set[tuple[str, str, str]]:
    from podsup_operator import apply, handlers
    from podsup_operator.reconcile import reconcile

    public = {m for m in vars(apply.ClusterApi) if not m.startswith("_")}
    assert public <= set(VERBS), f"ClusterApi grew methods the RBAC test does not know: {public - set(VERBS)}"
    calls = set()
    for pool in example_pools():
        api = RecordingApi(pool)
        reconcile(pool, api, "registry.example.com/podsup-operator:test")
        # A Deployment event: the handler looks its owner up (get_pool).
        monkeypatch.setattr(handlers, "cluster_api", lambda api=api: api)
        deployment = api._live("apps/v1", "Deployment", pool["metadata"]["namespace"], pool["metadata"]["name"])
        deployment["metadata"]["ownerReferences"][0]["kind"] = names.KIND
        handlers.deployment_event(event={"type": "MODIFIED"}, body=deployment, logger=logging.getLogger("t"))
        # The periodic resync lists the pools in scope (and reconciles each,
        # which the reconcile call above already covers).
        resynced = []
        monkeypatch.setattr(handlers, "run_reconcile", lambda pool, trigger, logger: resynced.append(pool))
        assert handlers.resync_all(logging.getLogger("t")) == 0 and len(resynced) == 1
        calls |= api.calls
    perms = set()
    for method, api_version, kind, sub in calls:
        group, resource = plural(api_version, kind)
        for verb in VERBS[method]:
            perms.add((group, f"{resource}/{sub}" if sub else resource, verb))
    return perms


def kopf_permissions() -> tuple[set[tuple[str, str, str]], set[tuple[str, str, str]]]:
    """(namespaced, cluster-scoped) permissions kopf needs for our handlers."""
    import podsup_operator.handlers  # noqa: F401 - registers the handlers
    from podsup_operator import config

    registry = kopf.get_default_registry()
    perms = set()
    for attr, patches in (("_changing", True), ("_spawning", True), ("_watching", False), ("_indexing", False)):
        for handler in getattr(registry, attr).get_all_handlers():
            sel = handler.selector
            resource = sel.plural or sel.any_name
            perms |= {(sel.group or "", resource, "list"), (sel.group or "", resource, "watch")}
            if patches:
                perms.add((sel.group or "", resource, "patch"))
    settings = kopf.OperatorSettings()
    config.configure_settings(settings)
    if settings.posting.enabled:
        perms.add(("", "events", "create"))
    cluster = set()
    if not settings.scanning.disabled:
        cluster = {(*CRD_RULE, "list"), (*CRD_RULE, "watch")}
    return perms, cluster


def expand(rules) -> set[tuple[str, str, str]]:
    return {(g, r, v) for rule in rules for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}


@pytest.fixture(scope="module")
def needed():
    mp = pytest.MonkeyPatch()
    try:
        namespaced, cluster = kopf_permissions()
        namespaced |= api_permissions(mp)
    finally:
        mp.undo()
    return namespaced, cluster


def test_operator_needs_what_it_does(needed):
    """Sanity of the derivation: the obvious ones are found."""
    namespaced, cluster = needed
    assert (names.API_GROUP, names.PLURAL, "watch") in namespaced
    assert ("apps", "deployments", "create") in namespaced
    assert (names.API_GROUP, f"{names.PLURAL}/status", "patch") in namespaced
    assert POLLER_GRANTED <= namespaced  # the reconcile's rescue of a Deployment stranded at 0


def test_cluster_role_grants_exactly_what_the_operator_uses(needed):
    namespaced, cluster = needed
    (role,) = find(render(), "ClusterRole")
    granted = expand(role["rules"])
    assert granted - (namespaced | cluster) == set(), "granted but never used (least privilege)"
    assert (namespaced | cluster) - granted - POLLER_GRANTED == set(), "used but not granted"


def test_namespaced_roles_grant_exactly_the_namespaced_part(needed):
    namespaced, cluster = needed
    objects = render({"operator": {"watchNamespaces": ["team-a"]}})
    (role,) = [r for r in find(objects, "Role") if not r["metadata"]["name"].endswith("-leader-election")]
    assert expand(role["rules"]) == namespaced - POLLER_GRANTED
    (crd_role,) = find(objects, "ClusterRole")
    assert expand(crd_role["rules"]) == cluster
