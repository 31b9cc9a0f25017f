"""Schemas of the core Kubernetes types a WorkerPool hands to its children.

A field of the pool that lands in the Deployment, Service, HPA or PDB must be
refused by the API server when the pool is applied, not later when the
operator applies the child (a pool stuck with no Deployment). So the CRD
types those fields as the core types are typed, with the checks the core
validation does in Go written as patterns and CEL rules: env names and the
valueFrom shapes, quantities (the pattern of resource.Quantity's OpenAPI, and
no negative requests/limits), label keys and values, DNS names, toleration
and HPA policy rules. Fields are those of the oldest Kubernetes version we
support (1.30); a field added later is refused rather than dropped.

Pure data, checked by tests/unit/operator/test_core_types.py: every pool the
CRD accepts renders children valid against the Kubernetes 1.30 and 1.37
OpenAPI schemas, and each rule refuses what the API server refuses.
"""
from __future__ import annotations

from .schema import Schema, array, boolean, int_or_string, integer, obj, string

#: resource.Quantity's pattern in the Kubernetes OpenAPI (what controller-gen emits).
QUANTITY = (r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|"
            r"([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$")
#: RFC 1123 label (volume names, ...): IsDNS1123Label.
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
#: RFC 1123 subdomain (object names: Secrets, ConfigMaps, service accounts, priority classes).
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
#: An environment variable name as Kubernetes 1.30 accepts it (IsEnvVarName; the
#: relaxed any-printable rule is a later feature gate).
ENV_NAME = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"
#: A ConfigMap or Secret key (IsConfigMapKey).
CONFIG_KEY = r"^[-._a-zA-Z0-9]+$"
#: A label value (IsValidLabelValue), at most 63 characters.
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
#: A qualified name (label and annotation keys: IsQualifiedName): an optional
#: DNS-subdomain prefix and '/', then a name of at most 63 characters.
QUALIFIED_NAME = (r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                  r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
INT32_MAX = 2**31 - 1


def dns_name(desc: str) -> Schema:
    """An object name (DNS-1123 subdomain)."""
    return string(desc, minLength=1, maxLength=253, pattern=DNS_SUBDOMAIN)


def quantity(desc: str) -> Schema:
    """A resource.Quantity (int or string), as the core OpenAPI has it (plus a
    length bound, so CEL rules reading it stay cheap for the API server)."""
    return int_or_string(desc, pattern=QUANTITY, maxLength=64)


def resource_map(desc: str, field: str) -> Schema:
    """requests/limits: resource name → quantity, none negative (the core
    validation's "must be greater than or equal to 0")."""
    return {
        "description": desc,
        "type": "object",
        "additionalProperties": quantity("A quantity, e.g. 500m or 256Mi."),
        "maxProperties": 16,
        "x-kubernetes-validations": [
            {"rule": "self.all(k, !string(self[k]).startsWith('-'))",
             "message": f"resources.{field} quantities must be greater than or equal to 0"},
            {"rule": "self.all(k, size(k) <= 317 && (k in ['cpu', 'memory', 'ephemeral-storage'] || "
                     f"k.startsWith('hugepages-') || (k.contains('/') && k.matches('{_QUALIFIED_CEL}'))))",
             "message": f"resources.{field} keys must be cpu, memory, ephemeral-storage, hugepages-SIZE or an "
                        f"extended resource name with a domain (example.com/gpu)"}],
    }


#: requests ≤ limits of the same resource, with Kubernetes' CEL quantity library (1.29+).
REQUESTS_WITHIN_LIMITS = (
    "!has(self.requests) || !has(self.limits) || self.requests.all(k, !(k in self.limits) || "
    "!isQuantity(string(self.requests[k])) || !isQuantity(string(self.limits[k])) || "
    "!quantity(string(self.requests[k])).isGreaterThan(quantity(string(self.limits[k]))))",
    "resources.requests must be less than or equal to resources.limits of the same resource")


#: QUALIFIED_NAME as a CEL string literal (CEL has no \\. escape).
_QUALIFIED_CEL = QUALIFIED_NAME.replace("\\.", "[.]")


def _key_rule(field: str, any_case: bool = False) -> dict[str, str]:
    """Map keys must be qualified names (IsQualifiedName; annotations: of the
    lowercased key), a CEL rule: a structural schema cannot constrain keys. Its
    cost estimate was measured on a 1.36 API server: 32 copies still fit one
    rule's budget."""
    pattern = _QUALIFIED_CEL.replace("[a-z0-9]", "[A-Za-z0-9]").replace("[-a-z0-9]", "[-A-Za-z0-9]")         if any_case else _QUALIFIED_CEL
    return {"rule": f"self.all(k, size(k) <= 317 && k.matches('{pattern}'))",
            "message": f"{field} keys must be qualified names: an optional DNS subdomain prefix and '/', then "
                       f"at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"}


def label_map(desc: str, field: str | None = None) -> Schema:
    """labels, nodeSelector: values are label values (IsValidLabelValue);
    with ``field``, keys are checked too (pod labels and nodeSelector; not in
    label selectors nested in lists, whose estimated cost would multiply)."""
    node: Schema = {"description": desc, "type": "object", "maxProperties": 64,
                    "additionalProperties": {"type": "string", "maxLength": 63, "pattern": LABEL_VALUE}}
    if field:
        node["x-kubernetes-validations"] = [_key_rule(field)]
    return node


def annotation_map(desc: str, field: str) -> Schema:
    """Annotations: any values, keys qualified names in any case
    (IsQualifiedName of the lowercased key)."""
    return {"description": desc, "type": "object", "maxProperties": 128, "additionalProperties": {"type": "string"},
            "x-kubernetes-validations": [_key_rule(field, any_case=True)]}


def _one_of(fields: list[str], what: str) -> tuple[str, str]:
    count = " + ".join(f"(has(self.{f}) ? 1 : 0)" for f in fields)
    return f"{count} == 1", f"{what} must set exactly one of {', '.join(fields)}"


def _key_selector(kind: str) -> Schema:
    return obj(f"A key of a {kind} (core/v1 {kind}KeySelector).", {
        "name": dns_name(f"{kind} name."),
        "key": string("The key.", minLength=1, maxLength=253, pattern=CONFIG_KEY),
        "optional": boolean(f"Whether the {kind} or its key may be missing."),
    }, required=["name", "key"])


ENV_FIELD_PATH = (r"^(metadata\.(name|namespace|uid)|metadata\.(labels|annotations)\['[^']+'\]|"
                  r"spec\.(nodeName|serviceAccountName)|status\.(hostIP|hostIPs|podIP|podIPs))$")

ENV_VAR_SOURCE = obj(
    "Where the value comes from (core/v1 EnvVarSource); exactly one source.",
    {
        "fieldRef": obj("A field of the pod (core/v1 ObjectFieldSelector).", {
            "apiVersion": string("Version of the field path's schema.", enum=["v1"]),
            "fieldPath": string("metadata.name, metadata.namespace, metadata.uid, metadata.labels['KEY'], "
                                "metadata.annotations['KEY'], spec.nodeName, spec.serviceAccountName, "
                                "status.hostIP(s) or status.podIP(s).", pattern=ENV_FIELD_PATH),
        }, required=["fieldPath"]),
        "resourceFieldRef": obj("A resource of the container (core/v1 ResourceFieldSelector).", {
            "containerName": string("Container name (default: this one).", maxLength=63),
            "resource": string("limits.cpu, requests.memory, ...",
                               pattern=r"^(limits|requests)\.(cpu|memory|ephemeral-storage|hugepages-.+)$"),
            "divisor": quantity("Output unit (default 1)."),
        }, required=["resource"]),
        "configMapKeyRef": _key_selector("ConfigMap"),
        "secretKeyRef": _key_selector("Secret"),
    },
    rules=[_one_of(["fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef"], "env[].valueFrom")],
)

ENV_VAR = obj(
    "An environment variable (core/v1 EnvVar).",
    {
        "name": string("Variable name (letters, digits, '_', '-', '.'; not starting with a digit).",
                       minLength=1, maxLength=4096, pattern=ENV_NAME),
        "value": string("The value; $(VAR) references are expanded."),
        "valueFrom": ENV_VAR_SOURCE,
    },
    required=["name"],
    rules=[("!has(self.valueFrom) || !has(self.value) || size(self.value) == 0",
            "env[].valueFrom may not be set when env[].value is not empty")],
)


def _ref(kind: str) -> Schema:
    return obj(f"The {kind} (core/v1 {kind}EnvSource).", {
        "name": dns_name(f"{kind} name."),
        "optional": boolean(f"Whether the {kind} may be missing."),
    }, required=["name"])


ENV_FROM = obj(
    "Variables from every key of a ConfigMap or Secret (core/v1 EnvFromSource).",
    {
        "prefix": string("Prefix of every variable name.", maxLength=4096, pattern=ENV_NAME),
        "configMapRef": _ref("ConfigMap"),
        "secretRef": _ref("Secret"),
    },
    rules=[_one_of(["configMapRef", "secretRef"], "envFrom[]")],
)

VOLUME_MOUNT = obj(
    "A volume mounted in the worker container (core/v1 VolumeMount).",
    {
        "name": string("Name of a volume of spec.pod.volumes.", minLength=1, maxLength=63),
        "mountPath": string("Path in the container.", minLength=1, maxLength=1024),
        "readOnly": boolean("Mount read-only."),
        "recursiveReadOnly": string("Read-only submounts too.", enum=["Disabled", "IfPossible", "Enabled"]),
        "subPath": string("Path within the volume (relative, no '..').", maxLength=1024),
        "subPathExpr": string("subPath with $(VAR) expansion.", maxLength=4096),
        "mountPropagation": string("Mount propagation.", enum=["None", "HostToContainer", "Bidirectional"]),
    },
    required=["name", "mountPath"],
    rules=[("!has(self.subPath) || !has(self.subPathExpr) || size(self.subPath) == 0 || size(self.subPathExpr) == 0",
            "volumeMounts[].subPath and subPathExpr are mutually exclusive"),
           ("!has(self.subPath) || (!self.subPath.startsWith('/') && !self.subPath.matches('(^|/)[.][.](/|$)'))",
            "volumeMounts[].subPath must be a relative path without '..'")],
)

TOLERATION = obj(
    "A toleration (core/v1 Toleration).",
    {
        "key": string("Taint key (empty with operator Exists: every taint).", maxLength=317,
                      pattern=QUALIFIED_NAME.replace("$", "|^$")),
        "operator": string("Exists or Equal (default).", enum=["Exists", "Equal"]),
        "value": string("Taint value (empty with operator Exists).", maxLength=63, pattern=LABEL_VALUE),
        "effect": string("Taint effect (empty: all).", enum=["NoSchedule", "PreferNoSchedule", "NoExecute", ""]),
        "tolerationSeconds": integer("How long a NoExecute taint is tolerated."),
    },
    rules=[
        ("!has(self.operator) || self.operator != 'Exists' || !has(self.value) || size(self.value) == 0",
         "pod.tolerations[].value must be empty when operator is Exists"),
        ("(has(self.key) && size(self.key) != 0) || (has(self.operator) && self.operator == 'Exists')",
         "pod.tolerations[].operator must be Exists when key is empty"),
        ("!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')",
         "pod.tolerations[].effect must be NoExecute when tolerationSeconds is set"),
    ],
)

_SCALING_RULES = obj(
    "Scaling rules of one direction (autoscaling/v2 HPAScalingRules).",
    {
        "stabilizationWindowSeconds": integer("Seconds of past recommendations considered.", 0, 3600),
        "selectPolicy": string("Which policy wins.", enum=["Max", "Min", "Disabled"]),
        "policies": array("Policies (autoscaling/v2 HPAScalingPolicy).", obj("A scaling policy.", {
            "type": string("Pods or Percent.", enum=["Pods", "Percent"]),
            "value": integer("Pods or percent allowed per period.", 1, INT32_MAX),
            "periodSeconds": integer("Length of the period.", 1, 1800),
        }, required=["type", "value", "periodSeconds"]), minItems=1, maxItems=32),
    },
)

HPA_BEHAVIOR = obj("HPA autoscaling/v2 behavior (HorizontalPodAutoscalerBehavior), passed to the HPA.",
                   {"scaleUp": _SCALING_RULES, "scaleDown": _SCALING_RULES})

PERCENT_OR_COUNT = r"^0*([0-9]|[1-9][0-9]|100)%$"


def count_or_percent(desc: str) -> Schema:
    """A PDB's minAvailable/maxUnavailable: a count ≥ 0 or a percent ≤ 100%."""
    return int_or_string(desc, minimum=0, maximum=INT32_MAX, pattern=PERCENT_OR_COUNT)




#: A WorkerPool rule (on spec): an integer disruption.minAvailable not below the smallest the pool runs
#: (autoscaling.minReplicas, or replicas) keeps every pod of it, which blocks every node drain.
MIN_AVAILABLE_BELOW_SMALLEST_POOL = (
    "!has(self.disruption) || !has(self.disruption.minAvailable) || type(self.disruption.minAvailable) != int || "
    "self.disruption.minAvailable == 0 || self.disruption.minAvailable < (has(self.autoscaling) && "
    "self.autoscaling.enabled ? self.autoscaling.minReplicas : self.replicas)",
    "disruption.minAvailable must be less than autoscaling.minReplicas (replicas without autoscaling): a budget "
    "that keeps every pod of the smallest pool blocks every node drain (use maxUnavailable)")
