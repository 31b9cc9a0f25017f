"""WorkerPool → Deployment running ``podsup run`` as the worker container's
entrypoint (cf. sample-controller's newDeployment).

The worker image needs no Python: an init container (the operator image)
copies the standalone podsup binary into an emptyDir mounted at
names.SHARED_BIN_DIR. Supervisor settings become ``podsup run`` flags; a queue
URL from a Secret becomes env PODSUP_QUEUE (podsup reads PODSUP_<FLAG>) so
credentials never appear in the pod spec or ``ps``.
"""
from __future__ import annotations

import copy
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from podsup import names

from .. import crd
from .common import autoscaling_enabled, common_labels, metadata, section, selector_labels, spec

PODSUP = f"{names.SHARED_BIN_DIR}/podsup"
BIN_VOLUME = crd.BIN_VOLUME
WORKER_CONTAINER = "worker"
INSTALL_CONTAINER = "podsup-install"

#: supervisor field → `podsup run` flag (DESIGN.md names).
SUPERVISOR_FLAGS = {
    "stopSignal": "--stop-signal",
    "gracefulTimeoutSeconds": "--graceful-timeout",
    "drainDelaySeconds": "--drain-delay",
    "normalExitCodes": "--normal-exit-codes",
    "backoffMaxSeconds": "--backoff-max",
    "crashloopThreshold": "--crashloop-threshold",
    "crashloopIntervalSeconds": "--crashloop-interval",
    "crashloopRestartAfterSeconds": "--crashloop-restart-after",
    "startTimeoutSeconds": "--start-timeout",
    "startPeriodSeconds": "--start-period",
    "maxRequests": "--max-requests",
    "maxRequestsJitter": "--max-requests-jitter",
    "maxLifetimeSeconds": "--max-lifetime",
    "maxRss": "--max-rss",
    "heartbeatTimeoutSeconds": "--heartbeat-timeout",
    "requestTimeoutSeconds": "--request-timeout",
    "slowRequestSeconds": "--slow-request",
    "minReady": "--min-ready",
    "logFormat": "--log-format",
    "preload": "--preload",
}
#: The query parameter naming the list/queue in podsup's --queue URL.
QUEUE_PARAM = {"redis": "list", "amqp": "queue"}

# The `restricted` Pod Security Standard
# (https://kubernetes.io/docs/concepts/security/pod-security-standards/#restricted):
# every pod passes it unless the pool's own pod.securityContext /
# pod.containerSecurityContext says otherwise (a field set there wins, whole).
#: The UID when the pool sets none: the image may default to root, which
#: runAsNonRoot alone would refuse to start (65532: distroless "nonroot").
NONROOT_UID = 65532
POD_SECURITY = {"runAsNonRoot": True, "runAsUser": NONROOT_UID, "seccompProfile": {"type": "RuntimeDefault"}}
CONTAINER_SECURITY = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
#: An emptyDir at /tmp when the worker's root filesystem is read-only: the
#: standalone binary unpacks itself there and podsup's control and report
#: sockets live there.
TMP_VOLUME = "podsup-tmp"
TMP_PATH = "/tmp"


def metrics_port(pool: dict) -> int:
    return section(pool, "supervisor").get("metricsPort", names.DEFAULT_HTTP_PORT)


def queue_url(queue: dict) -> str:
    """The literal queue URL with the list/queue name added as podsup expects
    (``redis://h:6379/0?list=jobs``); an explicit parameter is kept."""
    parts = urlsplit(queue["url"])
    query = parse_qsl(parts.query, keep_blank_values=True)
    param = QUEUE_PARAM[queue["type"]]
    if not any(k == param for k, _ in query):
        query.append((param, queue["name"]))
    return urlunsplit(parts._replace(query=urlencode(query)))


