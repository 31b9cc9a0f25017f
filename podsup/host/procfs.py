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


def read_stat(pid: int) -> tuple[int, float, int]:
    """(start time in ticks, CPU seconds user+system, RSS bytes) of ``pid``;
    OSError (FileNotFoundError, ProcessLookupError) when it is gone."""
    with open(f"/proc/{pid}/stat", "rb") as fh:
        data = fh.read()
    fields = data[data.rindex(b")") + 2:].split()  # after "pid (comm) ": the comm may hold anything
    # fields[0] is field 3 (state): utime 14, stime 15, starttime 22, rss 24
    return int(fields[19]), (int(fields[11]) + int(fields[12])) / CLOCK_TICKS, int(fields[21]) * PAGE_SIZE


def _children_lists(pid: int) -> list[int]:
    kids: list[int] = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as fh:
                kids.extend(int(k) for k in fh.read().split())
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

    def _family(self, pid: int, parents: dict[int, list[int]] | None) -> list[int]:
        family, stack = [], [pid]
        while stack:
            member = stack.pop()
            family.append(member)
            if parents is not None:
                stack.extend(parents.get(member, ()))
                continue
            try:
                stack.extend(_children_lists(member))
            except OSError:  # gone: no children to list
                continue
        return family

    def measure(self, pids: list[int]) -> dict[int, tuple[int, float]]:
        """pid -> (RSS bytes, CPU %) of each of ``pids`` with its descendants
        (summed); a pid whose whole family is gone is left out."""
        usage: dict[int, tuple[int, float]] = {}
        with self._lock:
            parents = None if self.children_lists else _parents()
            seen: dict[int, tuple[int, float, float]] = {}
            for pid in pids:
                rss, cpu, found = 0, 0.0, False
                for member in self._family(pid, parents):
                    try:
                        start, seconds, resident = read_stat(member)
                    except (OSError, ValueError, IndexError):
                        continue
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
        return usage
