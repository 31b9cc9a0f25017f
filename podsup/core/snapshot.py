"""Plain-data views of the pool, the contract between the master loop and
everything that only looks at it (status, /metrics, /healthz, /readyz).

The master loop builds a :class:`PoolSnapshot` on request (``Arbiter.snapshot()``);
readers never touch the live worker table, so no lock is shared with the loop
beyond the hand-over of one immutable object.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from podsup.core.states import PoolState, WorkerState


@dataclasses.dataclass(frozen=True)
class WorkerSnapshot:
    id: int                      #: the slot (PODSUP_WORKER_ID)
    pid: int | None              #: None while the slot waits for a respawn
    state: WorkerState | None    #: None while the slot has no process
    started_at: float | None     #: wall-clock (time.time()) of the spawn
    uptime: float                #: seconds since spawn (0 without a process)
    rss_bytes: int               #: RSS of the worker and its children
    cpu_percent: float
    requests: int                #: ``done`` reports of this process
    qps: float                   #: requests/s of this process, rolling window
    restarts: int                #: respawns of this slot since podsup started
    last_exit: str | None        #: e.g. "exit 1", "signal SIGKILL", "oom"
    busy_since: float | None = None  #: wall-clock of the last ``busy`` report
    last_heartbeat: float | None = None  #: wall-clock of the last report of any kind

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["state"] = self.state.value if self.state else None
        return data


@dataclasses.dataclass(frozen=True)
class PoolSnapshot:
    version: str
    started_at: float            #: wall-clock of podsup's start
    uptime: float
    state: PoolState
    desired: int                 #: target number of workers
    running: int                 #: workers in a running state
    ready: bool                  #: what /readyz answers
    healthy: bool                #: what /healthz answers
    draining: bool
    crash_loop: bool
    exits: dict[str, int]        #: exit counts by "exit N" / "signal NAME" / "oom"
    restarts: dict[str, int]     #: restarts by reason (exit|signal|rss|requests|lifetime|heartbeat|timeout)
    workers: tuple[WorkerSnapshot, ...]
    loadavg: tuple[float, float, float] = (0.0, 0.0, 0.0)
    queues: dict[str, float] = dataclasses.field(default_factory=dict)
    malformed_reports: int = 0   #: report datagrams that were not protocol lines
    lingering: int = 0           #: process groups of exited workers whose other members still run
    crash_loop_seconds: float = 0.0  #: how long the current crash storm has lasted (0: none)
    crash_loop_fatal: bool = False   #: it has lasted --crashloop-restart-after: /healthz fails
    dynamic: bool = False        #: --max-workers given: the pool sizes itself
    min_workers: int = 0         #: dynamic mode's bounds; in a fixed-size pool both are ``desired``
    max_workers: int = 0

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["state"] = self.state.value
        data["workers"] = [w.to_json() for w in self.workers]
        return data
