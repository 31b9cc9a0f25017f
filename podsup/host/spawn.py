"""Starting one worker: exec a COMMAND, or fork a preloaded Python function.

Both put the worker in a process group of its own (pgid = pid) so stopping it
signals everything it started, give it ``/dev/null`` as stdin and the write
ends of its output pipes as stdout/stderr, and give it default signal
dispositions (the master's handlers and ignores must not leak into workers).
"""
from __future__ import annotations

import os
import signal
import sys
import traceback
from typing import Callable

#: Every signal a process may catch: reset to SIG_DFL in workers.
CATCHABLE = tuple(s for s in signal.valid_signals() if s not in (signal.SIGKILL, signal.SIGSTOP))


def spawn_command(argv: list[str], env: dict[str, str], stdout_fd: int, stderr_fd: int) -> int:
    """posix_spawnp ``argv`` in a new process group; OSError if it cannot run."""
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_DUP2, stdout_fd, 1),
        (os.POSIX_SPAWN_DUP2, stderr_fd, 2),
    ]
    return os.posix_spawnp(argv[0], argv, env, file_actions=actions, setpgroup=0,
                           setsigdef=CATCHABLE, setsigmask=())


def open_fds() -> frozenset[int]:
    """Descriptors open now (taken after --preload's import: those are kept
    in workers; everything the master opens later is closed in them)."""
    listed = [int(fd) for fd in os.listdir("/proc/self/fd")]
    open_now = set()
    for fd in listed:  # drop the descriptor listdir itself used (closed by now)
        try:
            os.fstat(fd)
            open_now.add(fd)
        except OSError:
            pass
    return frozenset(open_now)


def fork_call(func: Callable[[], object], env: dict[str, str], stdout_fd: int, stderr_fd: int,
              keep_fds: frozenset[int]) -> int:
    """Fork a worker that calls ``func()``; its return value is the exit code."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()  # never let the child re-emit the master's buffers
        except (OSError, ValueError):
            pass
    pid = os.fork()
    if pid:
        try:  # as shells do: the group exists from here on, whoever runs first
            os.setpgid(pid, pid)
        except OSError:  # the child got there first, or is already gone
            pass
        return pid
    code = 1
    try:
        os.setpgid(0, 0)
        signal.set_wakeup_fd(-1)
        for sig in CATCHABLE:
            try:
                signal.signal(sig, signal.SIG_DFL)
            except (OSError, ValueError):
                pass
        signal.pthread_sigmask(signal.SIG_SETMASK, ())
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(stdout_fd, 1)
        os.dup2(stderr_fd, 2)
        for fd in open_fds():
            if fd > 2 and fd not in keep_fds:
                try:
                    os.close(fd)
                except OSError:
                    pass
        os.environ.clear()
        os.environ.update(env)
        result = func()
        code = result if isinstance(result, int) and not isinstance(result, bool) else 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - the worker's crash, reported like Python would
        traceback.print_exc()
        code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code & 0xFF if code >= 0 else 1)
    return 0  # pragma: no cover - unreachable


#: Descriptors the master holds per worker: its stdout and stderr pipes and
#: its report socket; plus a margin for the control socket and its
#: connections (32), HTTP connections (64), the selector, the queue probe and
#: a replacement started before its predecessor stops.
FDS_PER_WORKER = 3
FDS_MARGIN = 128


def raise_fd_limit(workers: int) -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE towards the hard limit when ``workers``
    need more descriptors than it allows (a shell's default soft limit, 1024,
    ends near 330 workers with EMFILE on spawn). Returns (old, new) soft limits;
    the hard limit is never changed. Workers inherit the raised soft limit."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = workers * FDS_PER_WORKER + FDS_MARGIN
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return soft, soft
    new = needed if hard == resource.RLIM_INFINITY else min(hard, needed)
    if new <= soft:
        return soft, soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    except (ValueError, OSError):
        return soft, soft
    return soft, new


def fd_capacity() -> tuple[int, int]:
    """(workers the soft RLIMIT_NOFILE fits, that soft limit)."""
    import resource

    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1 << 30, soft
    return max(0, (soft - FDS_MARGIN) // FDS_PER_WORKER), soft
