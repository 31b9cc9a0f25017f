"""RSS and CPU of the workers' process families, read from /proc.

A scrape measures every worker and its descendants. psutil found the
descendants by scanning the whole process table (every process of the node
when podsup shares a PID namespace with it) and read two or three files per
member; that was most of a /metrics scrape (issue 13's profile: 43 % of it in
``process_iter`` on a busy host). Here a family is walked from the worker
down through ``/proc/PID/task/TID/children`` (the kernel's own list), and one
read of ``/proc/PID/stat`` per member gives its CPU times and resident pages.
Kernels without ``CONFIG_PROC_CHILDREN`` fall back to a scan of
``/proc/*/stat`` for parent pids.

The CPU figure is the one psutil's ``cpu_percent(None)`` gives (what podsup
exported before): CPU seconds since this meter last saw that process, per
second of monotonic time, in % of one core, rounded to 0.1; 0.0 the first
time a process is seen. A process is known by (pid, start time), so a reused
pid starts again from 0.0.
"""
from __future__ import annotations

import os
import threading
import time
from typing import Callable

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def read_file(path: str) -> bytes:
    """A /proc file's bytes: os.open/os.read, a third cheaper than open()'s
    buffered file object (a scrape reads two files per worker)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while True:
            chunk = os.read(fd, 4096)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    finally:
        os.close(fd)


def read_stat(pid: int) -> tuple[int, float, int, int]:
    """(start time in ticks, CPU seconds user+system, RSS bytes, threads) of
    ``pid``; OSError (FileNotFoundError, ProcessLookupError) when it is gone."""
    data = read_file(f"/proc/{pid}/stat")
    fields = data[data.rindex(b")") + 2:].split()  # after "pid (comm) ": the comm may hold anything
    # fields[0] is field 3 (state): utime 14, stime 15, num_threads 20, starttime 22, rss 24
    return (int(fields[19]), (int(fields[11]) + int(fields[12])) / CLOCK_TICKS, int(fields[21]) * PAGE_SIZE,
            int(fields[17]))


def boot_time() -> float:
    """When the system booted, seconds since the epoch (``btime`` of /proc/stat)."""
    with open("/proc/stat", "rb") as fh:
        for line in fh:
            if line.startswith(b"btime"):
                return float(line.split()[1])
    raise OSError("no btime line in /proc/stat")


def start_time(pid: int) -> float | None:
    """When ``pid`` started, seconds since the epoch (what psutil's
    ``create_time()`` says: its start in ticks after boot, plus the boot
    time); None when there is no such process, -1.0 when it cannot be read
    (someone else's: alive)."""
    try:
        started = read_stat(pid)[0]
    except (FileNotFoundError, ProcessLookupError):
        return None
    except PermissionError:  # pragma: no cover - /proc/PID/stat is world-readable
        return -1.0
    return started / CLOCK_TICKS + boot_time()


def pid_exists(pid: int) -> bool:
    """True while a process ``pid`` exists (a zombie too), as psutil.pid_exists."""
    if pid < 0:
        return False
    if pid == 0:
        return True  # the kernel's swapper, as psutil answers
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's
        return True
    return True


def _children_lists(pid: int, threads: int = 0) -> list[int]:
    """Children of every thread of ``pid`` (of its one thread when ``threads`` is 1: no listing)."""
    if threads == 1:
        try:
            return [int(k) for k in read_file(f"/proc/{pid}/task/{pid}/children").split()]
        except FileNotFoundError:  # it just started a thread, or ended: list them
            pass
    kids: list[int] = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            kids.extend(int(k) for k in read_file(f"/proc/{pid}/task/{tid}/children").split())
        except FileNotFoundError:  # the thread just ended
            continue
    return kids


def has_children_lists() -> bool:
    """True when the kernel lists a thread's children (CONFIG_PROC_CHILDREN)."""
    return os.path.exists(f"/proc/self/task/{os.getpid()}/children")


def _parents() -> dict[int, list[int]]:
    """parent pid -> child pids, from every /proc/PID/stat (the fallback)."""
    kids: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                data = fh.read()
        except OSError:
            continue
        ppid = int(data[data.rindex(b")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(name))
    return kids


class UsageMeter:
    """Measures families of processes; thread-safe (scrapes and ``podsup
    status`` may measure at once), keeps the last CPU reading of each process."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, children_lists: bool | None = None):
        self.clock = clock
        self.children_lists = has_children_lists() if children_lists is None else children_lists
        self._lock = threading.Lock()
        #: pid -> (start time, CPU seconds, clock) of its last reading
        self._last: dict[int, tuple[int, float, float]] = {}
        #: the last measurement: (clock, pids, usage)
        self._cached: tuple[float, list[int], dict[int, tuple[int, float]]] | None = None

    def measure(self, pids: list[int], max_age: float = 0.0) -> dict[int, tuple[int, float]]:
        """pid -> (RSS bytes, CPU %) of each of ``pids`` with its descendants
        (summed); a pid whose whole family is gone is left out. With
        ``max_age`` > 0, the last measurement is answered again while it is
        younger than that and was of the same pids (a scrape right after
        another need not read every worker's /proc files again: issue 13's
        profile, 43 % of a scrape with 64 workers)."""
        usage: dict[int, tuple[int, float]] = {}
        with self._lock:
            cached = self._cached
            if max_age > 0 and cached is not None and cached[1] == pids and self.clock() - cached[0] < max_age:
                return dict(cached[2])
            parents = None if self.children_lists else _parents()
            seen: dict[int, tuple[int, float, float]] = {}
            for pid in pids:
                rss, cpu, found = 0, 0.0, False
                stack = [pid]
                while stack:  # the family: the worker, then its descendants
                    member = stack.pop()
                    try:
                        start, seconds, resident, threads = read_stat(member)
                    except (OSError, ValueError, IndexError):  # gone
                        continue
                    try:
                        stack.extend(parents.get(member, ()) if parents is not None
                                     else _children_lists(member, threads))
                    except OSError:  # gone since: its own reading still counts
                        pass
                    now = self.clock()
                    last = self._last.get(member)
                    if last is not None and last[0] == start and now > last[2]:
                        cpu += round((seconds - last[1]) / (now - last[2]) * 100, 1)
                    seen[member] = (start, seconds, now)
                    rss += resident
                    found = True
                if found:
                    usage[pid] = (rss, cpu)
            self._last = seen
            self._cached = (self.clock(), list(pids), usage)
        return dict(usage)
