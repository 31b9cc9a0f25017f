"""Forking a slot's worker: its environment, report socket, output pumps.

A spawn that cannot even start (EMFILE, an exec error) is a failed start,
retried with backoff like a crash (podsup.loop.exits). Each worker's stdout
and stderr are pumped line by line into podsup's log from the loop's selector.
"""
from __future__ import annotations

import os
import selectors
from typing import NamedTuple

from podsup import names
from podsup.host.output import LinePump
from podsup.host.reports import ReportSocket
from podsup.loop.state import LoopState
from podsup.loop.table import Slot, Worker


class Launched(NamedTuple):
    """A worker process just started, not yet in the loop's table."""

    pid: int
    out_r: int
    err_r: int
    report: ReportSocket | None
    started: float        #: monotonic
    started_wall: float


class LaunchFailed(NamedTuple):
    """A start that failed, and what was opened for it (released by _cannot_start)."""

    error: OSError
    fds: list[int]
    report: ReportSocket | None


class Spawning(LoopState):
    """Mixed into the Arbiter; the loop state it shares is declared in podsup.loop.state."""

    def _worker_env(self, slot: Slot, report_path: str | None = None) -> dict[str, str]:
        env = self._inherited_env().copy()
        env[names.ENV_WORKER_ID] = str(slot.id)
        env[names.ENV_WORKERS] = str(self.desired)
        if report_path is not None:
            env[names.ENV_REPORT] = report_path
        for ext in self.extensions:
            extra = self._hook(ext, "worker_env", slot.id)
            if extra:
                env.update({str(k): str(v) for k, v in extra.items()})
        return env

    def _inherited_env(self) -> dict[str, str]:
        """podsup's own environment as a dict, decoded once and kept until it
        changes: ``dict(os.environ)`` decodes every variable on each call (56 us
        for 35 variables here, far more for a pod's hundreds of service links),
        and it ran on the crash -> replacement path. The raw bytes mapping is
        compared instead (a dict equality, ~1 us), so a change made in the
        master (a --preload module's import) is still seen by the next worker."""
        raw = getattr(os.environ, "_data", None)  # os._Environ's bytes mapping
        cached = self._env_cache
        if raw is None or cached is None or cached[0] != raw:
            cached = self._env_cache = (dict(raw) if raw is not None else None, dict(os.environ))
        return cached[1]

    def _spawn(self, slot: Slot) -> Worker | None:
        return self._adopt(slot, self._launch(slot))

    def _launch(self, slot: Slot) -> Launched | LaunchFailed:
        """Start the slot's worker process and nothing else: its report socket,
        environment and output pipes, then spawn (or fork). What the loop does
        with the new process (table, selector, log, plug-ins) is
        :meth:`_adopt`'s, so a crash's replacement can be started before the
        dead worker's bookkeeping (podsup.loop.exits)."""
        opened: list[int] = []
        report: ReportSocket | None = None
        try:  # what the worker gets: its report socket and two pipes (EMFILE is a failed start)
            report = self.reports.open() if self.reports is not None else None
            env = self._worker_env(slot, report.path if report else None)
            for _ in range(2):
                opened.extend(os.pipe())
        except OSError as exc:
            return LaunchFailed(exc, opened, report)
        out_r, out_w, err_r, err_w = opened
        try:
            if self.preload is not None:
                with self.log.exclusive():
                    pid = self.system.fork_call(self.preload, env, out_w, err_w, self.keep_fds)
            else:
                pid = self.system.spawn(list(self.config.command), env, out_w, err_w)
        except OSError as exc:
            return LaunchFailed(exc, [out_r, err_r], report)
        finally:
            os.close(out_w)
            os.close(err_w)
        return Launched(pid, out_r, err_r, report, self.system.monotonic(), self.system.wall())

    def _adopt(self, slot: Slot, launch: Launched | LaunchFailed) -> Worker | None:
        """Make a launched process the slot's worker (or handle its failed start)."""
        slot.respawn_at = None
        if isinstance(launch, LaunchFailed):
            self._cannot_start(slot, launch.error, launch.fds, launch.report)
            return None
        pid, report = launch.pid, launch.report
        worker = Worker(slot.id, pid, launch.started, launch.started_wall)
        self.workers[pid] = worker
        slot.current = worker
        if report is not None:
            worker.report = report
            self._add_report_socket(worker)
        for fd, stream in ((launch.out_r, "stdout"), (launch.err_r, "stderr")):
            self._add_pump(fd, slot.id, pid, stream)
        self.log.info("worker started", slot=slot.id, pid=pid)
        for ext in self.extensions:
            self._hook(ext, "on_spawn", slot.id, pid)
        if self.reports is not None:
            self.reports.prepare()  # the next worker's socket, off the next spawn's path
        return worker

    def _cannot_start(self, slot: Slot, exc: OSError, fds: list[int], report: ReportSocket | None) -> None:
        """A spawn failed (EMFILE, exec error): release what was opened for the
        worker, log why, and schedule a retry with backoff like a crash."""
        for fd in fds:
            os.close(fd)
        if report is not None:
            report.close()
        program = self.config.command[0] if self.config.command else self.config.preload
        hint = None
        if isinstance(exc, FileNotFoundError) and program and os.path.exists(str(program)):
            hint = "the program exists: its #! interpreter (or a library it needs) is missing"
        self._crashed(slot, uptime=0.0, description="spawn error", reason="exit",
                      fields=dict(slot=slot.id, status="spawn error"), event="cannot start worker",
                      level="error", extra=dict(command=program, error=exc.strerror or str(exc), hint=hint))

    def _respawn(self, slot: Slot, reason: str, launch: Launched | LaunchFailed | None = None) -> Worker | None:
        """Refill ``slot`` (counted as a restart); ``launch``: its process, already started."""
        slot.restarts += 1
        self.restarts[reason] += 1
        return self._adopt(slot, launch if launch is not None else self._launch(slot))

    def _add_pump(self, fd: int, slot: int, pid: int, stream: str) -> None:
        pump = LinePump(fd, lambda line: self.log.worker_line(slot, pid, stream, line))
        self._pumps[fd] = pump

        def on_readable() -> None:
            if not pump.read():
                self._close_pump(fd)
        self._selector.register(fd, selectors.EVENT_READ, on_readable)

    def _close_pump(self, fd: int) -> None:
        if self._pumps.pop(fd, None) is not None:
            try:
                self._selector.unregister(fd)
            except (KeyError, ValueError):
                pass
            os.close(fd)

    @staticmethod
    def _readable(fd: int) -> bool:
        import select
        poller = select.poll()  # not select(): descriptors past 1,024 are common with big pools
        poller.register(fd, select.POLLIN)
        return any(mask & (select.POLLIN | select.POLLHUP) for _fd, mask in poller.poll(0))
