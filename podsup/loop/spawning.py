"""Forking a slot's worker: its environment, report socket, output pumps.

A spawn that cannot even start (EMFILE, an exec error) is a failed start,
retried with backoff like a crash (podsup.loop.exits). Each worker's stdout
and stderr are pumped line by line into podsup's log from the loop's selector.
"""
from __future__ import annotations

import os
import selectors

from podsup import names
from podsup.host.output import LinePump
from podsup.host.reports import ReportSocket
from podsup.loop.state import LoopState
from podsup.loop.table import Slot, Worker


class Spawning(LoopState):
    """Mixed into the Arbiter; the loop state it shares is declared in podsup.loop.state."""

    def _worker_env(self, slot: Slot, report_path: str | None = None) -> dict[str, str]:
        env = dict(os.environ)
        env[names.ENV_WORKER_ID] = str(slot.id)
        env[names.ENV_WORKERS] = str(self.desired)
        if report_path is not None:
            env[names.ENV_REPORT] = report_path
        for ext in self.extensions:
            extra = self._hook(ext, "worker_env", slot.id)
            if extra:
                env.update({str(k): str(v) for k, v in extra.items()})
        return env

    def _spawn(self, slot: Slot) -> Worker | None:
        slot.respawn_at = None
        opened: list[int] = []
        report: ReportSocket | None = None
        try:  # what the worker gets: its report socket and two pipes (EMFILE is a failed start)
            report = self.reports.open() if self.reports is not None else None
            env = self._worker_env(slot, report.path if report else None)
            for _ in range(2):
                opened.extend(os.pipe())
        except OSError as exc:
            self._cannot_start(slot, exc, opened, report)
            return None
        out_r, out_w, err_r, err_w = opened
        try:
            if self.preload is not None:
                with self.log.exclusive():
                    pid = self.system.fork_call(self.preload, env, out_w, err_w, self.keep_fds)
            else:
                pid = self.system.spawn(list(self.config.command), env, out_w, err_w)
        except OSError as exc:
            self._cannot_start(slot, exc, [out_r, err_r], report)
            return None
        finally:
            os.close(out_w)
            os.close(err_w)
        now, wall = self.system.monotonic(), self.system.wall()
        worker = Worker(slot.id, pid, now, wall)
        self.workers[pid] = worker
        slot.current = worker
        if report is not None:
            worker.report = report
            self._add_report_socket(worker)
        for fd, stream in ((out_r, "stdout"), (err_r, "stderr")):
            self._add_pump(fd, slot.id, pid, stream)
        self.log.info("worker started", slot=slot.id, pid=pid)
        for ext in self.extensions:
            self._hook(ext, "on_spawn", slot.id, pid)
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

    def _respawn(self, slot: Slot, reason: str) -> Worker | None:
        slot.restarts += 1
        self.restarts[reason] += 1
        return self._spawn(slot)

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
