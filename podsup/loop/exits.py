"""Reaped workers: why each ended, what replaces it, and the crash-storm window.

An end podsup asked for (stop, drain, reload, recycle, scale-down) is only
logged; any other is a crash: backoff and crash-storm bookkeeping
(podsup.core.policy) schedule the slot's refill, a normal exit code marks
the slot done (job mode). What a worker leaves in its process group is
stopped too, and SIGKILLed at its deadline.
"""
from __future__ import annotations

import signal
from typing import Any

from podsup.core import policy
from podsup.core.states import WorkerState
from podsup.host.system import ExitStatus
from podsup.loop.spawning import Launched, LaunchFailed
from podsup.loop.state import LoopState
from podsup.loop.table import Slot, Worker


class Exits(LoopState):
    """Mixed into the Arbiter; the loop state it shares is declared in podsup.loop.state."""

    def _on_exit(self, status: ExitStatus) -> None:
        known = self.workers.get(status.pid)
        launch = None
        if known is not None:
            launch = self._launch_replacement(known, status)
            # everything the worker sent is queued by the time it can be reaped:
            # read it while the worker is still ours, so its last `done` counts for it
            self._read_reports(known)
            self._close_report(known)
        worker = self.workers.pop(status.pid, None)
        if worker is None:
            self.orphans_reaped += 1
            self.log.info("reaped orphan", pid=status.pid,
                          status=policy.describe_exit(status.code, status.signal))
            return
        now = self.system.monotonic()
        uptime = now - worker.started
        oom = status.signal == signal.SIGKILL and not worker.killed and self.oom.rose()
        description = policy.describe_exit(status.code, status.signal, oom)
        self.exits[description] += 1
        slot = self.slots.get(worker.slot)
        for ext in self.extensions:
            self._hook(ext, "on_exit", worker.slot, worker.pid, description)
        if slot is not None:
            slot.last_exit = description  # a replaced (recycled, reloaded) worker's end too
            if slot.current is worker:
                slot.current = None
        requested = worker.state is WorkerState.STOPPING or worker.retiring or slot is None
        fields = dict(slot=worker.slot, pid=worker.pid, status=description, uptime=f"{uptime:.2f}s")
        if requested or self.draining or self.stopping or (slot is not None and slot.current is not None):
            self.log.info("worker stopped", **fields, killed=worker.killed or None)
            if worker.state is WorkerState.STOPPING:
                if self.system.group_alive(worker.pid):
                    deadline = now if worker.killed else (worker.stop_deadline or now)
                    self.lingering[worker.pid] = deadline
                    self.log.info("worker's process group still has members: waiting for them",
                                  slot=worker.slot, pgid=worker.pid)
            else:  # it ended by itself (during a drain, or replaced): what it left is stopped too
                self._stop_leftovers(worker, now)
            return
        self._stop_leftovers(worker, now)
        if policy.is_done(status.code, self.config.normal_exit_codes):
            slot.done = True
            self.log.info("worker done", **fields)
            return
        if oom:
            self.log.warning("worker killed by the out-of-memory killer", **fields)
        self._crashed(slot, uptime, description, policy.restart_reason(status.code, status.signal), fields)
        if launch is not None:  # scheduled at once (delay 0): its process is already there
            self._respawn(slot, slot.restart_reason, launch)

    def _launch_replacement(self, worker: Worker, status: ExitStatus) -> Launched | LaunchFailed | None:
        """The replacement process of a crashed worker whose slot is refilled at
        once, started before the dead worker's bookkeeping (its last reports,
        its socket, the OOM check, plug-ins' on_exit, log lines), which runs
        next and then adopts it (:meth:`_respawn`) in the order it always had.

        Only where :meth:`_on_exit` would schedule the refill with no delay,
        checked with the same rules and nothing changed: a crash (not a
        requested end, not during a drain or stop, not a normal exit code) of
        the slot's current worker, no crash storm now nor one this exit would
        start, no backoff for the slot, and no command waiting for this
        iteration (a scale-down or drain queued before the exit still comes
        first). Anything else returns None and is refilled by ``_advance``
        as before. issue 13: the bookkeeping was ~0.5 ms of the crash ->
        replacement latency.
        """
        slot = self.slots.get(worker.slot)
        if (slot is None or slot.current is not worker or worker.state is WorkerState.STOPPING
                or worker.retiring or self.draining or self.stopping or self.crash_loop or self._commands
                or policy.is_done(status.code, self.config.normal_exit_codes)):
            return None
        now = self.system.monotonic()
        self.crash.threshold = self._crash_threshold()  # as _update_crash_loop sets it
        if self.crash.would_storm(now):
            return None
        if policy.plan_respawn(slot.failures, now - worker.started, self.config.backoff_max, False).delay > 0:
            return None
        return self._launch(slot)

    def _crashed(self, slot: Slot, uptime: float, description: str, reason: str,
                 fields: dict[str, Any] | None = None, event: str = "worker exited", level: str = "info",
                 extra: dict[str, Any] | None = None) -> None:
        """An unrequested end of a slot's worker: schedule its replacement."""
        now = self.system.monotonic()
        slot.last_exit = description
        self.crash.record(now)
        self._update_crash_loop(now)
        plan = policy.plan_respawn(slot.failures, uptime, self.config.backoff_max, self.crash_loop)
        slot.failures = plan.failures
        slot.restart_reason = reason
        slot.respawn_at = now + plan.delay
        if fields is not None:
            self.log.event(event, level, **fields, **(extra or {}), respawn_in=f"{plan.delay:.2f}s",
                           crash_loop=self.crash_loop or None)

    def _crash_threshold(self) -> int:
        """--crashloop-threshold, or scaled to the pool's size (--max-workers in dynamic mode)."""
        bounds = getattr(self, "bounds", None)
        return policy.crashloop_threshold(self.config.crashloop_threshold,
                                          bounds.maximum if bounds is not None else self.desired)

    def crash_loop_for(self, now: float) -> float | None:
        """Seconds the current crash storm has lasted, None outside one."""
        if not self.crash_loop or self.crash_loop_since is None:
            return None
        return max(0.0, now - self.crash_loop_since)

    def crash_loop_fatal(self, now: float) -> bool:
        """The storm has lasted --crashloop-restart-after: liveness fails."""
        return policy.storm_fails_liveness(self.crash_loop_for(now), self.config.crashloop_restart_after)

    def _update_crash_loop(self, now: float) -> None:
        self.crash.threshold = self._crash_threshold()  # follows scale and dynamic sizing
        storm = self.crash.in_crash_loop(now)
        if storm == self.crash_loop:
            if storm and self.crash_loop_fatal(now) and not self._fatal_logged:
                self._fatal_logged = True
                self.log.error("crash loop lasted --crashloop-restart-after: liveness fails now (a pod restart "
                               "is the last resort)", crashloop_restart_after=f"{self.config.crashloop_restart_after:g}s")
            return
        self.crash_loop = storm
        self.crash_loop_since = now if storm else None
        self._fatal_logged = False
        if storm:
            after = self.config.crashloop_restart_after
            self.log.error("crash loop: too many worker exits; not ready, respawns slowed",
                           exits=len(self.crash.times), within=f"{self.config.crashloop_interval:g}s",
                           threshold=self.crash.threshold,
                           liveness_fails_after=f"{after:g}s" if after > 0 else "never")
        else:
            self.log.info("crash loop over")

    def _stop_leftovers(self, worker: Worker, now: float) -> None:
        """A worker that crashed or finished may leave members of its process
        group behind (a shell's background jobs): they belong to that worker,
        not to its replacement — stop them like a stopped worker's group
        (stop signal now, SIGKILL after the graceful timeout)."""
        if not self.system.group_alive(worker.pid):
            return
        self.system.killpg(worker.pid, self.config.stop_signal)
        self.lingering[worker.pid] = now + self.config.graceful_timeout
        self.log.info("worker's process group outlived it: stop signal sent to the rest",
                      slot=worker.slot, pgid=worker.pid, signal=signal.Signals(self.config.stop_signal).name)

    def _advance_lingering(self, now: float) -> None:
        """SIGKILL what is left of a stopped worker's group at its deadline."""
        for pgid, deadline in list(self.lingering.items()):
            if not self.system.group_alive(pgid):
                del self.lingering[pgid]
            elif now >= deadline:
                self.log.warning("process group outlived its worker's graceful timeout: SIGKILL", pgid=pgid)
                self.lingering[pgid] = float("inf")  # wait for it to be gone
                if self.draining or self.stopping:
                    self.killed_any = True
                self.system.killpg(pgid, signal.SIGKILL)
