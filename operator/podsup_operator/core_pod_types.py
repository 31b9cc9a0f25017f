"""Schemas of the pod-level core types a WorkerPool hands to its Deployment:
security contexts, affinity and volumes (see core_types.py for why the CRD
types them: a pool the API server accepts must make a Deployment it accepts).

Fields are those of Kubernetes 1.30 (the oldest version we support); the
checks are the core validation's, as patterns and CEL rules. A volume's
source is typed for the common kinds (configMap, secret, emptyDir,
persistentVolumeClaim, hostPath); the others are checked by the API server
when the Deployment is applied. Pure data.
"""
from __future__ import annotations

from . import core_types as core
from .schema import Schema, _node, array, boolean, integer, obj, string

INT32_MAX = core.INT32_MAX
#: An ID (runAsUser, runAsGroup, fsGroup, supplementalGroups): 0 to 2^31-1.
_ID = (0, INT32_MAX)


def _profile(kind: str, field: str) -> Schema:
    """seccompProfile / appArmorProfile: a localhost profile iff type Localhost."""
    return obj(f"{kind} profile (core/v1 {kind}Profile).", {
        "type": string("RuntimeDefault, Unconfined or Localhost.", enum=["RuntimeDefault", "Unconfined", "Localhost"]),
        "localhostProfile": string("The profile on the node (type Localhost only).", minLength=1, maxLength=4096),
    }, required=["type"], rules=[
        ("self.type == 'Localhost' ? has(self.localhostProfile) : !has(self.localhostProfile)",
         f"{field}.localhostProfile must be set when type is Localhost, and only then")])


_SE_LINUX = obj("SELinux labels (core/v1 SELinuxOptions).", {
    "user": string("SELinux user."), "role": string("SELinux role."), "type": string("SELinux type."),
    "level": string("SELinux level."),
})

_WINDOWS = obj("Windows options (core/v1 WindowsSecurityContextOptions).", {
    "gmsaCredentialSpecName": string("GMSA credential spec name."),
    "gmsaCredentialSpec": string("GMSA credential spec."),
    "runAsUserName": string("Windows user name."),
    "hostProcess": boolean("HostProcess container; needs host networking, which pools do not use.", enum=[False]),
})

