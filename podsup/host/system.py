"""The seam between the master loop and the operating system.

Everything the loop does to processes (spawn, fork, signal a process group,
reap) and every clock read goes through a :class:`System`, so the loop's
policy can be unit-tested against :class:`FakeSystem` without processes and
without waiting for real time to pass.  The real implementation is a thin
wrapper: no decision is taken here.
"""
from __future__ import annotations

import dataclasses
import errno
import os
import signal
import time
from typing import Callable

from podsup.host import spawn


@dataclasses.dataclass(frozen=True)
class ExitStatus:
    """How a reaped process ended: exactly one of ``code``/``signal`` is set."""

    pid: int
    code: int | None = None
    signal: int | None = None

    @classmethod
    def from_wait_status(cls, pid: int, status: int) -> "ExitStatus":
        if os.WIFSIGNALED(status):
            return cls(pid, signal=os.WTERMSIG(status))
        return cls(pid, code=os.waitstatus_to_exitcode(status))


class System:
    """Real processes and real clocks."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    def spawn(self, argv: list[str], env: dict[str, str], stdout_fd: int, stderr_fd: int) -> int:
        """Start ``argv`` in a new process group; return its pid (= pgid)."""
        return spawn.spawn_command(argv, env, stdout_fd, stderr_fd)

    def worker_capacity(self) -> tuple[int, int]:
        """(workers the open-files limit fits, that limit)."""
        return spawn.fd_capacity()

    def fork_call(self, func: Callable[[], object], env: dict[str, str], stdout_fd: int,
                  stderr_fd: int, keep_fds: frozenset[int]) -> int:
        """Fork a child in a new process group that calls ``func`` (--preload)."""
        return spawn.fork_call(func, env, stdout_fd, stderr_fd, keep_fds)

    def killpg(self, pgid: int, sig: int) -> bool:
        """Signal a worker's process group; False if it no longer exists."""
        try:
            os.killpg(pgid, sig)
            return True
        except ProcessLookupError:
            return False
        except PermissionError:
            return False

    def group_alive(self, pgid: int) -> bool:
        """True while any process of the group exists (signal 0 probes it)."""
        try:
            os.killpg(pgid, 0)
            return True
        except ProcessLookupError:
            return False
        except PermissionError:
            return True

    def reap(self) -> list[ExitStatus]:
        """Reap every child (workers and adopted orphans) that has ended."""
        ended = []
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            except OSError as exc:  # pragma: no cover - EINTR is retried by Python
                if exc.errno == errno.EINTR:
                    continue
                raise
            if pid == 0:
                break
            ended.append(ExitStatus.from_wait_status(pid, status))
        return ended


class FakeSystem(System):
    """A scripted system for unit tests: spawns are recorded, exits are
    injected with :meth:`exit`, and the clock only moves with :meth:`advance`."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.next_pid = 100
        self.spawned: list[tuple[int, list[str], dict[str, str]]] = []
        self.signals: list[tuple[int, int]] = []
        self.alive: set[int] = set()
        self.pending: list[ExitStatus] = []
        self.fail_spawn: OSError | None = None
        self.capacity = (1 << 30, 1 << 30)  #: what worker_capacity() answers
        #: process groups with members besides their (fake) leader
        self.lingering: set[int] = set()

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.now + 1_000_000.0

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def worker_capacity(self) -> tuple[int, int]:  # noqa: D102
        return self.capacity

    def _new_pid(self, argv: list[str], env: dict[str, str]) -> int:
        if self.fail_spawn is not None:
            raise self.fail_spawn
        self.next_pid += 1
        self.spawned.append((self.next_pid, list(argv), dict(env)))
        self.alive.add(self.next_pid)
        return self.next_pid

    def spawn(self, argv, env, stdout_fd, stderr_fd):  # noqa: D102 - see System
        return self._new_pid(argv, env)

    def fork_call(self, func, env, stdout_fd, stderr_fd, keep_fds):  # noqa: D102
        return self._new_pid(["<preload>"], env)

    def killpg(self, pgid, sig):  # noqa: D102
        self.signals.append((pgid, sig))
        if not self.group_alive(pgid):
            return False
        if sig == signal.SIGKILL:
            self.lingering.discard(pgid)
            self.exit(pgid, sig=signal.SIGKILL)
        return True

    def group_alive(self, pgid):  # noqa: D102
        return pgid in self.alive or pgid in self.lingering

    def exit(self, pid: int, code: int | None = None, sig: int | None = None) -> None:
        """Make ``pid`` end (reaped at the loop's next :meth:`reap`)."""
        if pid in self.alive:
            self.alive.discard(pid)
            self.pending.append(ExitStatus(pid, code=code if sig is None else None, signal=sig))

    def reap(self):  # noqa: D102
        ended, self.pending = self.pending, []
        return ended
