"""RBAC from the code, part two: every typed Kubernetes client call in the
operator package (the metrics API, the queue pollers, scale to zero, Events)
is granted to the operator's ServiceAccount by the chart, and every rule of
the metrics API's role is one such call — no less, no more.

The calls are found by reading the source (ast): each call of a method of a
kubernetes.client *Api class; the resource and verb of a method come from the
client's own generated code (its HTTP method and resource path), not from a
list written here. Raw ``call_api`` is allowed only in apply.ClusterApi,
whose calls test_rbac_operator.py derives by running the reconcile. And the
WorkerPool's aggregated user roles are checked here too.
"""
from __future__ import annotations

import ast
import inspect
import pathlib
import re

import pytest

from podsup import names
from tests.chart.conftest import render

ROOT = pathlib.Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "operator" / "podsup_operator"
HTTP_VERBS = {"POST": "create", "PATCH": "patch", "PUT": "update"}
#: Kubernetes' built-in roles the chart binds (their rules are upstream's
#: bootstrap policy, plugin/pkg/auth/authorizer/rbac/bootstrappolicy).
BUILTIN = {
    "system:auth-delegator": {("authentication.k8s.io", "tokenreviews", "create"),
                              ("authorization.k8s.io", "subjectaccessreviews", "create")},
    "extension-apiserver-authentication-reader": {("", "configmaps", "get")},
}


def api_classes() -> list[type]:
    """Every generated *Api class of the client (kubernetes.client.api.*)."""
    import importlib
    import pkgutil

    import kubernetes.client.api as package

    classes = []
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        classes += [c for n, c in vars(module).items() if n.endswith("Api") and inspect.isclass(c)
                    and c.__module__ == module.__name__]
    assert len(classes) > 50, "kubernetes.client's API classes not found"
    return classes


API_CLASSES = api_classes()

#: Modules that run with the *user's* credentials (``podsup-operator status``
#: reads a pool, lists its pods and scrapes them through the pod proxy), never
#: as the operator: their calls are documented for the user's role instead
#: of being granted to the operator's ServiceAccount.
USER_SIDE = {"operator/podsup_operator/pool_fetch.py"}
USER_SIDE_CALLS = {(names.API_GROUP, names.PLURAL, "get"), ("", "pods", "list"), ("", "pods/proxy", "get")}


def client_method(name: str):
    for cls in API_CLASSES:
        if callable(getattr(cls, name, None)) and hasattr(cls, f"_{name}_serialize"):
            return cls, name
    return None


def method_permission(cls, name: str, args: list[ast.expr]) -> tuple[str, str, str]:
    """(apiGroup, resource[/subresource], verb) of one generated client method."""
    src = inspect.getsource(getattr(cls, f"_{name}_serialize"))
    http = re.search(r"method='(\w+)'", src).group(1)
    path = re.search(r"resource_path='([^']+)'", src).group(1)
    parts = path.strip("/").split("/")
    if parts[0] == "api":
        group, rest = "", parts[2:]
    else:
        group, rest = parts[1], parts[3:]
    if group == "{group}":  # CustomObjectsApi: group and plural are the call's arguments
        params = [p for p in inspect.signature(getattr(cls, name)).parameters if p != "self"]
        by_name = dict(zip(params, args))  # the cluster-wide list has no namespace: plural is third
        assert "group" in by_name and "plural" in by_name, \
            f"{name}: pass group and plural positionally, so the RBAC test can read them"
        group = resolve(by_name["group"])
        rest = [resolve(by_name["plural"]) if p == "{plural}" else p for p in rest]
    if rest[:1] == ["namespaces"] and len(rest) > 2:
        rest = rest[2:]
    resource, named, sub = rest[0], len(rest) > 1, rest[2:3]
    if http == "GET":
        verb = "get" if named else "list"
    elif http == "DELETE":
        verb = "delete" if named else "deletecollection"
    else:
        verb = HTTP_VERBS[http]
    return group, "/".join([resource, *sub]), verb


