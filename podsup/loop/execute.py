"""Command execution: Scale, Reload, Drain, FastStop and Recycle, applied by the loop.

Every change a plug-in, the control socket or a signal asks for arrives
here as a podsup.core.commands object, in the loop thread: the one place a
pool is resized, reloaded one slot at a time, drained or stopped fast. A
refused command raises ValueError/RuntimeError, which resolves the caller's
future with that exception.
"""
from __future__ import annotations

import collections
import concurrent.futures
from typing import Any

from podsup.core import commands
from podsup.core.config import MAX_WORKERS
from podsup.core.states import WorkerState
from podsup.host import spawn
from podsup.loop.state import LoopState
from podsup.loop.table import Slot


class CommandExecution(LoopState):
    """Mixed into the Arbiter; the loop state it shares is declared in podsup.loop.state."""

    def _execute(self, command: Any, future: concurrent.futures.Future) -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            result = self._apply(command)
        except (ValueError, RuntimeError, TypeError) as exc:
            future.set_exception(exc)
        else:
            future.set_result(result)

    def _apply(self, command: Any) -> dict[str, Any]:
        if isinstance(command, commands.FastStop):
            self._fast_stop("command")
            return {"stopping": True}
        if isinstance(command, commands.Drain) and self.draining and not self.stopping:
            # a second drain (concurrent preStop calls, SIGTERM came first): the same answer
            return {"draining": True, "already": True, "drain_delay": self.config.drain_delay,
                    "graceful_timeout": self.config.graceful_timeout}
        if self.draining or self.stopping:
            raise RuntimeError("podsup is draining: only a fast stop is accepted")
        if isinstance(command, commands.Scale):
            target = command.absolute if command.absolute is not None else self.desired + command.delta
            return self._scale(target)
        if isinstance(command, commands.Reload):
            return self._reload()
        if isinstance(command, commands.Drain):
            self._drain("command")
            return {"draining": True, "drain_delay": self.config.drain_delay,
                    "graceful_timeout": self.config.graceful_timeout}
        if isinstance(command, commands.Recycle):
            return self._recycle(command.slot, command.reason, command.kill)
        raise TypeError(f"unknown command {command!r}")

    def _scale(self, target: int) -> dict[str, Any]:
        if self.bounds is not None:
            raise ValueError(f"refused in dynamic mode: the pool sizes itself between --min-workers "
                             f"{self.bounds.minimum} and --max-workers {self.bounds.maximum} "
                             f"(now {self.desired}); change those to resize it")
        if not isinstance(target, int) or not 0 <= target <= MAX_WORKERS:
            raise ValueError(f"workers must be an integer 0..{MAX_WORKERS} (got {target})")
        previous = self.desired
        capacity, limit = self.system.worker_capacity()
        if target > previous and target > capacity:
            raise ValueError(f"workers must be at most {capacity} here (got {target}): the open-files "
                             f"limit ({limit}) fits no more, at {spawn.FDS_PER_WORKER} descriptors a worker; "
                             "raise it (ulimit -n, or the container runtime's nofile limit)")
        self.desired = target
        if target != previous:
            self.log.info("scaling", workers=target, previous=previous)
        for slot_id in range(previous, target):
            self.slots[slot_id] = Slot(slot_id)
            self._spawn(self.slots[slot_id])
        for slot_id in range(previous - 1, target - 1, -1):
            slot = self.slots.pop(slot_id, None)
            if slot is not None and slot.current is not None:
                slot.current.retiring = True
                self._stop(slot.current)
        return {"desired": target, "previous": previous}

    def _reload(self) -> dict[str, Any]:
        # every slot again, in order; a slot being replaced now is still waited
        # for first (a HUP during a reload must not start a second new worker in it)
        self.reload_queue = collections.deque(sorted(self.slots))
        self.log.info("reload: replacing workers one at a time", workers=len(self.reload_queue),
                      waiting_for_slot=self.reload_slot)
        self._advance_reload()
        return {"reloading": len(self.slots)}

    def _recycle(self, slot_id: int, reason: str, kill: bool) -> dict[str, Any]:
        slot = self.slots.get(slot_id)
        if slot is None or slot.current is None:
            raise ValueError(f"no running worker in slot {slot_id}")
        old = slot.current
        old.retiring = True
        slot.current = None
        self.log.info("recycling worker", slot=slot_id, pid=old.pid, reason=reason, kill=kill or None)
        new = self._respawn(slot, reason)
        if kill:
            self._stop(old, kill=True)
        return {"slot": slot_id, "old_pid": old.pid, "new_pid": new.pid if new else None}

    def _drain(self, why: str) -> None:
        if self.draining or self.stopping:
            return
        self.draining = True
        self.drain_why = why
        self.reload_queue.clear()
        self.reload_slot = None
        for slot in self.slots.values():
            slot.respawn_at = None
        self.drain_signal_at = self.system.monotonic() + self.config.drain_delay
        self.log.info("graceful stop: readiness off", why=why,
                      drain_delay=f"{self.config.drain_delay:g}s",
                      graceful_timeout=f"{self.config.graceful_timeout:g}s")

    def _fast_stop(self, why: str) -> None:
        if self.stopping:
            return
        self.stopping = True
        self.drain_signal_at = None
        for slot in self.slots.values():
            slot.respawn_at = None
        self.log.info("fast stop: killing every worker", why=why, workers=len(self.workers))
        for worker in list(self.workers.values()):
            self._stop(worker, kill=True)
        for pgid in self.lingering:
            self.lingering[pgid] = self.system.monotonic()

    def _advance_reload(self) -> None:
        while True:
            if self.reload_slot is not None:
                slot = self.slots.get(self.reload_slot)
                if slot is not None and not slot.done and (
                        slot.current is None or slot.current.state is WorkerState.STARTING):
                    return  # wait: the new worker is not up yet (a job worker that is done is past it)
                self.reload_slot = None
            if not self.reload_queue:
                return
            slot = self.slots.get(self.reload_queue.popleft())
            if slot is None or slot.done:
                continue
            if slot.current is not None:
                slot.current.retiring = True
                slot.current = None
            self.reload_slot = slot.id
            self._respawn(slot, "reload")
            if not self.reload_queue:
                self.log.info("reload: last worker replaced")
