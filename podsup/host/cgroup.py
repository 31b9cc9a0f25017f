"""What the container's cgroup says: CPUs we may use, OOM kills so far.

Read-only helpers over /proc/self/cgroup and the cgroup filesystem. They take
their roots as arguments so tests point them at a directory of fake files.
cgroup v2 (unified, also the hybrid ``/sys/fs/cgroup/unified`` mount) is the
contract; v1 ``cpu.cfs_quota_us`` is read as a fallback for the CPU count.
"""
from __future__ import annotations

import math
import os

CGROUP_ROOTS = ("/sys/fs/cgroup", "/sys/fs/cgroup/unified")


def own_cgroup_path(proc_cgroup: str = "/proc/self/cgroup") -> tuple[str | None, dict[str, str]]:
    """(v2 path, {v1 controller: path}) from /proc/self/cgroup."""
    v2, v1 = None, {}
    try:
        with open(proc_cgroup, encoding="utf-8") as handle:
            for line in handle:
                parts = line.rstrip("\n").split(":", 2)
                if len(parts) != 3:
                    continue
                if parts[0] == "0" and parts[1] == "":
                    v2 = parts[2]
                else:
                    for controller in parts[1].split(","):
                        v1[controller] = parts[2]
    except OSError:
        pass
    return v2, v1


def v2_dir(roots: tuple[str, ...] = CGROUP_ROOTS, proc_cgroup: str = "/proc/self/cgroup") -> str | None:
    """Directory of our cgroup v2 (None without a v2 hierarchy)."""
    path, _ = own_cgroup_path(proc_cgroup)
    if path is None:
        return None
    for root in roots:
        if os.path.exists(os.path.join(root, "cgroup.controllers")):
            candidate = os.path.join(root, path.lstrip("/"))
            if os.path.isdir(candidate):
                return candidate
    return None


def parse_cpu_max(text: str) -> float | None:
    """``"200000 100000"`` -> 2.0 CPUs; ``"max 100000"`` -> None (no limit)."""
    parts = text.split()
    if not parts or parts[0] == "max":
        return None
    try:
        quota = int(parts[0])
        period = int(parts[1]) if len(parts) > 1 else 100000
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        return None


def cpu_limit(directory: str | None) -> float | None:
    """Tightest cpu.max from ``directory`` up through its ancestors inside the
    cgroup filesystem (a limit may sit on a parent); None: unlimited."""
    limits = []
    current = os.path.normpath(directory) if directory else None
    while current and os.path.exists(os.path.join(current, "cgroup.controllers")):
        limit = parse_cpu_max(_read(os.path.join(current, "cpu.max")) or "max")
        if limit is not None:
            limits.append(limit)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    return min(limits) if limits else None


def v1_cpu_limit(base: str = "/sys/fs/cgroup/cpu", proc_cgroup: str = "/proc/self/cgroup") -> float | None:
    _, v1 = own_cgroup_path(proc_cgroup)
    for directory in (os.path.join(base, v1.get("cpu", "/").lstrip("/")), base):
        quota, period = _read(os.path.join(directory, "cpu.cfs_quota_us")), _read(os.path.join(directory, "cpu.cfs_period_us"))
        if quota and period:
            limit = parse_cpu_max(f"{quota.strip()} {period.strip()}")
            if limit is not None:
                return limit
    return None


def cpu_count() -> int:
    """CPUs this process may use: the cgroup limit (rounded up), else the
    affinity mask; at least 1. The default of ``--workers``."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - non-Linux
        affinity = os.cpu_count() or 1
    directory = v2_dir()
    limit = cpu_limit(directory) if directory else v1_cpu_limit()
    if limit is not None:
        affinity = min(affinity, math.ceil(limit))
    return max(1, affinity)


def parse_memory_events(text: str) -> dict[str, int]:
    """``memory.events`` (``oom 0\\noom_kill 2``) -> {"oom": 0, "oom_kill": 2}."""
    counters = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            counters[parts[0]] = int(parts[1])
    return counters


def default_oom_events_path(roots: tuple[str, ...] = CGROUP_ROOTS, v1_base: str = "/sys/fs/cgroup/memory",
                            proc_cgroup: str = "/proc/self/cgroup") -> str | None:
    """cgroup v2 ``memory.events`` of our cgroup; on a v1 memory controller
    (hybrid hosts) ``memory.oom_control``, whose ``oom_kill`` line reads the same."""
    directory = v2_dir(roots, proc_cgroup)
    if directory and os.path.exists(os.path.join(directory, "memory.events")):
        return os.path.join(directory, "memory.events")
    _, v1 = own_cgroup_path(proc_cgroup)
    for candidate in (os.path.join(v1_base, v1.get("memory", "/").lstrip("/")), v1_base):
        path = os.path.join(candidate, "memory.oom_control")
        if os.path.exists(path):
            return path
    return None


class OomCounter:
    """Watches the cgroup's ``oom_kill`` count so a SIGKILLed worker can be
    told apart from one the kernel's OOM killer took."""

    def __init__(self, events_path: str | None = None) -> None:
        self.path = default_oom_events_path() if events_path is None else events_path
        self.last = self.read()

    def read(self) -> int | None:
        if not self.path:
            return None
        text = _read(self.path)
        return parse_memory_events(text).get("oom_kill") if text is not None else None

    def rose(self) -> bool:
        """True if oom_kill grew since the last kill it was asked about.

        Each True consumes one count, so two workers OOM-killed at once (reaped
        in one batch) are both reported as OOM.
        """
        current = self.read()
        if current is None:
            return False
        if self.last is None or current < self.last:  # first read, or counter reset
            self.last = current
            return False
        if current > self.last:
            self.last += 1
            return True
        return False
