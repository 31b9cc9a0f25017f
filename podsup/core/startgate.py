"""When a new worker counts: the start gate (pure).

A worker is *starting* until it can take work. Only then does a rolling
reload or a recycle stop the worker it replaces, and only then does it count
for ``/readyz``, ``podsup_workers{state}`` and the status table — so a worker
that needs seconds to boot (a PHP framework, a Python app loading a model)
never leaves the pool short while ``status`` says it is full.

podsup tells the two kinds of worker apart by what it has heard, so the user
never has to say which kind theirs is:

* once any worker of the pool has sent a report (any line of the protocol:
  ``idle``, ``heartbeat``, ...), the pool *speaks the protocol*: every new
  worker is starting until its own first report. One that has not reported
  after ``--start-timeout`` is killed and replaced (restart reason
  ``start-timeout``); ``--start-timeout 0`` waits for ever.
* until then (and for ever in a pool whose workers never report) a worker
  counts once it has stayed up ``--start-period`` (default 1 s): liveness by
  process, today's rule.

A worker's first report promotes it at once (the loop does that when the
report arrives); this module decides only for workers that have not reported.
"""
from __future__ import annotations

import enum

#: Default --start-period: a worker that sends no report counts after this long.
START_PERIOD = 1.0
#: Default --start-timeout: a protocol worker silent this long after its start is replaced.
START_TIMEOUT = 60.0
#: Restart reason of a worker replaced because it never reported.
REASON = "start-timeout"


class Verdict(enum.Enum):
    """What to do with a starting worker that has not reported yet."""

    WAIT = "wait"          #: keep it starting (not counted, its predecessor keeps serving)
    UP = "up"              #: it counts from now on
    TIMEOUT = "timeout"    #: kill it and start another in its slot


def verdict(age: float, pool_reports: bool, start_period: float = START_PERIOD,
            start_timeout: float = START_TIMEOUT) -> Verdict:
    """The verdict for a worker up ``age`` seconds that has not reported yet.

    ``pool_reports``: some worker of this pool has reported since podsup
    started (the pool speaks the protocol).
    """
    if pool_reports:
        if start_timeout > 0 and age >= start_timeout:
            return Verdict.TIMEOUT
        return Verdict.WAIT
    return Verdict.UP if age >= start_period else Verdict.WAIT


def due(started: float, pool_reports: bool, start_period: float = START_PERIOD,
        start_timeout: float = START_TIMEOUT) -> float | None:
    """When :func:`verdict` next changes for a worker started at ``started``
    (the same clock), or None if it never changes by itself (a protocol worker
    under ``--start-timeout 0`` waits for its report)."""
    if pool_reports:
        return started + start_timeout if start_timeout > 0 else None
    return started + start_period