POD_SECURITY_CONTEXT = obj(
    "Pod securityContext (core/v1 PodSecurityContext). Fields set here replace podsup's restricted defaults "
    "(runAsNonRoot, runAsUser 65532, seccompProfile RuntimeDefault) one by one.",
    {
        "runAsUser": integer("UID of the containers' processes.", *_ID),
        "runAsGroup": integer("GID of the containers' processes.", *_ID),
        "runAsNonRoot": boolean("Refuse to start a container running as UID 0."),
        "fsGroup": integer("Group owning the volumes.", *_ID),
        "fsGroupChangePolicy": string("When to change volume ownership.", enum=["OnRootMismatch", "Always"]),
        "supplementalGroups": array("Extra GIDs.", integer("A GID.", *_ID), maxItems=64),
        "sysctls": array("Namespaced sysctls.", obj("A sysctl (core/v1 Sysctl).", {
            "name": string("Sysctl name.", maxLength=253,
                           pattern=r"^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$"),
            "value": string("Sysctl value."),
        }, required=["name", "value"]), maxItems=64,
            **{"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}),
        "seLinuxOptions": _SE_LINUX,
        "seccompProfile": _profile("Seccomp", "pod.securityContext.seccompProfile"),
        "appArmorProfile": _profile("AppArmor", "pod.securityContext.appArmorProfile"),
        "windowsOptions": _WINDOWS,
    },
)

CONTAINER_SECURITY_CONTEXT = obj(
    "Worker container securityContext (core/v1 SecurityContext); also the init container's. Fields set here "
    "replace podsup's restricted defaults (allowPrivilegeEscalation false, capabilities drop ALL) one by one.",
    {
        "allowPrivilegeEscalation": boolean("Allow gaining privileges (setuid); podsup's default is false."),
        "capabilities": obj("Capabilities (core/v1 Capabilities); podsup's default drops ALL.", {
            "add": array("Capabilities added.", string("A capability, e.g. NET_BIND_SERVICE.", maxLength=64),
                         maxItems=64),
            "drop": array("Capabilities dropped.", string("A capability, or ALL.", maxLength=64), maxItems=64),
        }),
        "privileged": boolean("Privileged container (needs allowPrivilegeEscalation: true)."),
        "procMount": string("proc mount type.", enum=["Default", "Unmasked"]),
        "readOnlyRootFilesystem": boolean("Read-only root filesystem (an emptyDir is mounted at /tmp)."),
        "runAsUser": integer("UID of the process.", *_ID),
        "runAsGroup": integer("GID of the process.", *_ID),
        "runAsNonRoot": boolean("Refuse to start as UID 0."),
        "seLinuxOptions": _SE_LINUX,
        "seccompProfile": _profile("Seccomp", "pod.containerSecurityContext.seccompProfile"),
        "appArmorProfile": _profile("AppArmor", "pod.containerSecurityContext.appArmorProfile"),
        "windowsOptions": _WINDOWS,
    },
    rules=[
        # podsup sets allowPrivilegeEscalation false unless given: the core validation refuses
        # false together with privileged or CAP_SYS_ADMIN.
        ("!(has(self.privileged) && self.privileged) || "
         "(has(self.allowPrivilegeEscalation) && self.allowPrivilegeEscalation)",
         "pod.containerSecurityContext.privileged needs allowPrivilegeEscalation: true (podsup's default is false)"),
        ("!has(self.capabilities) || !has(self.capabilities.add) || "
         "!self.capabilities.add.exists(c, c == 'SYS_ADMIN' || c == 'CAP_SYS_ADMIN') || "
         "(has(self.allowPrivilegeEscalation) && self.allowPrivilegeEscalation)",
         "pod.containerSecurityContext.capabilities.add SYS_ADMIN needs allowPrivilegeEscalation: true "
         "(podsup's default is false)"),
    ],
)

# --- affinity ---------------------------------------------------------------

_KEY = string("Label key.", minLength=1, maxLength=317, pattern=core.QUALIFIED_NAME)
_VALUES = array("Values.", string("A value.", maxLength=63), maxItems=64)


def _requirement(desc: str, operators: list[str], field: str) -> Schema:
    rules = [("self.operator in ['In', 'NotIn'] ? (has(self.values) && size(self.values) > 0) : "
              "(self.operator in ['Exists', 'DoesNotExist'] ? (!has(self.values) || size(self.values) == 0) : "
              "(has(self.values) && size(self.values) == 1))",
              f"{field}.values must be non-empty for In and NotIn, empty for Exists and DoesNotExist, "
              f"one value for Gt and Lt")]
    return obj(desc, {"key": _KEY, "operator": string("Operator.", enum=operators), "values": _VALUES},
               required=["key", "operator"], rules=rules)


_NODE_TERM = obj("Node selector term (core/v1 NodeSelectorTerm); its requirements are ANDed.", {
    "matchExpressions": array("Requirements on node labels.",
                              _requirement("A node label requirement.",
                                           ["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"],
                                           "matchExpressions[]"), maxItems=32),
    "matchFields": array("Requirements on node fields (metadata.name only).", obj(
        "A node field requirement.", {
            "key": string("Field: metadata.name.", enum=["metadata.name"]),
            "operator": string("In or NotIn.", enum=["In", "NotIn"]),
            "values": array("Exactly one node name.", string("A node name.", maxLength=253), minItems=1,
                            maxItems=1),
        }, required=["key", "operator", "values"]), maxItems=32),
})

_LABEL_SELECTOR = obj("Label selector (meta/v1 LabelSelector).", {
    "matchLabels": core.label_map("Labels that must match."),
    "matchExpressions": array("Label requirements.",
                              _requirement("A label requirement.", ["In", "NotIn", "Exists", "DoesNotExist"],
                                           "matchExpressions[]"), maxItems=32),
})

_POD_TERM = obj("Pods to be near or away from (core/v1 PodAffinityTerm).", {
    "labelSelector": _LABEL_SELECTOR,
    "namespaceSelector": _LABEL_SELECTOR,
    "namespaces": array("Namespaces of the pods.", string("A namespace.", maxLength=63, pattern=core.DNS_LABEL),
                        maxItems=64),
    "topologyKey": string("Node label of the topology domain, e.g. kubernetes.io/hostname.", minLength=1,
                          maxLength=317, pattern=core.QUALIFIED_NAME),
    "matchLabelKeys": array("Pod label keys merged into labelSelector (In).", _KEY, maxItems=32),
    "mismatchLabelKeys": array("Pod label keys merged into labelSelector (NotIn).", _KEY, maxItems=32),
}, required=["topologyKey"])


def _pod_affinity(desc: str) -> Schema:
    return obj(desc, {
        "requiredDuringSchedulingIgnoredDuringExecution": array("Hard requirements.", _POD_TERM, maxItems=32),
        "preferredDuringSchedulingIgnoredDuringExecution": array("Preferences.", obj(
            "A weighted term.", {"weight": integer("Weight.", 1, 100), "podAffinityTerm": _POD_TERM},
            required=["weight", "podAffinityTerm"]), maxItems=32),
    })


AFFINITY = obj("Affinity of the pods (core/v1 Affinity).", {
    "nodeAffinity": obj("Node affinity (core/v1 NodeAffinity).", {
        "requiredDuringSchedulingIgnoredDuringExecution": obj("Hard requirement (core/v1 NodeSelector).", {
            "nodeSelectorTerms": array("Terms, ORed.", _NODE_TERM, minItems=1, maxItems=32),
        }, required=["nodeSelectorTerms"]),
        "preferredDuringSchedulingIgnoredDuringExecution": array("Preferences.", obj(
            "A weighted term.", {"weight": integer("Weight.", 1, 100), "preference": _NODE_TERM},
            required=["weight", "preference"]), maxItems=32),
    }),
    "podAffinity": _pod_affinity("Pod affinity (core/v1 PodAffinity)."),
    "podAntiAffinity": _pod_affinity("Pod anti-affinity (core/v1 PodAntiAffinity)."),
})

# --- volumes ----------------------------------------------------------------

_MODE = (0, 0o777)
_ITEMS = array("Keys to project, each to a path.", obj("A key (core/v1 KeyToPath).", {
    "key": string("The key.", minLength=1, maxLength=253),
    "path": string("Relative path of the file.", minLength=1, maxLength=1024),
    "mode": integer("File mode.", *_MODE),
}, required=["key", "path"], rules=[
    ("!self.path.startsWith('/') && !self.path.matches('(^|/)[.][.](/|$)')",
     "pod.volumes[].items[].path must be a relative path without '..'")]), maxItems=64)

#: Volume sources of 1.30 the CRD leaves to the API server (checked when the Deployment is applied).
OTHER_SOURCES = ["awsElasticBlockStore", "azureDisk", "azureFile", "cephfs", "cinder", "csi", "downwardAPI",
                 "ephemeral", "fc", "flexVolume", "flocker", "gcePersistentDisk", "gitRepo", "glusterfs", "iscsi",
                 "nfs", "photonPersistentDisk", "portworxVolume", "projected", "quobyte", "rbd", "scaleIO",
                 "storageos", "vsphereVolume"]

_SOURCES: dict[str, Schema] = {
    "configMap": obj("A ConfigMap's keys as files (core/v1 ConfigMapVolumeSource).", {
        "name": core.dns_name("ConfigMap name."), "items": _ITEMS,
        "defaultMode": integer("Mode of the files.", *_MODE), "optional": boolean("The ConfigMap may be missing."),
    }, required=["name"]),
    "secret": obj("A Secret's keys as files (core/v1 SecretVolumeSource).", {
        "secretName": core.dns_name("Secret name."), "items": _ITEMS,
        "defaultMode": integer("Mode of the files.", *_MODE), "optional": boolean("The Secret may be missing."),
    }, required=["secretName"]),
    "emptyDir": obj("A scratch directory (core/v1 EmptyDirVolumeSource).", {
        "medium": string("'' (node disk), Memory, HugePages or HugePages-SIZE.",
                         pattern=r"^(|Memory|HugePages|HugePages-[0-9]+[KMGTPE]i?)$"),
        "sizeLimit": {**core.quantity("Size limit."), "x-kubernetes-validations": [
            {"rule": "!string(self).startsWith('-')",
             "message": "pod.volumes[].emptyDir.sizeLimit must be greater than or equal to 0"}]},
    }),
    "persistentVolumeClaim": obj("A PersistentVolumeClaim (core/v1 PersistentVolumeClaimVolumeSource).", {
        "claimName": core.dns_name("Claim name."), "readOnly": boolean("Mount read-only."),
    }, required=["claimName"]),
    "hostPath": obj("A node directory (core/v1 HostPathVolumeSource).", {
        "path": string("Path on the node.", minLength=1, maxLength=4096),
        "type": string("Expected type.", enum=["", "DirectoryOrCreate", "Directory", "FileOrCreate", "File",
                                               "Socket", "CharDevice", "BlockDevice"]),
    }, required=["path"]),
    **{name: _node("object", f"core/v1 {name[0].upper()}{name[1:]} volume source, passed to the pod unchanged.",
                   **{"x-kubernetes-preserve-unknown-fields": True}) for name in OTHER_SOURCES},
}

VOLUME = obj(
    "A volume (core/v1 Volume): a name and exactly one source.",
    {"name": string("Volume name (DNS-1123 label), unique in the pool.", minLength=1, maxLength=63,
                    pattern=core.DNS_LABEL), **_SOURCES},
    required=["name"],
    rules=[(" + ".join(f"(has(self.{s}) ? 1 : 0)" for s in _SOURCES) + " == 1",
            "pod.volumes[] must set exactly one volume source (configMap, secret, emptyDir, "
            "persistentVolumeClaim, ...)")],
)
