"""One level-based reconcile of a WorkerPool: desired children vs. the live
ones, apply what differs, delete what the spec no longer asks for, write the
status when it changed.

Idempotent and edge-free: it does not care why it runs (create, update,
resume, timer, a child changed or vanished). A child whose live state already
contains every field we would apply is left alone, so a resync with nothing
changed makes zero write calls; a child someone edited or deleted is applied
again (drift correction). Deployment ``spec.replicas`` is never part of the
desired state while the HPA owns it.
"""
from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Callable

from podsup import names

from . import scale_to_zero
from .apply import HANDOVER_FIELD_MANAGER, ClusterApi
from .builders import desired_children
from .builders.common import pool_name, pool_namespace
from .conditions import now_rfc3339
from .quantity import parse_quantity
from .status import compute_status, status_patch

#: emit(type, reason, message): post a Kubernetes Event on the pool.
Emit = Callable[[str, str, str], None]


class ChildConflict(RuntimeError):
    """A same-named object exists that this pool does not control; the
    operator refuses to take it over."""


@dataclass
class Outcome:
    applied: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    status_patch: dict = field(default_factory=dict)
    #: replicas set through the scale subresource (a Deployment stranded at 0)
    scaled_to: int | None = None
    #: the children as last read or applied, by kind (for the operator's pool metrics)
    live: dict = field(default_factory=dict)

    @property
    def writes(self) -> int:
        return (len(self.applied) + len(self.deleted) + (1 if self.status_patch else 0)
                + (1 if self.scaled_to is not None else 0))


#: Keys whose values (or whose map's values) are resource.Quantity: the API
#: server returns them in canonical form ("0.5" → "500m", 1 → "1").
QUANTITY_KEYS = {"limits", "requests", "averageValue"}


def _scalar_equal(desired: Any, live: Any, quantity: bool) -> bool:
    if desired == live:
        return True
    if quantity:
        a, b = parse_quantity(desired), parse_quantity(live)
        return a is not None and a == b
    return False


def is_subset(desired: Any, live: Any, quantity: bool = False) -> bool:
    """True when ``live`` holds every field of ``desired`` with the same value
    (server defaults and fields of other managers may add more; lists must
    match item by item; quantities compare by value)."""
    if isinstance(desired, dict):
        return isinstance(live, dict) and all(
            k in live and is_subset(v, live[k], quantity or k in QUANTITY_KEYS) for k, v in desired.items())
    if isinstance(desired, list):
        return (isinstance(live, list) and len(desired) == len(live)
                and all(is_subset(d, x) for d, x in zip(desired, live)))
    return _scalar_equal(desired, live, quantity)


