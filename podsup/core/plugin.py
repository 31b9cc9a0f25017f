"""The one interface between the loop and its plug-ins, in both directions.

The control socket, the HTTP server (/metrics, /healthz, /readyz), the
watchdog, the queue probe and the Prometheus multiprocess directory are
plug-ins (podsup.plugins). The loop stays the only place that forks and
kills; a plug-in observes through the :class:`Extension` hooks the loop calls
and acts only by calling ``loop.submit(command)`` (see podsup.core.commands),
from any thread. It is handed the loop as a :class:`LoopHandle` in
``attach`` and never imports podsup.loop (an import-linter contract checks
it), so the loop can change shape without touching a plug-in, and a plug-in
is unit-tested against a ten-line fake.

The loop reaps every child of the process (it is PID 1 / a sub-reaper), so
a plug-in must not rely on ``waitpid`` of children it starts itself.
Exceptions raised by a hook are logged and otherwise ignored: a plug-in
can never bring the loop down.
"""
from __future__ import annotations

import concurrent.futures
from typing import TYPE_CHECKING, Any, Callable, Protocol, runtime_checkable

from podsup.core.eventlog import EventLog

if TYPE_CHECKING:  # pragma: no cover
    from podsup.core.health import HealthView
    from podsup.core.protocol import Report
    from podsup.core.snapshot import PoolSnapshot


@runtime_checkable
class LoopHandle(Protocol):
    """What the loop (podsup.loop.arbiter.Arbiter) offers a plug-in
    (tests/unit/loop/test_arbiter.py checks the Arbiter provides all of it)."""

    #: podsup's event log (``log.info("msg", key=value)``) in the configured --log-format
    log: EventLog
    #: the frozen configuration of ``podsup run``
    config: Any
    #: a counter the loop bumps at every iteration: a view of the pool cached
    #: under one value (the /metrics page) is still current while it holds
    generation: int

    def submit(self, command: Any) -> concurrent.futures.Future:
        """Thread-safe; wakes the loop through its self-pipe. The loop executes
        Scale / Reload / Drain / FastStop / Recycle and resolves the future with a
        small dict, or sets an exception (ValueError/RuntimeError) for a refused
        command (e.g. scale below 0, recycle of an empty slot, anything but
        FastStop while draining)."""

    def snapshot(self, measure: bool = True, usage_max_age: float = 0.0) -> "PoolSnapshot":
        """Thread-safe (copied under the loop's lock; RSS/CPU are measured
        outside it from /proc, two reads per worker: ~3 ms for 64 workers).
        ``measure=False`` skips that (RSS/CPU read 0) for cheap, frequent
        reads; ``usage_max_age`` reuses readings up to that many seconds old.
        Callable from the loop thread too (e.g. in ``tick``)."""

    def health(self) -> "HealthView":
        """What /healthz and /readyz need: flag reads and one copy of the worker
        table, no lock and no psutil, so an HTTP thread may call it per request."""

    def add_reader(self, fd: int, callback: Callable[[], None]) -> None:
        """Watch ``fd`` in the loop's selector; ``callback()`` runs in the loop
        thread when ``fd`` is readable. Safe from ``attach`` or any thread."""

    def remove_reader(self, fd: int) -> None:
        """Stop watching ``fd`` (safe from any thread)."""


class Extension:
    """Base class of a plug-in: every hook is an optional no-op."""

    def attach(self, loop: LoopHandle) -> None:
        """Called once in the loop thread before the first worker is spawned."""

    def worker_env(self, slot: int) -> dict[str, str]:
        """Extra environment for a worker about to be spawned in ``slot``."""
        return {}

    def on_spawn(self, slot: int, pid: int) -> None:
        """A worker was started."""

    def on_exit(self, slot: int, pid: int, description: str) -> None:
        """A worker was reaped; ``description`` is e.g. 'exit 1', 'signal SIGKILL', 'oom'."""

    def on_report(self, slot: int, pid: int, report: "Report") -> None:
        """A worker sent a well-formed report (podsup.core.protocol.Report)."""

    def after_reports(self) -> None:
        """A batch of reports was handed to ``on_report`` (once per batch,
        after its last report): fold per-report tallies into shared state here."""

    def tick(self, now: float) -> None:
        """Called by the loop at least once per second (``now``: time.monotonic())."""

    def close(self) -> None:
        """podsup is exiting (after the last worker was reaped)."""
