"""What the CRD accepts, the children's schemas accept.

A corpus of pools whose children the API server would reject: each must be
refused already by the CRD (offline: ``validate_workerpool`` and
``podsup-operator render``, with the field path the API server reports), and
every pool the CRD accepts (the examples, a pool using every field, a pool
with every core-type field at its edge) must render children valid against
the Kubernetes OpenAPI schemas of the oldest and newest versions we support.
"""
from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from podsup import names
from podsup_operator.builders import desired_children
from podsup_operator.cli import main
from podsup_operator.validation import RULES_NOT_CHECKED, InvalidWorkerPool, validate_workerpool

from .conftest import make_pool
from .test_crd import EXAMPLES, K8S_VERSIONS
from .test_render import FULL

QTY = "should match '^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$'"  # noqa: E501
VOL = {"pod": {"volumes": [{"name": "data", "emptyDir": {}}]}}

#: (id, spec, the error line the API server gives: "path: text" — matched as prefix + substring).
BAD = [
    ("env without name", {"env": [{"value": "x"}]}, "spec.env[0].name: Required value"),
    ("env name with a space", {"env": [{"name": "MY VAR", "value": "x"}]},
     'spec.env[0].name: Invalid value: "MY VAR": spec.env[0].name in body should match'),
    ("env name starting with a digit", {"env": [{"name": "1X"}]}, 'spec.env[0].name: Invalid value: "1X"'),
    ("env value and valueFrom", {"env": [{"name": "A", "value": "x", "valueFrom": {
        "fieldRef": {"fieldPath": "metadata.name"}}}]},
     'spec.env[0]: Invalid value: env[].valueFrom may not be set when env[].value is not empty'),
    ("env valueFrom empty", {"env": [{"name": "A", "valueFrom": {}}]},
     'spec.env[0].valueFrom: Invalid value: env[].valueFrom must set exactly one of fieldRef'),
    ("env valueFrom two sources", {"env": [{"name": "A", "valueFrom": {
        "fieldRef": {"fieldPath": "metadata.name"}, "secretKeyRef": {"name": "s", "key": "k"}}}]},
     'spec.env[0].valueFrom: Invalid value: env[].valueFrom must set exactly one of'),
    ("env fieldPath unsupported", {"env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "spec.x"}}}]},
     'spec.env[0].valueFrom.fieldRef.fieldPath: Invalid value: "spec.x"'),
    ("env secretKeyRef without key", {"env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s"}}}]},
     "spec.env[0].valueFrom.secretKeyRef.key: Required value"),
    ("env secret name not a DNS name", {"env": [{"name": "A", "valueFrom": {
        "secretKeyRef": {"name": "My_Secret", "key": "k"}}}]},
     'spec.env[0].valueFrom.secretKeyRef.name: Invalid value: "My_Secret"'),
    ("env resourceFieldRef bad resource", {"env": [{"name": "A", "valueFrom": {
        "resourceFieldRef": {"resource": "limits.gpu"}}}]},
     'spec.env[0].valueFrom.resourceFieldRef.resource: Invalid value: "limits.gpu"'),
    ("env unknown field", {"env": [{"name": "A", "valu": "x"}]}, 'unknown field "spec.env[0].valu"'),
    ("env not a list of objects", {"env": ["A=1"]},
     'spec.env[0]: Invalid value: "string": spec.env[0] in body must be of type object: "string"'),
    ("envFrom without source", {"envFrom": [{"prefix": "X_"}]},
     'spec.envFrom[0]: Invalid value: envFrom[] must set exactly one of configMapRef, secretRef'),
    ("envFrom bad prefix", {"envFrom": [{"prefix": "1-", "secretRef": {"name": "s"}}]},
     'spec.envFrom[0].prefix: Invalid value: "1-"'),
    ("envFrom ref without name", {"envFrom": [{"configMapRef": {}}]},
     "spec.envFrom[0].configMapRef.name: Required value"),
    ("cpu not a quantity", {"resources": {"requests": {"cpu": "lots"}}},
     f'spec.resources.requests.cpu: Invalid value: "lots": spec.resources.requests.cpu in body {QTY}'),
    ("memory limit with a bad unit", {"resources": {"limits": {"memory": "1GB"}}},
     'spec.resources.limits.memory: Invalid value: "1GB"'),
    ("negative memory request", {"resources": {"requests": {"memory": "-5"}}},
     'spec.resources.requests: Invalid value: resources.requests quantities must be greater than or '
     'equal to 0'),
    ("negative cpu limit as a number", {"resources": {"limits": {"cpu": -1}}},
     'spec.resources.limits: Invalid value: resources.limits quantities must be greater than or equal'),
    ("cpu request above its limit", {"resources": {"requests": {"cpu": "1500m"}, "limits": {"cpu": 1}}},
     "spec.resources: Invalid value: resources.requests must be less than or equal to resources.limits of the same "
     "resource"),
    ("memory request above its limit in other units", {"resources": {"requests": {"memory": "1.1Gi"},
                                                                     "limits": {"memory": "1024Mi"}}},
     "spec.resources: Invalid value: resources.requests must be less than or equal to resources.limits"),
    ("resource name unknown", {"resources": {"requests": {"cpus": "1"}}},
     "spec.resources.requests: Invalid value: resources.requests keys must be cpu, memory, ephemeral-storage"),
    ("extended resource without a domain prefix", {"resources": {"limits": {"/gpu": 1}}},
     "spec.resources.limits: Invalid value: resources.limits keys must be"),
    ("quantity of a wrong type", {"resources": {"requests": {"cpu": 0.5}}},
     "spec.resources.requests.cpu: Invalid value: \"number\": spec.resources.requests.cpu in body must be of type "
     "integer,string"),
    ("volumeMount without mountPath", {"volumeMounts": [{"name": "data"}], **VOL},
     "spec.volumeMounts[0].mountPath: Required value"),
    ("volumeMount of no volume", {"volumeMounts": [{"name": "nope", "mountPath": "/d"}], **VOL},
     'spec: Invalid value: volumeMounts[].name must name a volume of spec.pod.volumes'),
    ("volumeMount paths repeated", {"volumeMounts": [{"name": "data", "mountPath": "/d"},
                                                     {"name": "data", "mountPath": "/d"}], **VOL},
     'spec: Invalid value: volumeMounts[].mountPath must be unique'),
    ("volumeMount over the podsup binary", {"volumeMounts": [{"name": "data", "mountPath": names.SHARED_BIN_DIR}],
                                            **VOL},
     f'spec: Invalid value: volumeMounts[].mountPath {names.SHARED_BIN_DIR} is where'),
    ("volumeMount subPath escaping", {"volumeMounts": [{"name": "data", "mountPath": "/d", "subPath": "../x"}],
                                      **VOL},
     'spec.volumeMounts[0]: Invalid value: volumeMounts[].subPath must be a relative path'),
    ("volumeMount bad propagation", {"volumeMounts": [{"name": "data", "mountPath": "/d",
                                                       "mountPropagation": "Shared"}], **VOL},
     'spec.volumeMounts[0].mountPropagation: Unsupported value: "Shared"'),
    ("volume name not a DNS label", {"pod": {"volumes": [{"name": "Data", "emptyDir": {}}]}},
     'spec.pod.volumes[0].name: Invalid value: "Data"'),
    ("volume names repeated", {"pod": {"volumes": [{"name": "a", "emptyDir": {}}, {"name": "a", "emptyDir": {}}]}},
     'spec.pod.volumes[1]: Duplicate value: {"name":"a"}'),
    ("port name all digits", {"ports": [{"name": "8080", "containerPort": 8080}]},
     'spec.ports[0]: Invalid value: ports[].name must contain at least one letter'),
    ("port name with --", {"ports": [{"name": "a--b", "containerPort": 8080}]},
     'spec.ports[0]: Invalid value: ports[].name must contain at least one letter and no'),
    ("port 0", {"ports": [{"name": "http", "containerPort": 0}]},
     "spec.ports[0].containerPort: Invalid value: 0: spec.ports[0].containerPort in body should be greater than "
     "or equal to 1"),
    ("port 65536", {"ports": [{"name": "http", "containerPort": 65536}]},
     "spec.ports[0].containerPort: Invalid value: 65536"),
    ("service port on the metrics port", {"ports": [{"name": "http", "containerPort": 8080,
                                                     "servicePort": names.DEFAULT_HTTP_PORT}]},
     'spec: Invalid value: ports[].servicePort (default containerPort) must differ from '
     'supervisor.metricsPort'),
    ("service ports repeated", {"ports": [{"name": "a", "containerPort": 8080, "servicePort": 80},
                                          {"name": "b", "containerPort": 8081, "servicePort": 80}]},
     'spec: Invalid value: ports[].servicePort (default containerPort) must be unique per protocol'),
    ("image with a trailing space", {"image": "php:8 "}, 'spec.image: Invalid value: "php:8 "'),
    ("replicas beyond int32", {"replicas": 2**31}, "spec.replicas: Invalid value: 2147483648"),
    ("replicas negative (also the scale subresource's check)", {"replicas": -1},
     ".spec.replicas: Invalid value: -1: should be a non-negative integer"),
    ("replicas a string", {"replicas": "3"},
     ".spec.replicas: Invalid value: 0: .spec.replicas accessor error: 3 is of the type string, expected int64"),
    ("processes a fraction", {"processes": 1.5},
     "Checked value must be of type integer (default format) in spec.processes"),
    ("maxReplicas beyond int32", {"autoscaling": {"enabled": True, "maxReplicas": 2**31,
                                                  "targets": {"busyWorkersPercent": 50}}},
     "spec.autoscaling.maxReplicas: Invalid value: 2147483648"),
    ("pdb percent above 100", {"disruption": {"maxUnavailable": "150%"}},
     'spec.disruption.maxUnavailable: Invalid value: "150%"'),
    ("pdb negative", {"disruption": {"minAvailable": -1}}, "spec.disruption.minAvailable: Invalid value: -1"),
    ("pdb not a percent", {"disruption": {"minAvailable": "half"}},
     'spec.disruption.minAvailable: Invalid value: "half"'),
    ("toleration Exists with a value", {"pod": {"tolerations": [{"key": "k", "operator": "Exists", "value": "v"}]}},
     'spec.pod.tolerations[0]: Invalid value: pod.tolerations[].value must be empty when operator is '
     'Exists'),
    ("toleration without key nor Exists", {"pod": {"tolerations": [{"value": "v"}]}},
     'spec.pod.tolerations[0]: Invalid value: pod.tolerations[].operator must be Exists'),
    ("toleration seconds without NoExecute", {"pod": {"tolerations": [{"key": "k", "operator": "Exists",
                                                                       "tolerationSeconds": 5}]}},
     'spec.pod.tolerations[0]: Invalid value: pod.tolerations[].effect must be NoExecute'),
    ("toleration bad effect", {"pod": {"tolerations": [{"key": "k", "effect": "Never"}]}},
     'spec.pod.tolerations[0].effect: Unsupported value: "Never"'),
    ("toleration unknown field", {"pod": {"tolerations": [{"key": "k", "operater": "Exists"}]}},
     'unknown field "spec.pod.tolerations[0].operater"'),
    ("label key with a space", {"pod": {"labels": {"my team": "a"}}},
     "spec.pod.labels: Invalid value: pod.labels keys must be qualified names"),
    ("label key with two slashes", {"pod": {"labels": {"a/b/c": "a"}}},
     "spec.pod.labels: Invalid value: pod.labels keys must be qualified names"),
    ("nodeSelector key starting with a dash", {"pod": {"nodeSelector": {"-zone": "a"}}},
     "spec.pod.nodeSelector: Invalid value: pod.nodeSelector keys must be qualified names"),
    ("annotation key with a space", {"pod": {"annotations": {"my note": "a"}}},
     "spec.pod.annotations: Invalid value: pod.annotations keys must be qualified names"),
    ("label value too long", {"pod": {"labels": {"team": "x" * 64}}}, "spec.pod.labels.team: Too long"),
    ("label value with a space", {"pod": {"labels": {"team": "a b"}}},
     'spec.pod.labels.team: Invalid value: "a b"'),
    ("nodeSelector value not a label value", {"pod": {"nodeSelector": {"zone": "-a"}}},
     'spec.pod.nodeSelector.zone: Invalid value: "-a"'),
    ("serviceAccountName uppercase", {"pod": {"serviceAccountName": "Workers"}},
     'spec.pod.serviceAccountName: Invalid value: "Workers"'),
    ("priorityClassName with a space", {"pod": {"priorityClassName": "high prio"}},
     'spec.pod.priorityClassName: Invalid value: "high prio"'),
    ("queue secret key with a slash", {"queue": {"type": "redis", "name": "j",
                                                 "urlSecretRef": {"name": "s", "key": "a/b"}}},
     'spec.queue.urlSecretRef.key: Invalid value: "a/b"'),
    ("runAsUser negative", {"pod": {"securityContext": {"runAsUser": -1}}},
     "spec.pod.securityContext.runAsUser: Invalid value: -1"),
    ("seccomp Localhost without a profile", {"pod": {"securityContext": {"seccompProfile": {"type": "Localhost"}}}},
     "spec.pod.securityContext.seccompProfile: Invalid value: pod.securityContext.seccompProfile.localhostProfile "
     "must be set when type is Localhost"),
    ("seccomp profile of an unknown type", {"pod": {"securityContext": {"seccompProfile": {"type": "Strict"}}}},
     'spec.pod.securityContext.seccompProfile.type: Unsupported value: "Strict"'),
    ("sysctl without value", {"pod": {"securityContext": {"sysctls": [{"name": "net.core.somaxconn"}]}}},
     "spec.pod.securityContext.sysctls[0].value: Required value"),
    ("pod securityContext unknown field", {"pod": {"securityContext": {"runAsNonroot": True}}},
     'unknown field "spec.pod.securityContext.runAsNonroot"'),
    ("privileged with podsup's allowPrivilegeEscalation false", {"pod": {"containerSecurityContext": {
        "privileged": True}}},
     "spec.pod.containerSecurityContext: Invalid value: pod.containerSecurityContext.privileged needs "
     "allowPrivilegeEscalation: true"),
    ("SYS_ADMIN with podsup's allowPrivilegeEscalation false", {"pod": {"containerSecurityContext": {
        "capabilities": {"add": ["SYS_ADMIN"]}}}},
     "spec.pod.containerSecurityContext: Invalid value: pod.containerSecurityContext.capabilities.add SYS_ADMIN"),
    ("procMount of an unknown type", {"pod": {"containerSecurityContext": {"procMount": "Masked"}}},
     'spec.pod.containerSecurityContext.procMount: Unsupported value: "Masked"'),
    ("node affinity without terms", {"pod": {"affinity": {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}}}},
     "spec.pod.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms: Invalid "
     "value: 0"),
    ("node requirement In without values", {"pod": {"affinity": {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "zone", "operator": "In"}]}]}}}}},
     "spec.pod.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]."
     "matchExpressions[0]: Invalid value: matchExpressions[].values must be non-empty for In and NotIn"),
    ("label requirement Exists with values", {"pod": {"affinity": {"podAntiAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": "kubernetes.io/hostname",
                                                            "labelSelector": {"matchExpressions": [
                                                                {"key": "app", "operator": "Exists",
                                                                 "values": ["x"]}]}}]}}}},
     "spec.pod.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].labelSelector."
     "matchExpressions[0]: Invalid value: matchExpressions[].values must be non-empty for In and NotIn, empty for "
     "Exists"),
    ("pod affinity without topologyKey", {"pod": {"affinity": {"podAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": {"matchLabels": {"app": "x"}}}]}}}},
     "spec.pod.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey: Required value"),
    ("preferred affinity weight 0", {"pod": {"affinity": {"podAntiAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 0, "podAffinityTerm": {
            "topologyKey": "kubernetes.io/hostname"}}]}}}},
     "spec.pod.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: Invalid value: "
     "0"),
    ("affinity unknown field", {"pod": {"affinity": {"podAntiAffinity": {"anything": [1, 2]}}}},
     'unknown field "spec.pod.affinity.podAntiAffinity.anything"'),
    ("volume without a source", {"pod": {"volumes": [{"name": "data"}]}},
     "spec.pod.volumes[0]: Invalid value: pod.volumes[] must set exactly one volume source"),
    ("volume with two sources", {"pod": {"volumes": [{"name": "data", "emptyDir": {}, "configMap": {"name": "c"}}]}},
     "spec.pod.volumes[0]: Invalid value: pod.volumes[] must set exactly one volume source"),
    ("volume of an unknown source", {"pod": {"volumes": [{"name": "data", "configmap": {"name": "c"}}]}},
     'unknown field "spec.pod.volumes[0].configmap"'),
    ("configMap volume without name", {"pod": {"volumes": [{"name": "data", "configMap": {}}]}},
     "spec.pod.volumes[0].configMap.name: Required value"),
    ("secret volume item escaping", {"pod": {"volumes": [{"name": "data", "secret": {
        "secretName": "s", "items": [{"key": "k", "path": "../k"}]}}]}},
     "spec.pod.volumes[0].secret.items[0]: Invalid value: pod.volumes[].items[].path must be a relative path"),
    ("volume file mode beyond 0777", {"pod": {"volumes": [{"name": "data", "configMap": {
        "name": "c", "defaultMode": 1000}}]}},
     "spec.pod.volumes[0].configMap.defaultMode: Invalid value: 1000"),
    ("emptyDir of an unknown medium", {"pod": {"volumes": [{"name": "data", "emptyDir": {"medium": "Disk"}}]}},
     'spec.pod.volumes[0].emptyDir.medium: Invalid value: "Disk"'),
    ("emptyDir negative size", {"pod": {"volumes": [{"name": "data", "emptyDir": {"sizeLimit": "-1Gi"}}]}},
     'spec.pod.volumes[0].emptyDir.sizeLimit: Invalid value: "-1Gi": pod.volumes[].emptyDir.sizeLimit must be '
     'greater'),
    ("hpa behavior policy of an unknown type", {"autoscaling": {"enabled": True, "maxReplicas": 3,
                                                                "targets": {"busyWorkersPercent": 50}, "behavior": {
        "scaleUp": {"policies": [{"type": "Replicas", "value": 1, "periodSeconds": 60}]}}}},
     'spec.autoscaling.behavior.scaleUp.policies[0].type: Unsupported value: "Replicas"'),
    ("hpa behavior period too long", {"autoscaling": {"enabled": True, "maxReplicas": 3,
                                                      "targets": {"busyWorkersPercent": 50}, "behavior": {
        "scaleDown": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 3600}]}}}},
     "spec.autoscaling.behavior.scaleDown.policies[0].periodSeconds: Invalid value: 3600"),
    ("hpa behavior unknown field", {"autoscaling": {"enabled": True, "maxReplicas": 3,
                                                    "targets": {"busyWorkersPercent": 50}, "behavior": {
        "scaleUp": {"window": 5}}}}, 'unknown field "spec.autoscaling.behavior.scaleUp.window"'),
]


