"""What the chart renders (Helm's own render, offline): valid Kubernetes
objects, the operator Deployment's hardening, RBAC scope, monitoring wiring,
and names that must agree with podsup.names."""
from __future__ import annotations

import re

import kubernetes_validate
import pytest
import yaml

from podsup import names
from tests.chart.conftest import CHART, SCENARIOS, find, one, operator_part, render, render_notes, scenario_values

# Kinds from CRDs kubernetes-validate has no schema for (prometheus-operator).
THIRD_PARTY = {"monitoring.coreos.com/v1", "cert-manager.io/v1"}
KUBE_VERSIONS = ["1.25.0", kubernetes_validate.latest_version()]


def scenarios():
    return [pytest.param({}, id="default")] + [
        pytest.param(scenario_values(p), id=p.name) for p in SCENARIOS]


def kinds(objects):
    return sorted(f"{o['kind']}/{o['metadata']['name']}" for o in objects)


@pytest.mark.parametrize("values", scenarios())
def test_rendered_objects_are_valid_kubernetes(values):
    objects = render(values)
    assert objects
    checked = 0
    for obj in objects:
        template = obj.pop("__template__")
        if obj["apiVersion"] in THIRD_PARTY:
            assert obj["kind"] in {"ServiceMonitor", "PodMonitor", "PrometheusRule", "Issuer", "Certificate"}, template
            continue
        for version in KUBE_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{template} {obj['kind']}/{obj['metadata']['name']} invalid for "
                            f"Kubernetes {version}: {exc.message} at {list(exc.path)}")
        checked += 1 if obj["kind"] == "Deployment" else 0
    assert checked == 1  # the operator Deployment is always there and validated


def test_templates_are_named_component_kind():
    for path in (CHART / "templates").iterdir():
        if path.name in {"_helpers.tpl", "NOTES.txt"}:
            continue
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*-[a-z]+\.yaml", path.name), path.name


def test_helpers_are_chart_prefixed():
    text = (CHART / "templates" / "_helpers.tpl").read_text()
    defined = re.findall(r'{{-?\s*define\s+"([^"]+)"', text)
    assert defined and all(d.startswith("podsup-operator.") for d in defined), defined


# --- the operator Deployment ------------------------------------------------

