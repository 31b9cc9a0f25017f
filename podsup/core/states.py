"""The states of a worker and of the pool (explicit, like supervisor's states.py).

The master loop is the only place that changes them, through one transition
function per table (see podsup.loop.arbiter), which also updates metrics and logs.
"""
from __future__ import annotations

import enum


class WorkerState(enum.Enum):
    """State of one worker process (exported as podsup_workers{state=...})."""

    #: Forked/exec'd, not yet known to be serving (no report yet and not up
    #: for the start-up period).
    STARTING = "starting"
    #: Running and not inside a job.
    IDLE = "idle"
    #: Running and inside a job (the worker said ``busy``).
    BUSY = "busy"
    #: Asked to stop (stop signal sent), not yet reaped.
    STOPPING = "stopping"

    @property
    def running(self) -> bool:
        """True for a worker that counts toward capacity."""
        return self in (WorkerState.STARTING, WorkerState.IDLE, WorkerState.BUSY)


class PoolState(enum.Enum):
    """State of the whole supervisor (``podsup status`` header, /healthz)."""

    RUNNING = "running"
    #: Graceful stop in progress: readiness is off, workers are being stopped.
    DRAINING = "draining"
    #: More than --crashloop-threshold exits within --crashloop-interval.
    CRASH_LOOP = "crash-loop"
    #: Fast stop in progress.
    STOPPING = "stopping"
