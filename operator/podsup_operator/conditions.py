"""metav1.Condition handling, shared by every writer of WorkerPool status.

The operator owns Ready, Progressing, Degraded and ScalingActive; other
writers (scale-to-zero, the metrics API) add their own types through the same
helper. A status patch carries the whole list, so it is always computed from
the current list: types this writer does not touch are kept as they are.
"""
from __future__ import annotations

import datetime
from typing import Iterable

READY = "Ready"
PROGRESSING = "Progressing"
DEGRADED = "Degraded"
SCALING_ACTIVE = "ScalingActive"

TRUE, FALSE, UNKNOWN = "True", "False", "Unknown"


def now_rfc3339() -> str:
    """metav1.Time format (seconds precision, UTC, Z)."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def set_condition(conditions: Iterable[dict] | None, type: str, status: str, reason: str, message: str,
                  observed_generation: int | None, now: str) -> list[dict]:
    """Return a new list with condition ``type`` set.

    lastTransitionTime changes only when status changes (so an unchanged
    condition produces an identical list and no write); other types keep
    their place and content. The input is not modified.
    """
    if status not in (TRUE, FALSE, UNKNOWN):
        raise ValueError(f"condition status must be True, False or Unknown, not {status!r}")
    result = [dict(c) for c in conditions or []]
    new = {"type": type, "status": status, "reason": reason, "message": message,
           "lastTransitionTime": now}
    if observed_generation is not None:
        new["observedGeneration"] = observed_generation
    for i, old in enumerate(result):
        if old.get("type") == type:
            if old.get("status") == status and old.get("lastTransitionTime"):
                new["lastTransitionTime"] = old["lastTransitionTime"]
            result[i] = new
            return result
    result.append(new)
    return result


def get_condition(conditions: Iterable[dict] | None, type: str) -> dict | None:
    for cond in conditions or []:
        if cond.get("type") == type:
            return cond
    return None