def test_operator_deployment_is_two_rolling_replicas_and_hardened(default_objects):
    """Two replicas rolled without ever being one fewer (the metrics API keeps
    a backend through an upgrade), with leader election (tests/chart/test_operator_ha.py)."""
    dep = one(default_objects, "Deployment")
    spec = dep["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    (container,) = pod["containers"]
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert container["resources"]["requests"] and container["resources"]["limits"]
    # readiness only gates the metrics API Service (tests/metrics_api/test_chart.py)
    assert set(container["readinessProbe"]) == {"httpGet", "periodSeconds", "failureThreshold"}


def test_operator_ports_and_liveness_probe_match_names(default_objects):
    container = one(default_objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"healthz": names.OPERATOR_HEALTH_PORT, "metrics": names.OPERATOR_METRICS_PORT,
                     "metrics-api": names.METRICS_API_POD_PORT}  # metricsApi.enabled (default)
    probe = container["livenessProbe"]["httpGet"]
    assert probe["path"] == names.HEALTHZ_PATH
    assert ports[probe["port"]] == names.OPERATOR_HEALTH_PORT
    service = one(default_objects, "Service")
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"


def test_operator_args_default_all_namespaces_text_logs_and_own_image(default_objects):
    container = one(default_objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    args = container["args"]
    assert args[0] == "run"
    assert "--all-namespaces" in args and not any(a.startswith("--namespace") for a in args)
    assert "--log-format=text" in args
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    image = f"ghcr.io/podsup/podsup-operator:{chart['appVersion']}"
    assert container["image"] == image
    assert f"--operator-image={image}" in args


def test_options_watch_namespaces_log_format_image_digest_pull_secrets_labels():
    digest = "sha256:" + "ab" * 32
    objects = render({
        "operator": {"watchNamespaces": ["team-a", "team-b"], "logFormat": "json"},
        "image": {"repository": "registry.example.com/podsup", "digest": digest},
        "imagePullSecrets": [{"name": "regcred"}],
        "commonLabels": {"team": "platform"},
    })
    pod = one(objects, "Deployment")["spec"]["template"]
    args = pod["spec"]["containers"][0]["args"]
    assert ["--namespace=team-a", "--namespace=team-b"] == [a for a in args if a.startswith("--namespace")]
    assert "--all-namespaces" not in args and "--log-format=json" in args
    assert pod["spec"]["containers"][0]["image"] == f"registry.example.com/podsup@{digest}"
    assert f"--operator-image=registry.example.com/podsup@{digest}" in args
    assert pod["spec"]["imagePullSecrets"] == [{"name": "regcred"}]
    assert pod["metadata"]["labels"]["team"] == "platform"
    assert all(o["metadata"]["labels"]["team"] == "platform" for o in objects)


# --- RBAC scope -------------------------------------------------------------

def without_lease(objects):
    """The leader election's Role/RoleBinding (release namespace; tests/chart/test_operator_ha.py) left out."""
    return [o for o in objects if not o["metadata"]["name"].endswith("-leader-election")]


def test_all_namespaces_uses_cluster_role_and_no_role(default_objects):
    assert not without_lease(find(default_objects, "Role")) and not without_lease(find(default_objects, "RoleBinding"))
    (role,) = find(default_objects, "ClusterRole")
    binding = one(default_objects, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    sa = one(default_objects, "ServiceAccount")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa["metadata"]["name"],
                                    "namespace": "podsup-system"}]
    resources = {r for rule in role["rules"] for r in rule["resources"]}
    assert "workerpools" in resources


@pytest.mark.parametrize("crd_discovery", [True, False])
def test_watched_namespaces_get_namespaced_roles_only(crd_discovery):
    objects = render({"operator": {"watchNamespaces": ["team-a", "team-b"]},
                      "rbac": {"crdDiscovery": crd_discovery}})
    roles = without_lease(find(objects, "Role"))
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    bindings = without_lease(find(objects, "RoleBinding"))
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    cluster_roles = find(objects, "ClusterRole")
    if not crd_discovery:
        assert cluster_roles == [] and find(objects, "ClusterRoleBinding") == []
    else:
        (cr,) = cluster_roles
        # cluster-wide: nothing but reading CRDs
        assert cr["rules"] == [{"apiGroups": ["apiextensions.k8s.io"],
                                "resources": ["customresourcedefinitions"],
                                "verbs": ["list", "watch"]}]
    default_rules = find(render(), "ClusterRole")[0]["rules"]
    assert roles[0]["rules"] == [r for r in default_rules if r["apiGroups"] != ["apiextensions.k8s.io"]]


def test_rbac_never_grants_wildcards_or_secrets(default_objects):
    for role in find(default_objects, "ClusterRole"):
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] and "*" not in rule["resources"], rule
            assert "secrets" not in rule["resources"], rule
            assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"]), rule


def test_rbac_and_serviceaccount_can_be_left_to_the_user():
    objects = render({"rbac": {"create": False},
                      "serviceAccount": {"create": False, "name": "preprovisioned"}})
    assert not [o for o in objects if o["kind"] in {"Role", "RoleBinding", "ClusterRole",
                                                   "ClusterRoleBinding", "ServiceAccount"}]
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "preprovisioned"


# --- monitoring and autoscaling wiring ----------------------------------------

def test_optional_objects_are_off_by_default(default_objects):
    assert sorted({o["kind"] for o in default_objects if operator_part(o)}) == [
        "ClusterRole", "ClusterRoleBinding", "Deployment", "PodDisruptionBudget", "Role", "RoleBinding", "Service",
        "ServiceAccount"]  # the PDB and the Lease's Role: two replicas with leader election