def _flag_value(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def podsup_args(pool: dict) -> list[str]:
    """``podsup run`` flags for the pool (before ``--``)."""
    sup = section(pool, "supervisor")
    processes = spec(pool).get("processes", crd.DEFAULT_PROCESSES)
    dynamic = section(pool, "dynamicProcesses")
    if dynamic:
        low, high = dynamic.get("min", 1), dynamic["max"]
        args = ["--workers", str(max(low, min(high, processes))), "--min-workers", str(low),
                "--max-workers", str(high), "--spare-workers", str(dynamic.get("spare", 1)),
                "--idle-timeout", str(dynamic.get("idleTimeoutSeconds", 10))]
    else:
        args = ["--workers", str(processes)]
    for field, flag in SUPERVISOR_FLAGS.items():
        if field in sup:
            args += [flag, _flag_value(sup[field])]
    args += ["--http", f"0.0.0.0:{metrics_port(pool)}"]
    queue = section(pool, "queue")
    if queue.get("url"):
        args += ["--queue", queue_url(queue)]
    if queue and "pollIntervalSeconds" in queue:
        args += ["--queue-interval", _flag_value(queue["pollIntervalSeconds"])]
    return args


def preloaded(pool: dict) -> bool:
    """``supervisor.preload``: podsup comes from the image's own Python, not the init container."""
    return bool(section(pool, "supervisor").get("preload"))


def podsup_exe(pool: dict) -> list[str]:
    """How the worker container runs podsup: the copied standalone binary, or
    ``COMMAND -m podsup`` (the image's Python) for a preloaded pool."""
    if preloaded(pool):
        return [*spec(pool).get("command", []), "-m", "podsup"]
    return [PODSUP]


def worker_command(pool: dict) -> list[str]:
    s = spec(pool)
    if preloaded(pool):  # --preload MODULE:FUNC is among the flags; there is no COMMAND
        return [*podsup_exe(pool), "run", *podsup_args(pool)]
    return [PODSUP, "run", *podsup_args(pool), "--", *s.get("command", []), *s.get("args", [])]


def termination_grace_seconds(pool: dict) -> int:
    """Long enough for readiness-off (drain delay), the workers' graceful stop
    and a margin, so Kubernetes never SIGKILLs a draining pod early."""
    sup = section(pool, "supervisor")
    return (sup.get("drainDelaySeconds", crd.DEFAULT_DRAIN_DELAY)
            + sup.get("gracefulTimeoutSeconds", crd.DEFAULT_GRACEFUL_TIMEOUT) + crd.TERMINATION_MARGIN)


def _env(pool: dict) -> list[dict]:
    env = list(spec(pool).get("env") or [])
    ref = section(pool, "queue").get("urlSecretRef")
    if ref:
        env.append({"name": "PODSUP_QUEUE",
                    "valueFrom": {"secretKeyRef": {"name": ref["name"], "key": ref["key"]}}})
    return env


def _ports(pool: dict) -> list[dict]:
    ports = [{"name": p["name"], "containerPort": p["containerPort"], "protocol": p.get("protocol", "TCP")}
             for p in spec(pool).get("ports") or []]
    ports.append({"name": names.METRICS_PORT_NAME, "containerPort": metrics_port(pool), "protocol": "TCP"})
    return ports


def worker_container(pool: dict) -> dict:
    s = spec(pool)
    container: dict[str, Any] = {"name": WORKER_CONTAINER, "image": s["image"]}
    if "imagePullPolicy" in s:
        container["imagePullPolicy"] = s["imagePullPolicy"]
    container["command"] = worker_command(pool)
    if "workingDir" in s:
        container["workingDir"] = s["workingDir"]
    env = _env(pool)
    if env:
        container["env"] = env
    if s.get("envFrom"):
        container["envFrom"] = s["envFrom"]
    if s.get("resources"):
        container["resources"] = s["resources"]
    container["ports"] = _ports(pool)
    container["livenessProbe"] = {
        "httpGet": {"path": names.HEALTHZ_PATH, "port": names.METRICS_PORT_NAME},
        "periodSeconds": 10, "failureThreshold": 3, "timeoutSeconds": 2,
    }
    container["readinessProbe"] = {
        "httpGet": {"path": names.READYZ_PATH, "port": names.METRICS_PORT_NAME},
        "periodSeconds": 5, "failureThreshold": 1, "timeoutSeconds": 2,
    }
    container["lifecycle"] = {"preStop": {"exec": {"command": [*podsup_exe(pool), "drain", "--wait"]}}}
    mounts = [] if preloaded(pool) else [{"name": BIN_VOLUME, "mountPath": names.SHARED_BIN_DIR, "readOnly": True}]
    if needs_tmp(pool):
        mounts.append({"name": TMP_VOLUME, "mountPath": TMP_PATH})
    mounts += s.get("volumeMounts") or []
    if mounts:
        container["volumeMounts"] = mounts
    container["securityContext"] = container_security(pool)
    return container


def container_security(pool: dict) -> dict:
    """A fresh dict each call: the nested defaults are never shared between objects."""
    return copy.deepcopy({**CONTAINER_SECURITY, **(section(pool, "pod").get("containerSecurityContext") or {})})


def needs_tmp(pool: dict) -> bool:
    """A read-only root filesystem and nothing of the pool's own at /tmp."""
    mounted = {m.get("mountPath", "").rstrip("/") for m in spec(pool).get("volumeMounts") or []}
    return bool(container_security(pool).get("readOnlyRootFilesystem")) and TMP_PATH not in mounted


def install_container(pool: dict, operator_image: str) -> dict:
    """Copies the standalone podsup binary into the shared emptyDir."""
    container: dict[str, Any] = {
        "name": INSTALL_CONTAINER,
        "image": operator_image,
        "command": ["cp", names.IMAGE_BINARY_PATH, PODSUP],
        "volumeMounts": [{"name": BIN_VOLUME, "mountPath": names.SHARED_BIN_DIR}],
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}},
        # cp writes only to the emptyDir: its root filesystem can always be read-only.
        "securityContext": {"readOnlyRootFilesystem": True, **container_security(pool)},
    }
    return container


