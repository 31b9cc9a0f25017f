"""The chart's metrics API registration (metrics-api-*.yaml), rendered by
Helm's own code: APIServices whose caBundle signed the serving certificate
whose SANs name the Service the APIServices point at; the operator started
with that certificate; the auth-delegator and authentication-reader bindings;
the pollers' RBAC; and the off switch."""
from __future__ import annotations


import kubernetes_validate
import pytest

from podsup import names
from podsup_operator import cli
from podsup_operator.metrics_api import handlers
from tests.chart.conftest import render

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def mine(objects, kind=None):
    return [o for o in objects if o["__template__"].rsplit("/", 1)[-1].startswith("metrics-api-")
            and (kind is None or o["kind"] == kind)]


def operator_container(objects):
    (dep,) = [o for o in objects if o["kind"] == "Deployment"]
    return dep["spec"]["template"]["spec"], dep["spec"]["template"]["spec"]["containers"][0]


@pytest.fixture(scope="module")
def default_objects():
    return render(release="rel")


def test_objects_are_valid_kubernetes(default_objects):
    for obj in mine(default_objects):
        clean = {k: v for k, v in obj.items() if k != "__template__"}
        kubernetes_validate.validate(clean, kubernetes_validate.latest_version(), strict=True)


def test_nothing_is_generated_at_render_time(default_objects):
    """Default: the operator keeps the certificate (--tls-secret) and sets the
    caBundle; the chart renders no Secret and no caBundle, so two renders
    are the same (no perpetual GitOps diff)."""
    assert not mine(default_objects, "Secret")
    assert all("caBundle" not in a["spec"] for a in mine(default_objects, "APIService"))
    assert render(release="rel") == render(release="rel")


def test_apiservices_point_at_the_service_the_operator_certifies(default_objects):
    (service,) = mine(default_objects, "Service")
    apiservices = {a["metadata"]["name"]: a for a in mine(default_objects, "APIService")}
    assert set(apiservices) == {"v1beta1.external.metrics.k8s.io", "v1beta2.custom.metrics.k8s.io"}
    ns = service["metadata"]["namespace"]
    for api in apiservices.values():
        assert api["spec"]["service"] == {"name": service["metadata"]["name"], "namespace": ns,
                                          "port": service["spec"]["ports"][0]["port"]}
        assert "insecureSkipTLSVerify" not in api["spec"]
    assert apiservices["v1beta1.external.metrics.k8s.io"]["spec"]["group"] == "external.metrics.k8s.io"
    assert apiservices["v1beta2.custom.metrics.k8s.io"]["spec"]["version"] == "v1beta2"
    pod, container = operator_container(default_objects)
    args = cli.build_parser().parse_args(container["args"])
    assert args.tls_secret == f"{service['metadata']['name']}-tls" and not args.tls_cert_file
    assert sorted(args.apiservice) == sorted(apiservices)  # the caBundle it sets
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env[handlers.ENV_SERVICE] == service["metadata"]["name"]  # the certificate's names
    assert "metrics-api-tls" not in {v["name"] for v in pod["volumes"]}


