"""The WorkerPool CustomResourceDefinition, built as plain data.

The CRD is written here in Python (small helpers, one line a field) rather than
by hand in YAML so that the schema, the defaults the builders fall back on and
the offline validator of ``podsup-operator render`` come from one source.
crds/workerpools.podsup.io.yaml is this module's output
(``podsup-operator crd > crds/workerpools.podsup.io.yaml``); a test keeps the
two equal. Pure: imports nothing but podsup.names.
"""
from __future__ import annotations

from typing import Any

from podsup import names
from podsup.core.config import MAX_DURATION

from . import core_pod_types as core_pod
from . import core_types as core
from .crd_live import LIVE_STATUS
from .schema import Schema, array, boolean, integer, number, obj, string

#: The longest duration podsup run takes (podsup.core.config.MAX_DURATION), in whole seconds.
YEAR = int(MAX_DURATION)

# Defaults shared by the schema and the builders (a manifest rendered offline
# and one read back from the API server must produce the same children).
DEFAULT_PROCESSES = 1
DEFAULT_DYNAMIC_MIN = 1
DEFAULT_REPLICAS = 1
DEFAULT_GRACEFUL_TIMEOUT = 30
DEFAULT_DRAIN_DELAY = 5
DEFAULT_IDLE_COOLDOWN = 300
#: Seconds added to drainDelay + gracefulTimeout for terminationGracePeriodSeconds.
TERMINATION_MARGIN = 10
#: The pod volume holding the podsup binary (reserved: users cannot add one so named).
BIN_VOLUME = "podsup-bin"

QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$"
DNS_LABEL = core.DNS_LABEL

DYNAMIC_PROCESSES = obj(
    "In-pod elasticity (PHP-FPM pm=dynamic): each pod runs between min and max worker processes, following "
    "its busy count (busy + spare, within the bounds; idle ones above that retire after idleTimeoutSeconds). "
    "Two levels: podsup grows and shrinks the pool inside each pod within a second; the HPA adds pods only "
    "when the pods' own headroom is used up (busyWorkersPercent then reads podsup_pool_saturation = busy / "
    "max). Workers must report busy/idle (PODSUP_REPORT), else each pod stays at processes.",
    {
        "min": integer("Fewest worker processes per pod (--min-workers).", 0, 1024,
                       default=DEFAULT_DYNAMIC_MIN),
        "max": integer("Most worker processes per pod (--max-workers).", 1, 1024),
        "spare": integer("Idle workers kept ready for the next job (--spare-workers).", 1, 1024, default=1),
        "idleTimeoutSeconds": integer("An idle worker above min + spare retires after this long "
                                      "(--idle-timeout).", 0, YEAR, default=10),
    },
    required=["max"],
    rules=[("(has(self.min) ? self.min : 1) <= self.max",
            "dynamicProcesses.min must be less than or equal to dynamicProcesses.max"),
           ("(has(self.spare) ? self.spare : 1) <= self.max",
            "dynamicProcesses.spare must be less than or equal to dynamicProcesses.max")],
)