def pod_template(pool: dict, operator_image: str) -> dict:
    pod = section(pool, "pod")
    annotations = {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(metrics_port(pool)),
        "prometheus.io/path": names.METRICS_PATH,
        **(pod.get("annotations") or {}),
    }
    labels = {**(pod.get("labels") or {}), **common_labels(pool)}  # ours win: the selector needs them
    pod_spec: dict[str, Any] = {}
    if not preloaded(pool):
        pod_spec["initContainers"] = [install_container(pool, operator_image)]
    pod_spec["containers"] = [worker_container(pool)]
    volumes = [] if preloaded(pool) else [{"name": BIN_VOLUME, "emptyDir": {}}]
    if needs_tmp(pool):
        volumes.append({"name": TMP_VOLUME, "emptyDir": {}})
    volumes += pod.get("volumes") or []
    if volumes:
        pod_spec["volumes"] = volumes
    pod_spec["terminationGracePeriodSeconds"] = termination_grace_seconds(pool)
    pod_spec["securityContext"] = copy.deepcopy({**POD_SECURITY, **(pod.get("securityContext") or {})})
    for field in ("nodeSelector", "tolerations", "affinity", "serviceAccountName", "imagePullSecrets",
                  "priorityClassName"):
        if pod.get(field):
            pod_spec[field] = pod[field]
    return {"metadata": {"labels": labels, "annotations": annotations}, "spec": pod_spec}


def build_deployment(pool: dict, operator_image: str) -> dict:
    """The Deployment of the pool. ``spec.replicas`` is left out when
    autoscaling is on: the HPA owns it and the operator never fights it."""
    dep_spec: dict[str, Any] = {}
    if not autoscaling_enabled(pool):
        dep_spec["replicas"] = spec(pool).get("replicas", crd.DEFAULT_REPLICAS)
    dep_spec["selector"] = {"matchLabels": selector_labels(pool)}
    dep_spec["template"] = pod_template(pool, operator_image)
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata(pool), "spec": dep_spec}