def test_the_operator_serves_on_the_port_the_service_targets(default_objects):
    _, container = operator_container(default_objects)
    (service,) = mine(default_objects, "Service")
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports[service["spec"]["ports"][0]["targetPort"]] == names.METRICS_API_POD_PORT
    (dep,) = [o for o in default_objects if o["kind"] == "Deployment"]
    assert service["spec"]["selector"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    args = cli.build_parser().parse_args(container["args"])
    assert args.metrics_api and args.metrics_api_port == names.METRICS_API_POD_PORT
    # the Service routes to the pod only once the HTTPS listener is up
    probe = container["readinessProbe"]["httpGet"]  # ready only while its metrics API answers HTTPS
    assert probe["port"] == service["spec"]["ports"][0]["targetPort"] and probe["scheme"] == "HTTPS"
    assert probe["path"] == "/readyz"


@pytest.mark.parametrize("issuer", [{}, {"name": "corp-ca", "kind": "ClusterIssuer"}], ids=["own CA", "issuerRef"])
def test_cert_manager_issues_the_certificate_and_injects_the_ca(issuer):
    objects = render({"metricsApi": {"certManager": {"enabled": True, "issuerRef": issuer}}}, release="rel")
    (service,) = mine(objects, "Service")
    certificates = {c["metadata"]["name"]: c for c in mine(objects, "Certificate")}
    serving = certificates[f"{service['metadata']['name']}-tls"]
    ns = service["metadata"]["namespace"]
    assert f"{service['metadata']['name']}.{ns}.svc" in serving["spec"]["dnsNames"]
    if issuer:
        assert serving["spec"]["issuerRef"]["name"] == "corp-ca" and len(certificates) == 1
        assert not mine(objects, "Issuer")
    else:
        issuers = {i["metadata"]["name"]: i for i in mine(objects, "Issuer")}
        ca_issuer = issuers[serving["spec"]["issuerRef"]["name"]]
        ca_cert = certificates[[n for n in certificates if n.endswith("-ca")][0]]
        assert ca_issuer["spec"]["ca"]["secretName"] == ca_cert["spec"]["secretName"] and ca_cert["spec"]["isCA"]
    for api in mine(objects, "APIService"):
        assert api["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == \
            f"{ns}/{serving['metadata']['name']}"
        assert "caBundle" not in api["spec"]
    pod, container = operator_container(objects)
    args = cli.build_parser().parse_args(container["args"])
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    (volume,) = [v["name"] for v in pod["volumes"] if v.get("secret", {}).get("secretName") == serving["spec"]["secretName"]]
    assert args.tls_cert_file == f"{mounts[volume]}/tls.crt" and not args.tls_secret
    assert not mine(objects, "Role") or all(not r["metadata"]["name"].endswith("-certificate")
                                            for r in mine(objects, "Role"))


def test_delegated_auth_bindings_name_the_operator_serviceaccount(default_objects):
    sa = next(o for o in default_objects if o["kind"] == "ServiceAccount")["metadata"]
    bindings = {(b["kind"], b["roleRef"]["name"]): b for b in mine(default_objects)
                if b["kind"] in ("ClusterRoleBinding", "RoleBinding")}
    delegator = bindings[("ClusterRoleBinding", "system:auth-delegator")]
    reader = bindings[("RoleBinding", "extension-apiserver-authentication-reader")]
    assert reader["metadata"]["namespace"] == "kube-system" and reader["roleRef"]["kind"] == "Role"
    for b in (delegator, reader):
        assert b["subjects"] == [{"kind": "ServiceAccount", "name": sa["name"], "namespace": sa["namespace"]}]


POLLER_RULES = {("", "pods", "list"), ("", "pods", "patch"), ("", "secrets", "get"), ("apps", "deployments/scale", "get"),
                ("apps", "deployments/scale", "patch")}


def expand(rules):
    return {(g, r, v) for rule in rules for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}


def pollers_role(role) -> bool:
    return not role["metadata"]["name"].endswith(("-events", "-certificate", "-apiservices"))


def test_pollers_get_exactly_their_calls_cluster_wide_or_per_namespace(default_objects):
    (role,) = [r for r in mine(default_objects, "ClusterRole") if pollers_role(r)]
    assert expand(role["rules"]) == POLLER_RULES
    objects = render({"operator": {"watchNamespaces": ["a", "b"]}})
    roles = [r for r in mine(objects, "Role") if pollers_role(r)]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["a", "b"]
    assert all(expand(r["rules"]) == POLLER_RULES for r in roles)
    assert not [r for r in mine(objects, "ClusterRole") if pollers_role(r)]


def test_poller_rules_match_the_calls_the_code_makes():
    """kube.Kube's namespaced calls outside the delegated-auth ones map to POLLER_RULES."""
    from podsup_operator.metrics_api import kube
    calls = {"list_pods": ("", "pods", "list"), "secret_value": ("", "secrets", "get"),
             "deployment_replicas": ("apps", "deployments/scale", "get"),
             "scale_deployment": ("apps", "deployments/scale", "patch"), "patch_pod": ("", "pods", "patch")}
    delegated = {"review_token", "review_access", "request_header_config", "patch_pool_status",
                 "post_event"}  # Events: the operator's roles (events create), and on its own Pod the -events Role
    certificate = {"read_secret_data", "write_secret_data", "set_apiservice_ca_bundle"}  # -certificate, -apiservices
    public = {m for m in vars(kube.Kube) if not m.startswith("_")}
    assert public == set(calls) | delegated | certificate, "Kube grew a call: add its RBAC to the chart and here"
    assert set(calls.values()) == POLLER_RULES


def test_off_switch_leaves_only_the_pollers_rbac():
    objects = render({"metricsApi": {"enabled": False}})
    assert {o["kind"] for o in mine(objects)} == {"ClusterRole", "ClusterRoleBinding"}
    _, container = operator_container(objects)
    assert "--no-metrics-api" in container["args"]
    assert not cli.build_parser().parse_args(container["args"]).metrics_api
    assert "metrics-api" not in {p["name"] for p in container["ports"]}
    assert "readinessProbe" not in container


def test_one_group_version_can_be_left_to_another_server():
    objects = render({"metricsApi": {"registerExternal": False}})
    assert [a["metadata"]["name"] for a in mine(objects, "APIService")] == ["v1beta2.custom.metrics.k8s.io"]


def test_existing_certificate_secret_with_its_ca():
    objects = render({"metricsApi": {"certificate": {"existingSecret": "my-tls", "caBundle": "Q0E="}}})
    assert not mine(objects, "Secret")
    assert {a["spec"]["caBundle"] for a in mine(objects, "APIService")} == {"Q0E="}
    pod, _ = operator_container(objects)
    assert any(v.get("secret", {}).get("secretName") == "my-tls" for v in pod["volumes"])


def test_existing_certificate_without_ca_is_refused_with_a_message():
    with pytest.raises(AssertionError, match="caBundle is required"):
        render({"metricsApi": {"certificate": {"existingSecret": "my-tls"}}})


def test_the_operator_knows_its_own_pod_for_events(default_objects):
    """A metrics API that cannot start is an Event on the operator's Pod: the
    chart gives the operator its Pod's name, namespace and uid (config.own_pod)."""
    from podsup_operator import config

    _, container = operator_container(default_objects)
    env = {e["name"]: e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") for e in container["env"]}
    assert env[config.ENV_POD_NAME] == "metadata.name"
    assert env[config.ENV_POD_NAMESPACE] == "metadata.namespace"
    assert env[config.ENV_POD_UID] == "metadata.uid"


@pytest.mark.parametrize("watched,needs_role", [([], False), (["team-a"], True), (["team-a", "podsup-system"], False)])
def test_events_on_the_operator_pod_are_allowed_in_its_namespace(watched, needs_role):
    """All namespaces: the operator's ClusterRole allows Events everywhere;
    some: a Role in the release namespace unless it is watched anyway."""
    objects = render({"operator": {"watchNamespaces": watched}}, release="rel")
    (dep,) = [o for o in objects if o["kind"] == "Deployment"]
    release_ns = dep["metadata"].get("namespace", "default")
    roles = [o for o in mine(objects, "Role") if o["metadata"]["name"].endswith("-events")]
    if not needs_role:
        assert roles == []
        return
    (role,) = roles
    assert role["metadata"]["namespace"] == release_ns
    assert role["rules"] == [{"apiGroups": [""], "resources": ["events"], "verbs": ["create"]}]
    (binding,) = [o for o in mine(objects, "RoleBinding") if o["metadata"]["name"] == role["metadata"]["name"]]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"][0]["name"] == dep["spec"]["template"]["spec"]["serviceAccountName"]


def test_the_managed_certificate_reaches_only_its_secret_and_the_charts_apiservices(default_objects):
    (service,) = mine(default_objects, "Service")
    secret = f"{service['metadata']['name']}-tls"
    (role,) = [r for r in mine(default_objects, "Role") if r["metadata"]["name"].endswith("-certificate")]
    assert role["metadata"]["namespace"] == service["metadata"]["namespace"]
    named = [r for r in role["rules"] if r.get("resourceNames")]
    assert named == [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": [secret], "verbs": ["get", "update"]}]
    assert [r for r in role["rules"] if not r.get("resourceNames")] == [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]}]  # create cannot name its object
    (cluster,) = [r for r in mine(default_objects, "ClusterRole") if r["metadata"]["name"].endswith("-apiservices")]
    (rule,) = cluster["rules"]
    assert sorted(rule["resourceNames"]) == sorted(a["metadata"]["name"] for a in mine(default_objects, "APIService"))
    assert rule["verbs"] == ["get", "patch"]
    for values in ({"metricsApi": {"certManager": {"enabled": True}}},
                   {"metricsApi": {"certificate": {"existingSecret": "my-tls", "caBundle": "Q0E="}}}):
        objects = render(values)
        assert not [r for r in mine(objects) if r["metadata"]["name"].endswith(("-certificate", "-apiservices"))]
