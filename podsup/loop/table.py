"""The worker table's two records: a live worker process and the slot it fills.

Private to the loop (podsup.loop): plug-ins see them only as the immutable
rows of a PoolSnapshot (podsup.core.snapshot). A worker's state changes only
in ``Arbiter._transition``.
"""
from __future__ import annotations

from podsup.core.rate import RollingRate
from podsup.core.states import WorkerState
from podsup.host.reports import ReportSocket


class Worker:
    """One live worker process (the loop's private record)."""

    def __init__(self, slot: int, pid: int, now: float, wall: float) -> None:
        self.slot = slot
        self.pid = pid
        self.started = now
        self.started_wall = wall
        self.state = WorkerState.STARTING
        self.requests = 0
        self.rate = RollingRate()
        self.busy_since: float | None = None      # wall clock
        self.idle_since: float | None = None      # monotonic: when it last became idle (dynamic mode)
        self.last_heartbeat: float | None = None  # wall clock
        self.stop_deadline: float | None = None   # monotonic: SIGKILL then
        self.killed = False     # podsup sent SIGKILL
        self.retiring = False   # replaced (reload/recycle/scale-down): stop once the successor is up
        self.report: ReportSocket | None = None  # its own PODSUP_REPORT socket


class Slot:
    """A worker id (PODSUP_WORKER_ID) and what refills it."""

    def __init__(self, slot_id: int) -> None:
        self.id = slot_id
        self.current: Worker | None = None
        self.failures = 0                    # consecutive short-lived workers (backoff)
        self.restarts = 0
        self.respawn_at: float | None = None  # monotonic
        self.restart_reason = "exit"
        self.last_exit: str | None = None
        self.done = False                    # job mode: exited with a normal code
