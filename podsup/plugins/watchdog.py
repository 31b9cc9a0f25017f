"""The watchdog: soft failures of a worker that still runs (PHP-FPM's
request_terminate_timeout, pm.max_requests, uWSGI's reload-on-rss ...).

:func:`check` is the policy, a pure function over :class:`WorkerWatch` (what we
know of one worker process) and :class:`Limits`. :class:`WatchdogExtension`
is the thin part in the master loop: it keeps a WorkerWatch per process from
spawn/exit/report hooks, measures RSS with psutil once per tick, and hands a
``Recycle`` to the loop for each verdict — it never kills anything itself.

Verdicts, in order of precedence:

* ``timeout``   busy longer than --request-timeout        → kill and replace
* ``heartbeat`` sent a heartbeat, then silent longer than
                --heartbeat-timeout                        → kill and replace
* ``rss``       worker + children above --max-rss          → replace gracefully
* ``requests``  served --max-requests (+ per-process jitter) → replace gracefully
* ``lifetime``  up longer than --max-lifetime              → replace gracefully

"Replace gracefully" means Recycle(kill=False): the loop starts the replacement
first and then stops the old worker with the stop signal, so capacity never dips.
"""
from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:  # pragma: no cover
    import random

from podsup.core.commands import Recycle
from podsup.core.eventlog import EventLog, StdLog
from podsup.core.plugin import Extension, LoopHandle


@dataclasses.dataclass(frozen=True)
class Limits:
    max_rss: int | None = None
    max_requests: int | None = None
    max_requests_jitter: int = 0
    max_lifetime: float | None = None
    heartbeat_timeout: float | None = None
    request_timeout: float | None = None
    slow_request: float | None = None

    @property
    def active(self) -> bool:
        return any(v for v in (self.max_rss, self.max_requests, self.max_lifetime, self.heartbeat_timeout,
                               self.request_timeout, self.slow_request))

    @classmethod
    def from_config(cls, config: Any) -> "Limits":
        def get(name: str, default: Any = None) -> Any:
            value = getattr(config, name, default)
            return default if value in (None, 0) else value
        return cls(max_rss=get("max_rss"), max_requests=get("max_requests"),
                   max_requests_jitter=get("max_requests_jitter", 0) or 0,
                   max_lifetime=get("max_lifetime"), heartbeat_timeout=get("heartbeat_timeout"),
                   request_timeout=get("request_timeout"), slow_request=get("slow_request"))


@dataclasses.dataclass
class WorkerWatch:
    """What the watchdog knows of one worker process (times are monotonic)."""

    slot: int
    pid: int
    started: float
    request_limit: int | None = None   #: --max-requests plus this process's jitter
    requests: int = 0
    last_heard: float | None = None    #: None until the first heartbeat arms the check
    busy_since: float | None = None
    rss_bytes: int = 0
    recycled: bool = False             #: a Recycle was submitted; never send two


@dataclasses.dataclass(frozen=True)
class Verdict:
    slot: int
    pid: int
    reason: str
    kill: bool
    detail: str


def request_limit(limits: Limits, rng: random.Random) -> int | None:
    """--max-requests plus a random 0..jitter, drawn once per process so a pool
    started together does not recycle all at once (gunicorn's max_requests_jitter)."""
    if not limits.max_requests:
        return None
    jitter = rng.randint(0, limits.max_requests_jitter) if limits.max_requests_jitter > 0 else 0
    return limits.max_requests + jitter


def check(watch: WorkerWatch, limits: Limits, now: float) -> Verdict | None:
    """The verdict for one worker, or None if it is fine."""
    if watch.recycled:
        return None
    def verdict(reason: str, kill: bool, detail: str) -> Verdict:
        return Verdict(watch.slot, watch.pid, reason, kill, detail)
    if limits.request_timeout and watch.busy_since is not None:
        busy = now - watch.busy_since
        if busy > limits.request_timeout:
            return verdict("timeout", True, f"busy for {busy:.1f}s > --request-timeout {limits.request_timeout:g}s")
    if limits.heartbeat_timeout and watch.last_heard is not None:
        silent = now - watch.last_heard
        if silent > limits.heartbeat_timeout:
            return verdict("heartbeat", True,
                           f"silent for {silent:.1f}s > --heartbeat-timeout {limits.heartbeat_timeout:g}s")
    if limits.max_rss and watch.rss_bytes > limits.max_rss:
        return verdict("rss", False, f"rss {watch.rss_bytes} bytes > --max-rss {limits.max_rss}")
    if watch.request_limit is not None and watch.requests >= watch.request_limit:
        return verdict("requests", False, f"served {watch.requests} requests >= limit {watch.request_limit}")
    if limits.max_lifetime and now - watch.started > limits.max_lifetime:
        return verdict("lifetime", False,
                       f"up {now - watch.started:.1f}s > --max-lifetime {limits.max_lifetime:g}s")
    return None