def resolve(node: ast.expr) -> str:
    """A string literal or a podsup.names constant."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "names":
        return getattr(names, node.attr)
    raise AssertionError(f"cannot resolve {ast.unparse(node)} to a string: name the group/plural by podsup.names")


def code_calls(user_side: bool = False) -> tuple[set[tuple[str, str, str]], list[str]]:
    """(permissions of the typed calls, where raw call_api is used). A client
    method counts whether called (``api.read_x(...)``) or handed to a call
    (``asyncio.to_thread(api.read_x, ...)``: its arguments follow it)."""
    perms, raw = set(), []
    for path in sorted(PACKAGE.rglob("*.py")):
        if (str(path.relative_to(ROOT)) in USER_SIDE) != user_side:
            continue
        tree = ast.parse(path.read_text(), str(path))
        args_of: dict[int, list[ast.expr]] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                args_of[id(node.func)] = node.args
                for i, arg in enumerate(node.args):
                    args_of.setdefault(id(arg), node.args[i + 1:])
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute):
                continue
            if node.attr == "call_api":
                raw.append(f"{path.relative_to(ROOT)}:{node.lineno}")
                continue
            found = client_method(node.attr)
            if found:
                perms.add(method_permission(*found, args_of.get(id(node), [])))
    return perms, raw


def expand(rules) -> set[tuple[str, str, str]]:
    return {(g, r, v) for rule in rules for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}


def granted_to_operator(objects: list[dict]) -> set[tuple[str, str, str]]:
    sa = next(o for o in objects if o["kind"] == "ServiceAccount")["metadata"]["name"]
    roles = {(o["kind"], o["metadata"]["name"]): o for o in objects if o["kind"] in {"Role", "ClusterRole"}}
    perms = set()
    for binding in (o for o in objects if o["kind"] in {"RoleBinding", "ClusterRoleBinding"}):
        if not any(s.get("name") == sa for s in binding["subjects"]):
            continue
        ref = binding["roleRef"]
        if ref["name"] in BUILTIN:
            perms |= BUILTIN[ref["name"]]
        else:
            perms |= expand(roles[(ref["kind"], ref["name"])]["rules"])
    return perms


@pytest.fixture(scope="module")
def calls():
    return code_calls()


def test_the_scan_finds_the_calls_we_know_of(calls):
    perms, _ = calls
    assert ("", "pods", "list") in perms                      # Pods metrics (through asyncio.to_thread)
    assert ("authentication.k8s.io", "tokenreviews", "create") in perms
    assert ("", "secrets", "get") in perms                    # queue.urlSecretRef
    assert ("apps", "deployments/scale", "patch") in perms    # scale to zero
    assert (names.API_GROUP, f"{names.PLURAL}/status", "patch") in perms


def test_the_status_command_calls_only_what_its_docs_ask_of_the_user():
    perms, raw = code_calls(user_side=True)
    assert perms == USER_SIDE_CALLS and not raw
    doc = (ROOT / "docs" / "scale-in-and-live-status.md").read_text()
    assert "`pods/proxy` `get`" in doc and "`workerpools` `get`" in doc and "`pods` `list`" in doc
    assert ("", "pods/proxy", "get") not in granted_to_operator(render())  # not the operator's


def test_raw_api_calls_only_in_cluster_api(calls):
    _, raw = calls
    assert raw and all(r.startswith("operator/podsup_operator/apply.py:") for r in raw), raw


@pytest.mark.parametrize("values", [{}, {"operator": {"watchNamespaces": ["podsup-system"]}}],
                         ids=["all namespaces", "own namespace watched"])
def test_every_client_call_is_granted(calls, values):
    perms, _ = calls
    assert perms - granted_to_operator(render(values)) == set(), "called by the code but not granted"


def test_the_metrics_api_role_grants_only_what_the_code_calls(calls):
    perms, _ = calls
    objects = render()
    (role,) = [o for o in objects if o["kind"] == "ClusterRole" and o["metadata"]["name"].endswith("-metrics-api")]
    assert expand(role["rules"]) - perms == set(), "granted but never called (least privilege)"


# --- the users' roles ---------------------------------------------------------

AGG = "rbac.authorization.k8s.io/aggregate-to-"


def user_roles(values=None) -> dict[str, dict]:
    return {o["metadata"]["name"].rsplit("-", 1)[-1]: o for o in render(values)
            if o["kind"] == "ClusterRole" and any(k.startswith(AGG) for k in o["metadata"]["labels"])}


def test_workerpools_aggregate_into_view_edit_and_admin():
    roles = user_roles()
    assert set(roles) == {"view", "edit"}
    view, edit = roles["view"], roles["edit"]
    assert {k[len(AGG):] for k in view["metadata"]["labels"] if k.startswith(AGG)} == {"view", "edit", "admin"}
    assert {k[len(AGG):] for k in edit["metadata"]["labels"] if k.startswith(AGG)} == {"edit", "admin"}
    group = names.API_GROUP
    assert expand(view["rules"]) == {(group, r, v) for r in (names.PLURAL, f"{names.PLURAL}/status",
                                                             f"{names.PLURAL}/scale")
                                     for v in ("get", "list", "watch")}
    edits = expand(edit["rules"])
    assert {(group, names.PLURAL, v) for v in ("create", "update", "patch", "delete")} <= edits
    assert (group, f"{names.PLURAL}/scale", "patch") in edits          # kubectl scale wp
    assert not any(r == f"{names.PLURAL}/status" for _, r, _ in edits)  # status is the operator's
    assert {g for g, _, _ in edits} == {group}
    # bound to nobody by the chart
    bound = {o["roleRef"]["name"] for o in render() if o["kind"].endswith("Binding")}
    assert not bound & {r["metadata"]["name"] for r in roles.values()}


def test_aggregated_roles_can_be_left_out():
    assert user_roles({"rbac": {"aggregateClusterRoles": False}}) == {}
    assert user_roles({"rbac": {"create": False}}) == {}