SUPERVISOR = obj(
    "Settings of the in-pod supervisor; each maps to a `podsup run` option.",
    {
        "stopSignal": string("Signal sent to a worker to stop it gracefully (--stop-signal).",
                             enum=["TERM", "INT", "QUIT", "HUP", "USR1", "USR2"]),
        "gracefulTimeoutSeconds": integer("Seconds a stopping worker gets before SIGKILL (--graceful-timeout).",
                                          0, 86400, default=DEFAULT_GRACEFUL_TIMEOUT),
        "drainDelaySeconds": integer("Seconds readiness is off before workers are signalled on pod stop, so "
                                     "endpoints drop the pod first (--drain-delay).", 0, 3600,
                                     default=DEFAULT_DRAIN_DELAY),
        "normalExitCodes": array("Exit codes meaning 'done, do not respawn' (--normal-exit-codes).",
                                 integer("An exit code.", 0, 255), maxItems=32),
        "backoffMaxSeconds": integer("Upper bound of the respawn backoff (--backoff-max).", 1, 3600),
        "crashloopThreshold": integer("Crashes within crashloopIntervalSeconds that make a crash storm: the pod is "
                                      "not ready at once, respawns are slowed (--crashloop-threshold; default 2 "
                                      "per worker, at least 10).", 1),
        "crashloopIntervalSeconds": integer("Window of crashloopThreshold (--crashloop-interval).", 1, YEAR),
        "crashloopRestartAfterSeconds": integer("A crash storm fails liveness (the kubelet restarts the pod) only once "
                                                "it has lasted this long; 0: never (--crashloop-restart-after; "
                                                "default 300).", 0, YEAR),
        "startTimeoutSeconds": integer("Once workers report (any line to PODSUP_REPORT), a new worker counts, and "
                                       "replaces the one it succeeds in a reload or recycle, only at its first "
                                       "report; one silent this long is killed and replaced (restart reason "
                                       "start-timeout); 0: wait for ever (--start-timeout; default 60).", 0, YEAR),
        "startPeriodSeconds": integer("Workers that never report count as running after this long "
                                      "(--start-period; default 1).", 0, 3600),
        "maxRequests": integer("Recycle a worker after this many requests (--max-requests).", 1),
        "maxRequestsJitter": integer("Random extra requests before recycling, to avoid all workers recycling "
                                     "together (--max-requests-jitter).", 0),
        "maxLifetimeSeconds": integer("Recycle a worker after this many seconds (--max-lifetime).", 1, YEAR),
        "maxRss": string("Recycle a worker whose RSS exceeds this quantity, e.g. 256Mi (--max-rss).",
                         pattern=QUANTITY_PATTERN),
        "heartbeatTimeoutSeconds": integer("Kill a worker silent for this long; only for workers that send "
                                           "heartbeats (--heartbeat-timeout).", 1, YEAR),
        "requestTimeoutSeconds": integer("Kill a worker busy longer than this (--request-timeout).", 1, YEAR),
        "slowRequestSeconds": integer("Log requests slower than this (--slow-request).", 1, YEAR),
        "minReady": integer("Running workers needed for the pod to be ready (--min-ready); at most processes.", 0),
        "logFormat": string("Log format of podsup (--log-format).", enum=["text", "json"]),
        "metricsPort": integer("Port of podsup's /metrics, /healthz and /readyz (--http 0.0.0.0:PORT).",
                               1, 65535, default=names.DEFAULT_HTTP_PORT),
        "preload": string("Python workers: MODULE:FUNC imported once in podsup's master process, workers "
                          "forked to call FUNC, sharing its memory copy-on-write (--preload). podsup must be "
                          "installed in the image (pip install podsup): `command` is then the image's Python "
                          "(e.g. [python3]), run as `COMMAND -m podsup run ... --preload MODULE:FUNC`; no "
                          "init container is added and `args` must be empty.",
                          pattern=r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$"),
    },
)

QUEUE = obj(
    "The queue the workers consume; podsup probes its depth (--queue) for the queue-depth metric.",
    {
        "type": string("Broker type.", enum=["redis", "amqp"]),
        "name": string("Redis list or AMQP queue name; the External metric's selector names the pool.",
                       minLength=1, maxLength=255),
        "url": string("Broker URL without credentials, e.g. redis://redis:6379/0 (the list/queue name is added "
                      "as ?list= or ?queue=). Use urlSecretRef for a URL with credentials.", maxLength=2048),
        "urlSecretRef": obj("Secret key holding the full broker URL (with credentials and ?list=NAME or "
                            "?queue=NAME); passed to podsup as env PODSUP_QUEUE, never on the command line.",
                            {"name": core.dns_name("Secret name."),
                             "key": string("Key in the Secret.", minLength=1, maxLength=253, pattern=core.CONFIG_KEY)},
                            required=["name", "key"]),
        "pollIntervalSeconds": number("Seconds between queue-depth probes (--queue-interval).", 0.1),
    },
    required=["type", "name"],
    rules=[
        ("has(self.url) != has(self.urlSecretRef)", "exactly one of queue.url and queue.urlSecretRef must be set"),
        ("!has(self.url) || !self.url.matches('^[^/]*//[^/?#]*@')",
         "queue.url must not contain credentials; put the URL in a Secret and use queue.urlSecretRef"),
        ("!has(self.url) || (self.type == 'redis' ? self.url.matches('^rediss?://') : self.url.matches('^amqps?://'))",
         "queue.url scheme must match queue.type (redis:// or rediss:// for redis, amqp:// or amqps:// for amqp)"),
    ],
)

TARGETS = obj(
    "Per-replica targets; the HPA adds replicas when any is exceeded.",
    {
        "queueDepthPerReplica": integer("Queue backlog per replica (External metric "
                                        f"{names.METRIC_QUEUE_DEPTH}, AverageValue). Needs spec.queue.", 1),
        "requestsPerSecondPerReplica": number("Requests/s per pod (Pods metric "
                                              f"{names.METRIC_REQUESTS_PER_SECOND}).", 0.001),
        "busyWorkersPercent": integer(f"Busy workers in percent per pod (Pods metric {names.METRIC_BUSY_RATIO}; "
                                      f"with dynamicProcesses {names.METRIC_POOL_SATURATION}, busy / max).",
                                      1, 100),
        "cpuPercent": integer("CPU utilisation of requests in percent (Resource metric). Needs "
                              "resources.requests.cpu.", 1, core.INT32_MAX),
    },
)

AUTOSCALING = obj(
    "HorizontalPodAutoscaler settings. When enabled the HPA owns the replica count and spec.replicas is "
    "not applied to the Deployment.",
    {
        "enabled": boolean("Create an HPA for the pool.", default=False),
        "minReplicas": integer("Fewest replicas; 0 allows scale-to-zero after idleCooldownSeconds (the HPA "
                               "itself gets max(1, minReplicas)).", 0, core.INT32_MAX, default=1),
        "maxReplicas": integer("Most replicas.", 1, core.INT32_MAX),
        "idleCooldownSeconds": integer("Seconds of an empty queue and no busy workers before scaling to zero.",
                                       0, default=DEFAULT_IDLE_COOLDOWN),
        "targets": TARGETS,
        "behavior": core.HPA_BEHAVIOR,
    },
    rules=[
        ("!self.enabled || has(self.maxReplicas)", "autoscaling.maxReplicas is required when autoscaling is enabled"),
        ("!has(self.maxReplicas) || self.minReplicas <= self.maxReplicas",
         "autoscaling.minReplicas must be less than or equal to autoscaling.maxReplicas"),
        ("!self.enabled || (has(self.targets) && (has(self.targets.queueDepthPerReplica) || "
         "has(self.targets.requestsPerSecondPerReplica) || has(self.targets.busyWorkersPercent) || "
         "has(self.targets.cpuPercent)))",
         "autoscaling.targets needs at least one target when autoscaling is enabled"),
    ],
)

PORT = obj(
    "A port the workers listen on; exposed by the pool's Service.",
    {
        "name": string("Port name (IANA service name: at most 15 lowercase letters, digits and '-', at least "
                       "one letter, no '--'), unique in the pool.", minLength=1, maxLength=15, pattern=DNS_LABEL),
        "containerPort": integer("Port the workers listen on.", 1, 65535),
        "protocol": string("Protocol.", enum=["TCP", "UDP", "SCTP"], default="TCP"),
        "servicePort": integer("Port of the Service (default: containerPort).", 1, 65535),
    },
    required=["name", "containerPort"],
    rules=[(f"self.name != '{names.METRICS_PORT_NAME}'",
            f"ports[].name {names.METRICS_PORT_NAME} is reserved for podsup's metrics port"),
           ("self.name.matches('[a-z]') && !self.name.contains('--')",
            "ports[].name must contain at least one letter and no '--' (an IANA service name)")],
)

POD = obj(
    "Overrides of the pod template.",
    {
        "nodeSelector": core.label_map("Node selector of the pods.", "pod.nodeSelector"),
        "tolerations": array("Tolerations of the pods.", core.TOLERATION, maxItems=64),
        "affinity": core_pod.AFFINITY,
        "serviceAccountName": core.dns_name("Service account of the pods."),
        "imagePullSecrets": array("Secrets for pulling the image.",
                                  obj("A Secret reference.", {"name": string("Secret name.")}, required=["name"]),
                                  maxItems=64),
        "labels": core.label_map("Extra pod labels (cannot replace the pool's own labels).", "pod.labels"),
        "annotations": core.annotation_map("Extra pod annotations.", "pod.annotations"),
        "securityContext": core_pod.POD_SECURITY_CONTEXT,
        "containerSecurityContext": core_pod.CONTAINER_SECURITY_CONTEXT,
        "priorityClassName": core.dns_name("PriorityClass of the pods."),
        "volumes": array("Extra pod volumes, e.g. a ConfigMap holding the worker script; mount them with "
                         "spec.volumeMounts.", core_pod.VOLUME,
                         maxItems=64, **{"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}),
    },
    rules=[(f"!has(self.volumes) || self.volumes.all(v, v.name != '{BIN_VOLUME}')",
            f"pod.volumes[].name {BIN_VOLUME} is reserved for the podsup binary")],
)

DISRUPTION = obj(
    "PodDisruptionBudget of the pool; set exactly one of minAvailable and maxUnavailable.",
    {
        "minAvailable": core.count_or_percent("Pods that must stay available (a number or a percent up to 100%)."),
        "maxUnavailable": core.count_or_percent("Pods that may be unavailable (a number or a percent up to 100%)."),
    },
    rules=[("has(self.minAvailable) != has(self.maxUnavailable)",
            "exactly one of disruption.minAvailable and disruption.maxUnavailable must be set")],
)

SPEC = obj(
    "Desired state of the worker pool.",
    {
        "image": string("Worker image. It needs no Python: the podsup binary is copied in by an init container.",
                        minLength=1, pattern=r"^\S(.*\S)?$"),
        "imagePullPolicy": string("Image pull policy.", enum=["Always", "IfNotPresent", "Never"]),
        "command": array("Worker command, run by podsup as `podsup run ... -- COMMAND ARGS` in each worker "
                         "process.", string("An argument."), minItems=1),
        "args": array("Arguments appended to command.", string("An argument.")),
        "workingDir": string("Working directory of the worker container."),
        "env": array("Environment of the workers.", core.ENV_VAR, maxItems=256),
        "envFrom": array("Environment sources of the workers.", core.ENV_FROM, maxItems=64),
        "volumeMounts": array("Volume mounts of the worker container.", core.VOLUME_MOUNT, maxItems=64),
        "resources": obj("Resources of the worker container (per pod, for all its processes); a request is at "
                         "most the limit of its resource. Unknown resource names are refused by the API server "
                         "when the Deployment is applied (status condition Degraded).",
                         {"limits": core.resource_map("Resource name to quantity (e.g. cpu: 500m, memory: 256Mi).",
                                                      "limits"),
                          "requests": core.resource_map("Resource name to quantity (e.g. cpu: 500m, memory: 256Mi).",
                                                        "requests")},
                         rules=[core.REQUESTS_WITHIN_LIMITS]),
        "processes": integer("Worker processes per pod (podsup run --workers); with dynamicProcesses, the start "
                             "count, clamped into [min, max].", 1, 1024, default=DEFAULT_PROCESSES),
        "dynamicProcesses": DYNAMIC_PROCESSES,
        "replicas": integer("Pods when autoscaling is off (also the scale subresource's spec path).", 0,
                            core.INT32_MAX, default=DEFAULT_REPLICAS),
        "ports": array("Ports the workers listen on; a Service exposes them with the metrics port.", PORT,
                       maxItems=32, **{"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}),
        "supervisor": {**SUPERVISOR, "default": {}},
        "queue": QUEUE,
        "autoscaling": AUTOSCALING,
        "disruption": DISRUPTION,
        "pod": POD,
    },
    required=["image", "command"],
    rules=[
        ("!(has(self.autoscaling) && has(self.autoscaling.targets) && "
         "has(self.autoscaling.targets.queueDepthPerReplica)) || has(self.queue)",
         "autoscaling.targets.queueDepthPerReplica needs spec.queue"),
        ("!(has(self.autoscaling) && has(self.autoscaling.targets) && has(self.autoscaling.targets.cpuPercent)) || "
         "(has(self.resources) && has(self.resources.requests) && 'cpu' in self.resources.requests)",
         "autoscaling.targets.cpuPercent needs resources.requests.cpu"),
        ("!has(self.ports) || self.ports.all(p, p.containerPort != self.supervisor.metricsPort)",
         "ports[].containerPort must differ from supervisor.metricsPort"),
        ("!has(self.ports) || self.ports.all(p, (has(p.servicePort) ? p.servicePort : p.containerPort) != "
         "self.supervisor.metricsPort || p.protocol != 'TCP')",
         "ports[].servicePort (default containerPort) must differ from supervisor.metricsPort: the Service "
         "exposes both"),
        ("!has(self.ports) || self.ports.all(p, self.ports.exists_one(q, q.protocol == p.protocol && "
         "(has(q.servicePort) ? q.servicePort : q.containerPort) == (has(p.servicePort) ? p.servicePort : "
         "p.containerPort)))",
         "ports[].servicePort (default containerPort) must be unique per protocol: the Service exposes them all"),
        ("!has(self.volumeMounts) || self.volumeMounts.all(m, has(self.pod) && has(self.pod.volumes) && "
         "self.pod.volumes.exists(v, v.name == m.name))",
         "volumeMounts[].name must name a volume of spec.pod.volumes"),
        ("!has(self.volumeMounts) || self.volumeMounts.all(m, self.volumeMounts.exists_one(n, "
         "n.mountPath == m.mountPath))",
         "volumeMounts[].mountPath must be unique"),
        (f"!has(self.volumeMounts) || has(self.supervisor.preload) || self.volumeMounts.all(m, "
         f"m.mountPath != '{names.SHARED_BIN_DIR}')",
         f"volumeMounts[].mountPath {names.SHARED_BIN_DIR} is where the podsup binary is mounted"),
        core.MIN_AVAILABLE_BELOW_SMALLEST_POOL,
        ("!has(self.dynamicProcesses) || !has(self.supervisor.normalExitCodes) || "
         "size(self.supervisor.normalExitCodes) == 0",
         "dynamicProcesses and supervisor.normalExitCodes (job mode) cannot be combined"),
        ("!has(self.supervisor.minReady) || self.supervisor.minReady <= self.processes",
         "supervisor.minReady must be less than or equal to processes"),
        ("!has(self.supervisor.preload) || !has(self.args) || size(self.args) == 0",
         "supervisor.preload replaces the worker command: args must be empty (command is the Python that has "
         "podsup installed, e.g. [python3])"),
    ],
)

CONDITION = obj(
    "metav1.Condition.",
    {
        "type": string("Condition type, e.g. Ready, Progressing, Degraded, ScalingActive."),
        "status": string("True, False or Unknown.", enum=["True", "False", "Unknown"]),
        "reason": string("Machine-readable reason in CamelCase."),
        "message": string("Human-readable detail."),
        "lastTransitionTime": string("When status last changed.", format="date-time"),
        "observedGeneration": integer("metadata.generation the condition was computed for."),
    },
    required=["type", "status"],
)

STATUS = obj(
    "Observed state, written by the operator.",
    {
        "observedGeneration": integer("metadata.generation last reconciled."),
        "replicas": integer("Pods of the Deployment."),
        "readyReplicas": integer("Ready pods."),
        "updatedReplicas": integer("Pods of the current template."),
        "selector": string("Label selector of the pods (for the scale subresource and the HPA)."),
        "workers": integer("Worker processes in ready pods: processes x readyReplicas; with dynamicProcesses "
                           "live.workers.running once the live scrape read every ready pod, until then "
                           "dynamicProcesses.min x readyReplicas (a lower bound)."),
        "queueDepth": integer("Last observed queue depth."),
        "live": LIVE_STATUS,
        "conditions": array("Ready, Progressing, Degraded, ScalingActive (the reconcile); MetricsAvailable, "
                            "ScaledToZero and WorkersCrashLooping (the pool's poller; True while a pod's podsup is "
                            "in a crash storm, naming the pods and since when).",
                            CONDITION, **{"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]}),
    },
)

ROOT_RULES = [("self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$') && size(self.metadata.name) <= 63",
               "metadata.name must be a DNS-1035 label (lowercase letters, digits and '-', starting with a "
               "letter, at most 63 characters): the Service and the pod label are named after it")]


def workerpool_schema() -> Schema:
    """The openAPIV3Schema of WorkerPool."""
    return obj(
        "A pool of worker processes supervised by podsup in each pod, scaled by an HPA.",
        {
            "apiVersion": string("API version of the object."),
            "kind": string("Kind of the object."),
            "metadata": {"type": "object"},
            "spec": SPEC,
            "status": STATUS,
        },
        required=["spec"],
        rules=ROOT_RULES,
    )


def workerpool_crd() -> dict[str, Any]:
    """The CustomResourceDefinition manifest."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{names.PLURAL}.{names.API_GROUP}"},
        "spec": {
            "group": names.API_GROUP,
            "scope": "Namespaced",
            "names": {"kind": names.KIND, "listKind": f"{names.KIND}List", "plural": names.PLURAL,
                      "singular": names.KIND.lower(), "shortNames": ["wp"], "categories": ["all", "podsup"]},
            "versions": [{
                "name": names.API_VERSION,
                "served": True,
                "storage": True,
                "schema": {"openAPIV3Schema": workerpool_schema()},
                "subresources": {
                    "status": {},
                    "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas",
                              "labelSelectorPath": ".status.selector"},
                },
                "additionalPrinterColumns": [
                    {"name": "Ready", "type": "integer", "jsonPath": ".status.readyReplicas",
                     "description": "Ready pods"},
                    {"name": "Replicas", "type": "integer", "jsonPath": ".status.replicas",
                     "description": "Pods"},
                    {"name": "Workers", "type": "integer", "jsonPath": ".status.workers",
                     "description": "Worker processes in ready pods (dynamicProcesses: running, from the live scrape)"},
                    {"name": "Busy", "type": "integer", "jsonPath": ".status.live.workers.busy",
                     "description": "Busy workers in ready pods (live)"},
                    {"name": "RPS", "type": "number", "jsonPath": ".status.live.requestsPerSecond",
                     "description": "Requests or jobs per second (live)"},
                    {"name": "Queue", "type": "integer", "jsonPath": ".status.queueDepth",
                     "description": "Queue depth"},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                ],
            }],
        },
    }