def _errors(spec: dict) -> list[str]:
    with pytest.raises(InvalidWorkerPool) as info:
        validate_workerpool(make_pool(spec, defaults=False, name="bad"))
    return info.value.errors


def _matches(errors: list[str], expected: str) -> bool:
    """The API server's line for the problem: same field path, same wording (a prefix)."""
    return any(e.startswith(expected) for e in errors)


@pytest.mark.parametrize("spec,expected", [(s, e) for _, s, e in BAD], ids=[i for i, _, _ in BAD])
def test_the_crd_refuses_what_the_api_server_would_refuse_in_a_child(spec, expected):
    errors = _errors(spec)
    assert _matches(errors, expected), errors


@pytest.mark.parametrize("spec,expected", [(s, e) for _, s, e in BAD[:20]], ids=[i for i, _, _ in BAD[:20]])
def test_render_refuses_them_with_the_same_field_path(spec, expected, tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(make_pool(spec, defaults=False, name="bad", uid=None)))
    code = main(["render", "-f", str(path), "--operator-image", "op:1"])
    out, err = capsys.readouterr()
    assert code != 0 and out == ""
    assert _matches(reported(err), expected), err


def reported(err: str) -> list[str]:
    """The problems in kubectl's layout: after 'is invalid: ' when one, '* ' lines when several."""
    first, *rest = err.splitlines()
    return ([first.split(" is invalid: ", 1)[1]] if " is invalid: " in first else []) + \
        [line[2:] for line in rest if line.startswith("* ")]


