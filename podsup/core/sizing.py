"""In-pod elasticity (PHP-FPM's pm=dynamic): how many workers the pool wants,
which new slots to open and which idle workers to retire (pure).

Dynamic mode is on when ``--max-workers`` is given. The pool then follows its
busy count within [``--min-workers``, ``--max-workers``]:

    want = clamp(busy + spare, min, max)

* fewer live workers than ``want``: open the lowest free slots at once (a
  starting worker counts as live, so a load step starts each worker once,
  not once per loop turn until the first has booted);
* more than ``want``: retire idle workers that have been idle at least
  ``--idle-timeout`` (like pm.process_idle_timeout), the highest slots first
  so slot ids stay compact; a busy or starting worker is never retired;
* a crash storm freezes growth (more workers would only crash more), not
  retirement.

"Live" is every slot with a worker that counts toward capacity (starting,
idle, busy) or waiting for its respawn after a crash. Workers being stopped
(retired, replaced) are not live: their successors or their absence are.

The loop (podsup.arbiter) hands :func:`plan` a view of its slots after every
turn and obeys the :class:`Plan`; nothing here knows about processes.
"""
from __future__ import annotations

import dataclasses
from typing import Iterable

from podsup.core.states import WorkerState

#: Default --idle-timeout: an idle worker above min + spare retires after this.
IDLE_TIMEOUT = 10.0
#: Default --min-workers and --spare-workers.
MIN_WORKERS = 1
SPARE_WORKERS = 1


@dataclasses.dataclass(frozen=True)
class Bounds:
    """--min-workers, --max-workers, --spare-workers, --idle-timeout."""

    minimum: int
    maximum: int
    spare: int = SPARE_WORKERS
    idle_timeout: float = IDLE_TIMEOUT

    def clamp(self, count: int) -> int:
        return max(self.minimum, min(self.maximum, count))


@dataclasses.dataclass(frozen=True)
class SlotView:
    """One slot as the policy sees it."""

    id: int
    #: the state of the slot's current worker; None while it waits for a respawn
    state: WorkerState | None
    #: monotonic time its worker last became idle (None unless IDLE)
    idle_since: float | None = None

    @property
    def live(self) -> bool:
        return self.state is None or self.state.running


@dataclasses.dataclass(frozen=True)
class Plan:
    desired: int                    #: live workers once the plan is carried out
    start: tuple[int, ...] = ()     #: new slots to open (ids, lowest free first)
    retire: tuple[int, ...] = ()    #: slots whose idle worker retires
    want: int = 0                   #: clamp(busy + spare, min, max)
    busy: int = 0


def want(busy: int, bounds: Bounds) -> int:
    """Workers the pool aims at with ``busy`` busy ones."""
    return bounds.clamp(busy + bounds.spare)


def free_ids(used: Iterable[int], count: int) -> tuple[int, ...]:
    """The ``count`` lowest slot ids not in ``used`` (a retired slot's id is reused first)."""
    taken = set(used)
    out: list[int] = []
    candidate = 0
    while len(out) < count:
        if candidate not in taken:
            out.append(candidate)
        candidate += 1
    return tuple(out)


def plan(slots: Iterable[SlotView], bounds: Bounds, now: float, crash_loop: bool = False,
         active: bool = True) -> Plan:
    """What to start and retire now.

    ``active`` is False until some worker has reported ``busy``/``idle``/
    ``done``: without those reports the busy count means nothing, and the pool
    stays at its start count.
    """
    views = list(slots)
    live = [s for s in views if s.live]
    busy = sum(1 for s in live if s.state is WorkerState.BUSY)
    target = want(busy, bounds)
    if not active:
        return Plan(desired=len(live), want=target, busy=busy)
    start: tuple[int, ...] = ()
    retire: tuple[int, ...] = ()
    if len(live) < target and not crash_loop:
        start = free_ids((s.id for s in views), target - len(live))
    elif len(live) > target:
        expired = [s for s in live if idle_for(s, now) >= bounds.idle_timeout]
        expired.sort(key=lambda s: s.id, reverse=True)
        retire = tuple(s.id for s in expired[: len(live) - target])
    return Plan(desired=len(live) + len(start) - len(retire), start=start, retire=retire,
                want=target, busy=busy)


def idle_for(slot: SlotView, now: float) -> float:
    """Seconds the slot's worker has been idle (-inf unless it is idle now)."""
    if slot.state is not WorkerState.IDLE or slot.idle_since is None:
        return float("-inf")
    return now - slot.idle_since


def next_retire_at(slots: Iterable[SlotView], bounds: Bounds, active: bool = True) -> float | None:
    """When an idle worker next passes ``--idle-timeout`` while the pool is
    above its target (a timer for the loop), or None."""
    views = [s for s in slots if s.live]
    if not active:
        return None
    busy = sum(1 for s in views if s.state is WorkerState.BUSY)
    if len(views) <= want(busy, bounds):
        return None
    times = [s.idle_since + bounds.idle_timeout for s in views
             if s.state is WorkerState.IDLE and s.idle_since is not None]
    return min(times) if times else None


def saturation(busy: int, capacity: int) -> float:
    """podsup_pool_saturation: busy / --max-workers (busy / desired in a
    fixed-size pool), 0..1 — the in-pod headroom left. The HPA reads this so a
    pod scales out only when its own pool cannot grow any more."""
    if capacity <= 0:
        return 0.0
    return min(1.0, busy / capacity)