def test_service_monitor_scrapes_the_operator_metrics_port():
    objects = render({"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}})
    sm = one(objects, "ServiceMonitor")
    assert sm["metadata"]["labels"]["release"] == "prom"
    assert sm["spec"]["endpoints"][0]["port"] == "metrics"
    assert sm["spec"]["selector"]["matchLabels"] == one(objects, "Service")["spec"]["selector"]


def test_worker_pod_monitor_relabels_the_pool_label_to_the_selector_label():
    objects = render({"workerPodMonitor": {"enabled": True}})
    pm = one(objects, "PodMonitor")
    assert pm["spec"]["selector"]["matchExpressions"] == [{"key": names.POOL_LABEL, "operator": "Exists"}]
    assert pm["spec"]["namespaceSelector"] == {"any": True}
    (endpoint,) = pm["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] == names.METRICS_PORT_NAME
    assert endpoint["path"] == names.METRICS_PATH
    # Prometheus' discovery label of a pod label: non-alphanumerics become "_".
    meta_label = "__meta_kubernetes_pod_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", names.POOL_LABEL)
    assert endpoint["relabelings"] == [{"sourceLabels": [meta_label],
                                        "targetLabel": names.EXTERNAL_SELECTOR_LABEL}]
    scoped = one(render({"workerPodMonitor": {"enabled": True},
                         "operator": {"watchNamespaces": ["team-a"]}}), "PodMonitor")
    assert scoped["spec"]["namespaceSelector"] == {"matchNames": ["team-a"]}


def adapter_config(values=None) -> dict:
    objects = render({"prometheusAdapter": {"rules": {"enabled": True, **(values or {})}}})
    cm = one(objects, "ConfigMap")
    return cm, yaml.safe_load(cm["data"]["config.yaml"])


def test_adapter_rules_serve_the_hpa_metric_names_with_the_right_kinds():
    _, config = adapter_config()
    pods = {r["name"]["as"]: r for r in config["rules"]}
    external = {r["name"]["as"]: r for r in config["externalRules"]}
    # Pods metrics: per-pod rates, resolved to pods.
    assert set(pods) == {names.METRIC_REQUESTS_PER_SECOND, names.METRIC_BUSY_RATIO, names.METRIC_POOL_SATURATION}
    for name, rule in pods.items():
        assert rule["seriesQuery"].startswith(name + "{")
        assert rule["resources"]["overrides"]["pod"] == {"resource": "pod"}
        assert re.fullmatch(rf"\^{name}\$", rule["name"]["matches"])
    # External: the queue backlog, per pool, never averaged or summed over pods.
    assert set(external) == {names.METRIC_QUEUE_DEPTH}
    queue = external[names.METRIC_QUEUE_DEPTH]
    assert "pod" not in queue["resources"]["overrides"]
    assert f'{names.EXTERNAL_SELECTOR_LABEL}!=""' in queue["seriesQuery"]
    assert queue["metricsQuery"].startswith("max(")
    assert queue["metricsQuery"].endswith(f"by ({names.EXTERNAL_SELECTOR_LABEL})")
    assert "<<.LabelMatchers>>" in queue["metricsQuery"]


def test_adapter_rules_configmap_namespace_and_name_options():
    cm, _ = adapter_config({"namespace": "monitoring", "name": "podsup-rules"})
    assert (cm["metadata"]["namespace"], cm["metadata"]["name"]) == ("monitoring", "podsup-rules")


def test_notes_tell_the_next_command_with_an_existing_example():
    notes = render_notes()
    assert "kubectl get wp" in notes
    applied = re.findall(r"kubectl apply .*-f (\S+)", notes)
    assert applied, notes
    for path in applied:
        assert (CHART.parents[1] / path).is_file(), f"NOTES.txt names {path}, which does not exist"
    scoped = render_notes({"operator": {"watchNamespaces": ["team-a"]}})
    assert "-n team-a" in scoped and "team-a" in scoped.splitlines()[1]


@pytest.mark.parametrize("values", scenarios())
def test_operator_cli_accepts_the_charts_arguments(values):
    """The Deployment's args parse with the operator's real argument parser."""
    from podsup_operator.cli import build_parser

    dep = one(render(values), "Deployment")
    args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
    parsed = build_parser().parse_args(args)
    namespaces = (values.get("operator") or {}).get("watchNamespaces") or []
    assert parsed.namespace == namespaces
    assert parsed.all_namespaces is (not namespaces)
    assert parsed.log_format == ((values.get("operator") or {}).get("logFormat") or "text")
    assert parsed.operator_image == dep["spec"]["template"]["spec"]["containers"][0]["image"]
    assert parsed.health_port == names.OPERATOR_HEALTH_PORT and parsed.metrics_port == names.OPERATOR_METRICS_PORT