def report_fields(report: Any) -> tuple[str, Any]:
    """(kind, value) of a parsed worker report."""
    return report.kind, getattr(report, "seconds", None)


def is_slow(seconds: float, limits: Limits) -> bool:
    return bool(limits.slow_request) and seconds >= limits.slow_request  # type: ignore[operator]


def tree_rss(pid: int) -> int | None:
    """RSS of a process and all its descendants (None if it is gone)."""
    return tree_rss_many([pid]).get(pid)


def tree_rss_many(pids: list[int]) -> dict[int, int]:
    """RSS of each process tree rooted at ``pids`` (gone ones are left out).

    One pass over the process table builds the parent → children map for all
    workers at once: psutil's ``children(recursive=True)`` scans the whole
    table per call, which for 64 workers costs a third of a second per tick.
    """
    import psutil
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for proc in psutil.process_iter(["ppid", "memory_info"]):
        info = proc.info
        if info.get("memory_info") is None:
            continue
        rss[proc.pid] = info["memory_info"].rss
        children.setdefault(info["ppid"], []).append(proc.pid)
    out: dict[int, int] = {}
    for root in pids:
        if root not in rss:
            continue
        total, stack, seen = 0, [root], set()
        while stack:
            pid = stack.pop()
            if pid in seen:
                continue
            seen.add(pid)
            total += rss.get(pid, 0)
            stack.extend(children.get(pid, ()))
        out[root] = total
    return out



class WatchdogExtension(Extension):
    """Feeds WorkerWatch records from the loop's hooks and submits Recycles."""

    def __init__(self, limits: Limits, clock: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None, on_slow: Callable[[], None] | None = None):
        self.limits = limits
        self.clock = clock
        if rng is None:
            import random  # only when a watchdog runs (--max-requests jitter)
            rng = random.Random()
        self.rng = rng
        self.on_slow = on_slow
        self.watches: dict[int, WorkerWatch] = {}
        self.arbiter: Any = None
        self.log: EventLog = StdLog("podsup.watchdog")

    def attach(self, arbiter: LoopHandle) -> None:
        self.arbiter = arbiter
        self.log = getattr(arbiter, "log", self.log)

    def on_spawn(self, slot: int, pid: int) -> None:
        # A new worker in a slot replaces the one there (reload, recycle): the
        # old one is stopping under --graceful-timeout and may finish its last
        # job in silence. It gets no more verdicts, and a Recycle (which names
        # the slot) would hit its successor.
        for watch in self.watches.values():
            if watch.slot == slot:
                watch.recycled = True
        self.watches[pid] = WorkerWatch(slot=slot, pid=pid, started=self.clock(),
                                        request_limit=request_limit(self.limits, self.rng))

    def on_exit(self, slot: int, pid: int, description: Any) -> None:
        self.watches.pop(pid, None)

    def on_report(self, slot: int, pid: int, report: Any) -> None:
        # the loop has already placed the report (by the sender's process group,
        # else by the worker socket it came in on): ``pid`` is that worker's
        watch = self.watches.get(pid)
        if watch is None:
            return
        now = self.clock()
        kind, value = report_fields(report)
        if kind == "heartbeat" or watch.last_heard is not None:
            watch.last_heard = now
        if kind == "busy":
            watch.busy_since = now
        elif kind in ("idle", "done"):
            watch.busy_since = None
        if kind == "done":
            watch.requests += 1
            seconds = float(value or 0.0)
            if is_slow(seconds, self.limits):
                self.log.warning("slow request", slot=slot, pid=pid, duration=f"{seconds:.3f}s",
                                 slow_request=f"{self.limits.slow_request:g}s")
                if self.on_slow is not None:
                    self.on_slow()

    def tick(self, now: float) -> None:
        if self.arbiter is None:
            return
        mono = self.clock()
        sizes = tree_rss_many(list(self.watches)) if self.limits.max_rss else {}
        for watch in list(self.watches.values()):
            if watch.recycled:
                continue
            if self.limits.max_rss:
                if watch.pid not in sizes:
                    continue  # exited; on_exit will drop it
                watch.rss_bytes = sizes[watch.pid]
            verdict = check(watch, self.limits, mono)
            if verdict is None:
                continue
            watch.recycled = True
            self.log.warning("watchdog: recycling worker", slot=verdict.slot, pid=verdict.pid,
                             reason=verdict.reason, detail=verdict.detail)
            self.arbiter.submit(Recycle(slot=verdict.slot, reason=verdict.reason, kill=verdict.kill))
