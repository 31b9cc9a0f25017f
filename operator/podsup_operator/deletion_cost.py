"""Scale-in removes the idlest pods: the pod-deletion-cost plan (pure).

When a ReplicaSet scales in it deletes the pods with the lowest
``controller.kubernetes.io/pod-deletion-cost`` first (an int32 annotation;
absent = 0). Left alone, it picks among equal pods by age and placement, so
an HPA scale-in may kill a pod whose workers are all mid-job while an idle
pod survives. The operator already scrapes every ready pod's podsup for the
HPA's custom metrics; from that scrape this module computes each pod's cost,
``busy workers × 100`` (a podsup worker that is busy is one job in flight;
the factor leaves room for a finer tie-break without changing the order),
and plans the annotation patches:

* only where the pod's annotation differs from its cost (an idle pod with no
  annotation already has cost 0: nothing to write);
* at most once per pod per :data:`MIN_INTERVAL` seconds (a pod whose busy
  count flaps is not patched on every poll: each patch is a pod update that
  every pod watcher in the cluster receives);
* at most :data:`MAX_PATCHES` per pass, the largest corrections first.

The same request from KEDA users: kedacore/keda#6124. This module decides;
:mod:`podsup_operator.metrics_api.scale_in` does the I/O.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

ANNOTATION = "controller.kubernetes.io/pod-deletion-cost"
#: Seconds between two patches of one pod.
MIN_INTERVAL = 15.0
#: Patches per pass (one pass per poll of the pool).
MAX_PATCHES = 10
#: Cost of one busy worker.
PER_BUSY = 100
INT32_MIN, INT32_MAX = -(2 ** 31), 2 ** 31 - 1


@dataclass(frozen=True)
class Observed:
    """One scraped pod: its annotation as listed (raw text or None) and its busy workers."""
    pod: str
    annotation: str | None
    busy: int


@dataclass(frozen=True)
class Patch:
    pod: str
    cost: int


def cost(busy: int) -> int:
    return max(INT32_MIN, min(INT32_MAX, int(busy) * PER_BUSY))


def current(annotation: str | None) -> int | None:
    """The cost the ReplicaSet sees: absent = 0; unparsable or out of range = None (to be rewritten)."""
    if annotation is None:
        return 0
    try:
        value = int(annotation.strip())
    except ValueError:
        return None
    return value if INT32_MIN <= value <= INT32_MAX else None


def plan(observed: Iterable[Observed], last_patched: dict[str, float], now: float,
         interval: float = MIN_INTERVAL, limit: int = MAX_PATCHES) -> list[Patch]:
    """The patches of one pass. ``last_patched``: pod → monotonic time of its
    last patch (the caller records successful patches and forgets pods gone)."""
    due: list[tuple[int, str, int]] = []
    for obs in observed:
        want, have = cost(obs.busy), current(obs.annotation)
        if have == want:
            continue
        at = last_patched.get(obs.pod)
        if at is not None and now - at < interval:
            continue
        gap = INT32_MAX if have is None else abs(want - have)
        due.append((-gap, obs.pod, want))
    due.sort()
    return [Patch(pod, want) for _, pod, want in due[:max(0, limit)]]


def body(patch: Patch) -> dict:
    """The merge patch of one pod (the annotation value is a string)."""
    return {"metadata": {"annotations": {ANNOTATION: str(patch.cost)}}}
