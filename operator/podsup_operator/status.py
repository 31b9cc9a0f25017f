"""The WorkerPool status, computed from the live children (pure).

``compute_status`` turns the pool, its live Deployment and HPA and the
outcome of the apply step into the status the operator wants; ``status_patch``
keeps only what differs from the current status, so a resync that changed
nothing writes nothing.
"""
from __future__ import annotations

from typing import Any

from . import crd
from .builders.common import autoscaling_enabled, selector_string, spec
from .conditions import (DEGRADED, FALSE, PROGRESSING, READY, SCALING_ACTIVE, TRUE, UNKNOWN,
                         get_condition, set_condition)


def _deployment_condition(deployment: dict | None, type_: str) -> dict | None:
    return get_condition(((deployment or {}).get("status") or {}).get("conditions"), type_)


def compute_status(pool: dict, deployment: dict | None, hpa: dict | None, error: str | None,
                   now: str) -> dict[str, Any]:
    """Desired status of the pool.

    ``error`` is the message of a failed apply (→ Degraded=True, ApplyFailed).
    Deployment numbers are copied; workers: :func:`workers_in_ready_pods`.
    """
    current = pool.get("status") or {}
    generation = pool.get("metadata", {}).get("generation")
    dep_status = (deployment or {}).get("status") or {}
    dep_spec = (deployment or {}).get("spec") or {}
    replicas = dep_status.get("replicas", 0)
    ready = dep_status.get("readyReplicas", 0)
    updated = dep_status.get("updatedReplicas", 0)
    wanted = dep_spec.get("replicas", 1 if deployment else 0)
    processes = spec(pool).get("processes", crd.DEFAULT_PROCESSES)

    status: dict[str, Any] = {
        "replicas": replicas,
        "readyReplicas": ready,
        "updatedReplicas": updated,
        "selector": selector_string(pool),
        "workers": workers_in_ready_pods(pool, ready),
    }
    if generation is not None:
        status["observedGeneration"] = generation

    conds = current.get("conditions") or []

    def put(type_: str, st: str, reason: str, message: str) -> None:
        nonlocal conds
        conds = set_condition(conds, type_, st, reason, message, generation, now)

    rollout_stale = (dep_status.get("observedGeneration", 0) < (deployment or {}).get("metadata", {}).get("generation", 0))
    deadline = _deployment_condition(deployment, "Progressing")
    stuck = deadline is not None and deadline.get("reason") == "ProgressDeadlineExceeded"
    replica_failure = _deployment_condition(deployment, "ReplicaFailure")

    if deployment is None:
        put(READY, FALSE, "DeploymentMissing", "the Deployment does not exist yet")
    elif ready >= wanted and not rollout_stale:
        put(READY, TRUE, "AllReplicasReady", f"{ready}/{wanted} replicas ready, {_workers_text(pool, ready)}")
    else:
        put(READY, FALSE, "ReplicasNotReady", f"{ready}/{wanted} replicas ready")

    if stuck:
        put(PROGRESSING, FALSE, "ProgressDeadlineExceeded", deadline.get("message", "rollout stuck"))
    elif deployment is not None and (rollout_stale or updated < wanted or replicas > updated):
        put(PROGRESSING, TRUE, "RollingOut", f"{updated}/{wanted} replicas updated")
    else:
        put(PROGRESSING, FALSE, "RolloutComplete", "no rollout in progress")

    if error:
        put(DEGRADED, TRUE, "ApplyFailed", error)
    elif stuck:
        put(DEGRADED, TRUE, "ProgressDeadlineExceeded", deadline.get("message", "rollout stuck"))
    elif replica_failure is not None and replica_failure.get("status") == TRUE:
        put(DEGRADED, TRUE, "ReplicaFailure", replica_failure.get("message", "pods cannot be created"))
    else:
        put(DEGRADED, FALSE, "AsExpected", "children applied")

    if not autoscaling_enabled(pool):
        put(SCALING_ACTIVE, FALSE, "AutoscalingDisabled", f"spec.replicas ({wanted}) sets the pod count")
    else:
        hpa_cond = get_condition(((hpa or {}).get("status") or {}).get("conditions"), "ScalingActive")
        # `kubectl scale wp` writes spec.replicas, which the HPA overrides: say so where users look
        asked = spec(pool).get("replicas")
        ignored = (f"; spec.replicas ({asked}) is not used while autoscaling is on (the HPA keeps {wanted}; "
                   f"change autoscaling.minReplicas/maxReplicas)") if deployment and asked not in (None, wanted) else ""
        if hpa_cond is None:
            put(SCALING_ACTIVE, UNKNOWN, "HPAPending", "the HorizontalPodAutoscaler has not reported yet" + ignored)
        else:
            put(SCALING_ACTIVE, hpa_cond.get("status", UNKNOWN), hpa_cond.get("reason") or "HPA",
                hpa_cond.get("message", "") + ignored)
    status["conditions"] = conds
    return status


def workers_in_ready_pods(pool: dict, ready: int) -> int:
    """``status.workers``, the WORKERS column: worker processes in ready pods.

    A fixed-size pool runs ``processes`` in each ready pod (a pod whose
    podsup runs fewer — a crash storm — is not ready). With
    ``dynamicProcesses`` each pod follows its own load, so ``processes`` (the
    start count) times the pods would be a guess: the running count of the
    pool's live scrape (``status.live.workers.running``, written by the
    poller) when it read every ready pod; until then the documented lower
    bound, ``dynamicProcesses.min`` × ready pods. Both writers of the field —
    the reconcile and the poller, beside ``live`` — compute it here from the
    same status, so they agree.
    """
    dynamic = spec(pool).get("dynamicProcesses")
    if not dynamic:
        return spec(pool).get("processes", crd.DEFAULT_PROCESSES) * ready
    live = (pool.get("status") or {}).get("live") or {}
    running = (live.get("workers") or {}).get("running")
    if running is not None and live.get("pods") == ready:
        return int(running)
    return int(dynamic.get("min", crd.DEFAULT_DYNAMIC_MIN)) * ready


def _workers_text(pool: dict, ready: int) -> str:
    """The Ready message's worker count: stable (no live figure in it, or
    every change of the running count would rewrite the condition)."""
    dynamic = spec(pool).get("dynamicProcesses")
    if not dynamic:
        return f"{workers_in_ready_pods(pool, ready)} workers"
    return (f"{dynamic.get('min', crd.DEFAULT_DYNAMIC_MIN)}-{dynamic.get('max')} workers per pod "
            f"(dynamicProcesses)")


def status_patch(current: dict | None, desired: dict) -> dict:
    """Keys of ``desired`` whose value differs from ``current`` ({} = no write)."""
    current = current or {}
    return {k: v for k, v in desired.items() if current.get(k) != v}
