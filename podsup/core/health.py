"""Liveness and readiness: the one definition, shared by /healthz, /readyz
(podsup.plugins.http) and the pool snapshot's ``healthy``/``ready``
(``podsup status``), as pure functions over a small :class:`HealthView`.
"""
from __future__ import annotations

import dataclasses

from podsup.core.snapshot import PoolSnapshot
from podsup.core.states import WorkerState

#: /healthz fails when the loop has not ticked for this long (it ticks >= 1/s).
STALE_AFTER = 5.0


def liveness(tick_age: float | None, crash_loop: bool, stale_after: float = STALE_AFTER) -> tuple[bool, str]:
    """(healthy, reason) from the age of the loop's last tick."""
    if tick_age is None:
        return False, "the master loop has not ticked yet"
    if tick_age > stale_after:
        return False, f"the master loop is stuck: no tick for {tick_age:.1f}s"
    if crash_loop:
        return False, "crash loop past --crashloop-restart-after: workers exit faster than --crashloop-threshold allows"
    return True, "ok"


@dataclasses.dataclass(frozen=True)
class HealthView:
    """What the health answers need, and nothing that costs a psutil scan."""

    desired: int
    up: int              #: workers that have started serving (idle or busy)
    draining: bool       #: draining or stopping
    crash_loop: bool
    exiting: bool = False
    #: the storm has lasted --crashloop-restart-after: liveness fails (readiness fails at once)
    crash_loop_fatal: bool = False

    @classmethod
    def from_snapshot(cls, snap: PoolSnapshot) -> "HealthView":
        up = sum(1 for w in snap.workers if w.state in (WorkerState.IDLE, WorkerState.BUSY))
        return cls(desired=snap.desired, up=up, draining=snap.draining, crash_loop=snap.crash_loop,
                   crash_loop_fatal=snap.crash_loop_fatal)


def readiness(view: HealthView | None, needed: int, draining: bool) -> tuple[bool, str]:
    """(ready, reason): not draining, no crash storm, at least ``needed`` workers up."""
    if draining or (view is not None and view.draining):
        return False, "draining"
    if view is None:
        return False, "no state from the master loop yet"
    if view.exiting:
        return False, "exiting"
    if view.crash_loop:
        return False, "crash loop"
    if view.up < needed:
        if view.desired == 0:
            return False, "scaled to 0 workers"
        return False, f"{view.up} of {needed} required workers ready"
    return True, f"{view.up} workers ready"


