"""Reading the pool from any thread: the snapshot, the health view, the pool state.

``snapshot()`` copies the worker table under the loop's lock, then measures
RSS/CPU outside it (podsup.host.procfs: each worker's family walked down
from the worker, one /proc read per member); ``health()`` is the
lock-free, measurement-free read /readyz makes per request.
"""
from __future__ import annotations

import os

import podsup
from podsup.core.health import HealthView, liveness, readiness
from podsup.core.snapshot import PoolSnapshot, WorkerSnapshot
from podsup.core.states import PoolState, WorkerState
from podsup.host.procfs import UsageMeter
from podsup.loop.state import LoopState


class PoolView(LoopState):
    """Mixed into the Arbiter; the loop state it shares is declared in podsup.loop.state."""

    def _init_view(self) -> None:
        self._meter = UsageMeter()

    def snapshot(self, measure: bool = True, usage_max_age: float = 0.0) -> PoolSnapshot:
        """A consistent, immutable view of the pool (thread-safe).

        ``measure=False`` skips the RSS/CPU readings (zeros instead):
        cheap enough for a health check every second. ``usage_max_age``:
        RSS/CPU readings up to that many seconds old may be reused
        (podsup.host.procfs.UsageMeter.measure).
        """
        with self._lock:
            now = self.system.monotonic()
            rows = []
            for slot in sorted(self.slots.values(), key=lambda s: s.id):
                if slot.current is None:
                    rows.append((slot, None))
            for worker in self.workers.values():
                rows.append((self.slots.get(worker.slot), worker))
            raw = []
            for slot, worker in rows:
                slot_id = worker.slot if worker else slot.id
                raw.append(dict(
                    id=slot_id,
                    pid=worker.pid if worker else None,
                    state=worker.state if worker else None,
                    started_at=worker.started_wall if worker else None,
                    uptime=now - worker.started if worker else 0.0,
                    requests=worker.requests if worker else 0,
                    qps=worker.rate.rate(now, now - worker.started) if worker else 0.0,
                    restarts=slot.restarts if slot else 0,
                    last_exit=slot.last_exit if slot else None,
                    busy_since=worker.busy_since if worker else None,
                    last_heartbeat=worker.last_heartbeat if worker else None,
                ))
            raw.sort(key=lambda r: (r["id"], r["started_at"] or 0.0))
            running = sum(1 for w in self.workers.values() if w.state.running)
            # the one definition of ready/healthy, shared with /readyz and /healthz
            ready = readiness(self.health(), self.config.ready_needed(self.desired), False)[0]
            healthy = liveness(now - self.last_loop, self.crash_loop_fatal(now))[0] and self.exit_code is None
            pool = dict(
                version=podsup.__version__, started_at=self.started_wall, uptime=now - self.started,
                state=self.pool_state, desired=self.desired, running=running, ready=ready,
                healthy=healthy, draining=self.draining or self.stopping, crash_loop=self.crash_loop,
                exits=dict(self.exits), restarts=dict(self.restarts), queues=self._fresh_queues(now),
                malformed_reports=self.malformed_reports, lingering=len(self.lingering),
                crash_loop_seconds=self.crash_loop_for(now) or 0.0, crash_loop_fatal=self.crash_loop_fatal(now),
                dynamic=self.bounds is not None,
                min_workers=self.bounds.minimum if self.bounds else self.desired,
                max_workers=self.bounds.maximum if self.bounds else self.desired,
            )
        workers = []
        usage = self._usage([r["pid"] for r in raw if r["pid"]], usage_max_age) if measure else {}
        for r in raw:
            rss, cpu = usage.get(r["pid"], (0, 0.0))
            workers.append(WorkerSnapshot(rss_bytes=rss, cpu_percent=cpu, **r))
        try:
            load = os.getloadavg()
        except OSError:  # pragma: no cover
            load = (0.0, 0.0, 0.0)
        return PoolSnapshot(workers=tuple(workers), loadavg=load, **pool)

    def health(self) -> HealthView:
        """Read in the loop thread at each tick, and by /readyz live from an
        HTTP thread (flag reads and one copy of the worker table, no lock): a
        full ``snapshot()`` measures every worker's processes, far too costly
        for that."""
        workers = list(self.workers.values())
        return HealthView(desired=int(self.desired),
                          up=sum(1 for w in workers if w.state in (WorkerState.IDLE, WorkerState.BUSY)),
                          draining=bool(self.draining or self.stopping),
                          crash_loop=bool(self.crash_loop),
                          exiting=self.exit_code is not None,
                          crash_loop_fatal=self.crash_loop_fatal(self.system.monotonic()))

    @property
    def pool_state(self) -> PoolState:
        if self.stopping:
            return PoolState.STOPPING
        if self.draining:
            return PoolState.DRAINING
        if self.crash_loop:
            return PoolState.CRASH_LOOP
        return PoolState.RUNNING

    def _usage(self, pids: list[int], max_age: float = 0.0) -> dict[int, tuple[int, float]]:
        """RSS and CPU% of each worker and its descendants (podsup.host.procfs)."""
        return self._meter.measure(pids, max_age)