def with_applied_hash(desired: dict) -> dict:
    """``desired`` plus the digest annotation of its own content.

    The subset check alone cannot see a field the spec no longer sets (the
    live object still has it); the digest changes with any change of what we
    would apply, so the next reconcile applies, and server-side apply then
    removes the fields our manager stopped setting.
    """
    digest = hashlib.sha256(json.dumps(desired, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]
    out = copy.deepcopy(desired)
    out["metadata"].setdefault("annotations", {})[names.APPLIED_HASH_ANNOTATION] = digest
    return out


def owns_replicas(live: dict | None, manager: str = names.FIELD_MANAGER) -> bool:
    """Whether ``manager``'s apply is the only claim on the Deployment's spec.replicas."""
    owners = [entry for entry in (live or {}).get("metadata", {}).get("managedFields") or []
              if "f:replicas" in ((entry.get("fieldsV1") or {}).get("f:spec") or {})]
    return bool(owners) and all(e.get("manager") == manager and e.get("operation") == "Apply" for e in owners)


def controlled_by(obj: dict, pool: dict) -> bool:
    uid = pool["metadata"].get("uid")
    return any(ref.get("controller") and ref.get("uid") == uid
               for ref in obj.get("metadata", {}).get("ownerReferences") or [])


def describe_error(exc: BaseException) -> str:
    """A one-line message for status and Events (the API's own message when
    there is one; ours as it is)."""
    if isinstance(exc, ChildConflict):
        return str(exc)
    body = getattr(exc, "body", None)
    if body:
        try:
            message = json.loads(body).get("message")
            if message:
                return f"{getattr(exc, 'status', '')} {message}".strip()
        except (ValueError, AttributeError):
            pass
    return f"{type(exc).__name__}: {exc}"


def _no_emit(type_: str, reason: str, message: str) -> None:
    return None


class ChildrenFailed(RuntimeError):
    """Some children could not be applied or deleted; every other child was.

    Raised at the end of a reconcile, after the pool's status (Degraded=True,
    reason ApplyFailed, the API server's messages) and a Warning Event per
    child say so, so the caller retries with backoff.
    """

    def __init__(self, failures: list[tuple[str, BaseException]]):
        self.failures = failures
        super().__init__(failure_message(failures))


def failure_message(failures: list[tuple[str, BaseException]]) -> str:
    """One line for status and logs: each failed kind with the API's message."""
    return "; ".join(f"{kind}: {describe_error(exc)}" for kind, exc in failures)


def reconcile(pool: dict, api: ClusterApi, operator_image: str, emit: Emit = _no_emit,
              now: Callable[[], str] = now_rfc3339) -> Outcome:
    """Bring the pool's children and status to the desired state.

    Each child is handled on its own: one the API server refuses (422
    Invalid, 403, a same-named object we do not own...) gets a Warning Event
    and goes into the status as Degraded=True with the API server's message,
    while the other children are still applied. Then :class:`ChildrenFailed`
    is raised so the caller (kopf) retries with backoff; the first reconcile
    that applies every child sets Degraded back to False.
    """
    name = pool_name(pool)
    outcome = Outcome()
    live: dict[str, dict | None] = outcome.live
    failures: list[tuple[str, BaseException]] = []
    for (api_version, kind), desired in desired_children(pool, operator_image).items():
        try:
            live[kind] = _reconcile_child(pool, api, api_version, kind, desired, outcome, emit, live)
        except Exception as exc:  # noqa: BLE001 - one refused child never stops the others
            failures.append((kind, exc))
            emit("Warning", "ApplyFailed", f"{kind} {name}: {describe_error(exc)}")
            # the status reports what is running: the child as it was before the refused apply
            current = live.get(kind)
            live[kind] = current if current is not None and controlled_by(current, pool) else None
    try:
        _rescue_from_zero(pool, api, live, outcome, emit)
    except Exception as exc:  # noqa: BLE001 - reported like a refused child
        failures.append(("Deployment/scale", exc))
        emit("Warning", "ApplyFailed", f"Deployment/scale {name}: {describe_error(exc)}")
    error = failure_message(failures) if failures else None
    _write_status(pool, api, live, error, now, outcome, swallow=bool(failures))
    if failures:
        raise ChildrenFailed(failures)
    return outcome


def _reconcile_child(pool: dict, api: ClusterApi, api_version: str, kind: str, desired: dict | None,
                     outcome: Outcome, emit: Emit, live: dict[str, dict | None]) -> dict | None:
    """Apply or delete one child; return its live state (None when absent).
    ``live[kind]`` holds the state read before writing, should the write fail."""
    name, namespace = pool_name(pool), pool_namespace(pool)
    current = live[kind] = api.get(api_version, kind, namespace, name)
    if desired is None:
        if current is not None and controlled_by(current, pool):
            api.delete(api_version, kind, namespace, name, uid=current["metadata"].get("uid"))
            outcome.deleted.append(kind)
            emit("Normal", "Deleted", f"Deleted {kind} {name}: no longer in the spec")
        return None
    desired = with_applied_hash(desired)
    if current is not None and not controlled_by(current, pool):
        raise ChildConflict(f"{kind} {namespace}/{name} exists and is not controlled by this "
                            f"WorkerPool; delete or rename it")
    if current is not None and is_subset(desired, current):
        return current
    if kind == "Deployment" and "replicas" not in desired["spec"] and owns_replicas(current):
        _hand_replicas_over(api, current)
    applied = api.apply(desired)
    outcome.applied.append(kind)
    if current is None:
        emit("Normal", "Created", f"Created {kind} {name}")
    else:
        emit("Normal", "Updated", f"Applied {kind} {name} (spec changed or drift corrected)")
    return applied


def _hand_replicas_over(api: ClusterApi, current: dict) -> None:
    """Autoscaling was turned on: keep the running count while the HPA takes over.

    Our apply owned spec.replicas alone; applying without it would remove the
    field and Kubernetes would reset it to 1 (a 20-replica pool dropping to 1
    at once). Applying the same count first under a second manager makes the
    ownership shared, so our apply only gives up ours — Kubernetes' documented
    hand-off of replicas to an HPA ("Transferring ownership"); the HPA's
    scale updates take the field from that manager afterwards.
    """
    meta = current["metadata"]
    replicas = (current.get("spec") or {}).get("replicas")
    if replicas is None:
        return
    api.apply({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
               "spec": {"replicas": int(replicas)}}, manager=HANDOVER_FIELD_MANAGER)


def _rescue_from_zero(pool: dict, api: ClusterApi, live: dict, outcome: Outcome, emit: Emit) -> None:
    """Give a Deployment the HPA cannot move (0 replicas) its minimum back."""
    deployment = live.get("Deployment")
    if not deployment:
        return
    replicas = (deployment.get("spec") or {}).get("replicas")
    target = scale_to_zero.stranded_at_zero(pool.get("spec") or {}, replicas)
    if target is None:
        return
    name, namespace = pool_name(pool), pool_namespace(pool)
    api.scale(namespace, name, target)
    deployment.setdefault("spec", {})["replicas"] = target
    outcome.scaled_to = target
    emit("Normal", "ScaledFromZero", f"Deployment {name} was at 0 replicas with autoscaling on and scale to zero "
                                     f"not in effect (the HPA cannot act at 0): scaled to {target}")


#: Attempts at a status write that keeps losing to concurrent writers.
STATUS_ATTEMPTS = 3


def _write_status(pool: dict, api: ClusterApi, live: dict, error: str | None, now: Callable[[], str],
                  outcome: Outcome, swallow: bool) -> None:
    """Patch the status if it changed. On a resourceVersion conflict (another
    writer, e.g. scale-to-zero, changed the pool since we read it) re-read the
    pool and recompute, so their conditions are kept, not overwritten."""
    for attempt in range(STATUS_ATTEMPTS):
        desired = compute_status(pool, live.get("Deployment"), live.get("HorizontalPodAutoscaler"), error, now())
        patch = status_patch(pool.get("status"), desired)
        if not patch:
            return
        try:
            api.patch_status(pool, patch)
            outcome.status_patch = patch
            return
        except Exception as exc:
            if getattr(exc, "status", None) == 409 and attempt + 1 < STATUS_ATTEMPTS:
                fresh = api.get_pool(pool_namespace(pool), pool_name(pool))
                if fresh is None:
                    return  # the pool is gone: nothing to report on
                pool = fresh
                continue
            if not swallow:  # on the error path the original error matters more
                raise
            return
