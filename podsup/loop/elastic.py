"""The start gate and dynamic mode in the loop: when a new worker counts, and
how many workers the pool runs (issue 11).

The rules are pure (podsup.core.startgate, podsup.core.sizing); this mixin
feeds them the worker table after each turn and carries out their verdicts:
promote a starting worker, kill and replace one silent past
``--start-timeout``, open new slots, retire idle workers gracefully. Loop
thread only.
"""
from __future__ import annotations

from podsup.core import sizing, startgate
from podsup.core.config import Config
from podsup.core.states import WorkerState
from podsup.loop.state import LoopState
from podsup.loop.table import Slot, Worker

#: Dynamic mode warns once when no busy/idle/done report came this long after start.
DYNAMIC_QUIET_WARNING = 10.0


class Elasticity(LoopState):
    """Mixed into the Arbiter; the loop state it shares is declared in podsup.loop.state."""

    def _init_elastic(self, config: Config) -> None:
        #: dynamic mode's bounds (--max-workers given), else None: a fixed-size pool
        self.bounds = sizing.Bounds(config.min_workers, config.max_workers, config.spare_workers,
                                    config.idle_timeout) if config.dynamic else None
        #: some worker has sent a report: the pool speaks the protocol (start gate)
        self.pool_reports = False
        #: some worker has reported busy/idle/done: dynamic sizing has a busy count to follow
        self.pool_jobs = False
        self._quiet_warned = False

    def _heard(self, kind: str) -> None:
        """A report of ``kind`` arrived (from intake)."""
        self.pool_reports = True
        if kind in ("busy", "idle", "done"):
            self.pool_jobs = True

    def _elastic_due(self) -> list[float]:
        """The gate's and the sizing's next timers."""
        due = []
        for worker in self.workers.values():
            if worker.state is WorkerState.STARTING:
                at = startgate.due(worker.started, self.pool_reports, self.config.start_period,
                                   self.config.start_timeout)
                if at is not None:
                    due.append(at)
        if self.bounds is not None:
            at = sizing.next_retire_at(self._slot_views(), self.bounds, self.pool_jobs)
            if at is not None:
                due.append(at)
        return due

    def _gate(self, worker: Worker, now: float) -> None:
        """A starting worker that has not reported yet: count it, keep
        waiting, or replace it (podsup.core.startgate has the rule)."""
        verdict = startgate.verdict(now - worker.started, self.pool_reports, self.config.start_period,
                                    self.config.start_timeout)
        if verdict is startgate.Verdict.UP:
            self._transition(worker, WorkerState.IDLE, "start-up period passed")
        elif verdict is startgate.Verdict.TIMEOUT:
            slot = self.slots.get(worker.slot)
            self.log.warning("worker sent no report within --start-timeout: killing and replacing it",
                             slot=worker.slot, pid=worker.pid,
                             start_timeout=f"{self.config.start_timeout:g}s")
            self._stop(worker, kill=True)
            if slot is not None and slot.current is worker:
                slot.current = None
                self._crashed(slot, now - worker.started, startgate.REASON, startgate.REASON)

    def _slot_views(self) -> list[sizing.SlotView]:
        return [sizing.SlotView(slot.id, slot.current.state if slot.current else None,
                                slot.current.idle_since if slot.current else None)
                for slot in self.slots.values()]

    def _size(self, now: float) -> None:
        """Dynamic mode: follow the busy count within the bounds (podsup.core.sizing
        decides; this starts the new slots and retires idle workers gracefully)."""
        if self.bounds is None:
            return
        plan = sizing.plan(self._slot_views(), self.bounds, now, self.crash_loop, self.pool_jobs)
        if not self.pool_jobs and not self._quiet_warned and now - self.started >= DYNAMIC_QUIET_WARNING:
            self._quiet_warned = True
            self.log.warning("dynamic mode inactive: no worker has reported busy, idle or done; the pool stays "
                             "at its start count until one does (PODSUP_REPORT)", workers=self.desired)
        if plan.start or plan.retire:
            self.log.info("dynamic: resizing", busy=plan.busy, workers=plan.desired, previous=self.desired,
                          start=",".join(map(str, plan.start)) or None,
                          retire=",".join(map(str, plan.retire)) or None)
        self.desired = plan.desired
        for slot_id in plan.start:
            self.slots[slot_id] = Slot(slot_id)
            self._spawn(self.slots[slot_id])
        for slot_id in plan.retire:
            slot = self.slots.pop(slot_id)
            slot.current.retiring = True
            self._stop(slot.current)