def test_an_integral_number_is_an_integer_as_the_api_server_decodes_it(tmp_path, capsys):
    path = tmp_path / "pool.yaml"
    path.write_text(yaml.safe_dump(make_pool({"processes": 2.0, "replicas": 3.0}, defaults=False, uid=None)))
    assert main(["render", "-f", str(path), "--operator-image", "op:1"]) == 0
    deployment = next(yaml.safe_load_all(capsys.readouterr()[0]))
    command = deployment["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[command.index("--workers") + 1] == "2" and deployment["spec"]["replicas"] == 3


def test_the_three_pools_of_issue_14_are_refused():
    """`render` exited 0 for these (and the CRD took them); the API server then refused the Deployment."""
    assert _errors({"env": [{"value": "x"}]}) == ["spec.env[0].name: Required value", RULES_NOT_CHECKED]
    assert _errors({"resources": {"requests": {"cpu": "lots"}}})[0].startswith(
        'spec.resources.requests.cpu: Invalid value: "lots"')
    assert _errors({"resources": {"requests": {"memory": "-5"}}}) == [
        'spec.resources.requests: Invalid value: resources.requests quantities must be greater than or '
        'equal to 0']


#: Every core-type field the CRD types, at an edge the core types accept.
EDGES = make_pool({
    "image": "registry.example.com:5000/team/app@sha256:" + "a" * 64,
    "env": [{"name": "_under.score-dash", "value": ""},
            {"name": "A", "value": "", "valueFrom": {"configMapKeyRef": {"name": "cm.v1", "key": "k.e_y-1",
                                                                        "optional": True}}},
            {"name": "L", "valueFrom": {"fieldRef": {"apiVersion": "v1",
                                                     "fieldPath": "metadata.labels['app.kubernetes.io/name']"}}},
            {"name": "IPS", "valueFrom": {"fieldRef": {"fieldPath": "status.podIPs"}}},
            {"name": "MEM", "valueFrom": {"resourceFieldRef": {"containerName": "worker",
                                                               "resource": "limits.memory", "divisor": "1Mi"}}},
            {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu", "divisor": 1}}}],
    "envFrom": [{"prefix": "CFG_", "configMapRef": {"name": "cfg"}}, {"secretRef": {"name": "s", "optional": False}}],
    "resources": {"requests": {"cpu": "+.5", "memory": "1e3", "ephemeral-storage": 0, "hugepages-2Mi": "2Mi",
                               "example.com/gpu": 1},
                  "limits": {"cpu": 2, "memory": "1.5Gi", "hugepages-2Mi": "2Mi", "example.com/gpu": "1"}},
    "volumeMounts": [{"name": "data", "mountPath": "/d", "readOnly": True, "recursiveReadOnly": "Disabled",
                      "subPath": "a/b", "mountPropagation": "None"},
                     {"name": "data", "mountPath": "/e", "subPathExpr": "$(POD)"}],
    "ports": [{"name": "h2c", "containerPort": 65535, "servicePort": 1, "protocol": "TCP"},
              {"name": "dns", "containerPort": 53, "protocol": "UDP"},
              {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"}],
    "replicas": 2**31 - 1,
    "disruption": {"maxUnavailable": "100%"},
    "pod": {"volumes": [{"name": "data", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
                        {"name": "cfg", "configMap": {"name": "cfg", "defaultMode": 0o440, "optional": True,
                                                      "items": [{"key": "a.yaml", "path": "conf/a.yaml",
                                                                 "mode": 0o400}]}},
                        {"name": "sec", "secret": {"secretName": "s"}},
                        {"name": "claim", "persistentVolumeClaim": {"claimName": "data", "readOnly": True}},
                        {"name": "host", "hostPath": {"path": "/var/log", "type": "Directory"}},
                        {"name": "proj", "projected": {"sources": [{"downwardAPI": {"items": [
                            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}}]}}],
            "securityContext": {"runAsUser": 1000, "runAsGroup": 0, "runAsNonRoot": True, "fsGroup": 2000,
                                "fsGroupChangePolicy": "OnRootMismatch", "supplementalGroups": [0, 2**31 - 1],
                                "sysctls": [{"name": "net.ipv4.ip_local_port_range", "value": "1024 65535"}],
                                "seLinuxOptions": {"level": "s0:c123,c456"},
                                "seccompProfile": {"type": "Localhost", "localhostProfile": "profiles/w.json"},
                                "appArmorProfile": {"type": "RuntimeDefault"}},
            "containerSecurityContext": {"privileged": True, "allowPrivilegeEscalation": True,
                                         "capabilities": {"add": ["NET_BIND_SERVICE", "SYS_ADMIN"], "drop": ["ALL"]},
                                         "readOnlyRootFilesystem": False, "procMount": "Default",
                                         "seccompProfile": {"type": "Unconfined"},
                                         "windowsOptions": {"hostProcess": False}},
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "In",
                                               "values": ["amd64", "arm64"]},
                                              {"key": "example.com/gen", "operator": "Gt", "values": ["3"]},
                                              {"key": "spot", "operator": "DoesNotExist"}]},
                        {"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["node-1"]}]}]},
                    "preferredDuringSchedulingIgnoredDuringExecution": [
                        {"weight": 100, "preference": {"matchExpressions": [
                            {"key": "zone", "operator": "NotIn", "values": ["a"]}]}}]},
                "podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 1, "podAffinityTerm": {"topologyKey": "topology.kubernetes.io/zone",
                                                      "labelSelector": {"matchLabels": {"app": "cache"}},
                                                      "namespaces": ["cache"]}}]},
                "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                    {"topologyKey": "kubernetes.io/hostname",
                     "labelSelector": {"matchExpressions": [{"key": "app", "operator": "Exists"}]},
                     "namespaceSelector": {}, "matchLabelKeys": ["pod-template-hash"]}]}},
            "tolerations": [{"operator": "Exists"}, {"key": "example.com/dedicated", "operator": "Equal",
                                                     "value": "workers", "effect": "NoExecute",
                                                     "tolerationSeconds": 30},
                            {"key": "k", "effect": ""}],
            "nodeSelector": {"kubernetes.io/os": "linux", "empty": ""},
            "labels": {"example.com/team": "a_b.c-d", "A.b_c": ""},
            "annotations": {"anything": "goes here: yes", "Example.COM/Note_1": "x"},
            "serviceAccountName": "sa.workers", "priorityClassName": "high-1"},
    "autoscaling": {"enabled": True, "minReplicas": 1, "maxReplicas": 2**31 - 1,
                    "targets": {"busyWorkersPercent": 100, "cpuPercent": 300},
                    "behavior": {"scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
                        {"type": "Percent", "value": 100, "periodSeconds": 1800}]},
                                 "scaleDown": {"selectPolicy": "Disabled"}}},
}, namespace="default", uid=None, defaults=False)


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("source", ["examples", "full", "edges"])
def test_every_accepted_pool_renders_children_valid_upstream(source, version):
    pools = {"examples": [d for p in EXAMPLES for d in yaml.safe_load_all(p.read_text()) if d],
             "full": [FULL], "edges": [EDGES]}[source]
    kinds = set()
    for pool in pools:
        defaulted = validate_workerpool(pool)
        for child in desired_children(defaulted, "op:1").values():
            if child is not None:
                kubernetes_validate.validate(child, version, strict=True)
                kinds.add(child["kind"])
    assert {"Deployment", "Service"} <= kinds


def test_the_corpus_names_every_typed_field():
    """A field typed in core_types.py without a refusal case here is untested."""
    text = Path(__file__).read_text()
    for field in ("env", "envFrom", "resources", "volumeMounts", "volumes", "ports", "tolerations", "labels",
                  "nodeSelector", "serviceAccountName", "priorityClassName", "urlSecretRef", "behavior",
                  "disruption", "image", "replicas", "maxReplicas"):
        assert f"spec.{field}" in text or f".{field}" in text, field
