"""Extensions: what plugs into the master loop without owning it.

The control socket, the HTTP server (/metrics, /healthz, /readyz), the
watchdog, the queue probe and the Prometheus multiprocess directory are
extensions (issue 3). The loop stays the only place that forks and kills;
an extension observes through the hooks below and acts only by calling
``arbiter.submit(command)`` (see podsup.commands), from any thread.

The seam offered by :class:`podsup.arbiter.Arbiter`:

``arbiter.submit(command) -> concurrent.futures.Future``
    Thread-safe; wakes the loop through its self-pipe. The loop executes
    Scale / Reload / Drain / FastStop / Recycle and resolves the future with a
    small dict, or sets an exception (ValueError/RuntimeError) for a refused
    command (e.g. scale below 0, recycle of an empty slot, anything but
    FastStop while draining).
``arbiter.snapshot() -> PoolSnapshot``
    Thread-safe (copied under the loop's lock; psutil RSS/CPU are measured
    outside it). Callable from the loop thread too (e.g. in ``tick``).
``arbiter.add_reader(fd, callback)`` / ``arbiter.remove_reader(fd)``
    Extra descriptors in the loop's selector; ``callback()`` runs in the loop
    thread when ``fd`` is readable. Safe from ``attach`` or any thread.
``arbiter.log``
    podsup's event log (``arbiter.log.info("msg", key=value)``), in the
    configured --log-format. ``arbiter.config`` is the frozen Config.

The loop reaps every child of the process (it is PID 1 / a sub-reaper), so
an extension must not rely on ``waitpid`` of children it starts itself.
Exceptions raised by a hook are logged and otherwise ignored: an extension
can never bring the loop down.

:func:`build_extensions` is the list ``podsup run`` installs. It is empty
until issue 3's modules register here.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from podsup.arbiter import Arbiter
    from podsup.config import Config
    from podsup.reports import Report


class Extension:
    """Base class: every hook is an optional no-op."""

    def attach(self, arbiter: "Arbiter") -> None:
        """Called once in the loop thread before the first worker is spawned."""

    def worker_env(self, slot: int) -> dict[str, str]:
        """Extra environment for a worker about to be spawned in ``slot``."""
        return {}

    def on_spawn(self, slot: int, pid: int) -> None:
        """A worker was started."""

    def on_exit(self, slot: int, pid: int, description: str) -> None:
        """A worker was reaped; ``description`` is e.g. 'exit 1', 'signal SIGKILL', 'oom'."""

    def on_report(self, slot: int, pid: int, report: "Report") -> None:
        """A worker sent a well-formed report (podsup.reports.Report)."""

    def tick(self, now: float) -> None:
        """Called by the loop at least once per second (``now``: time.monotonic())."""

    def close(self) -> None:
        """podsup is exiting (after the last worker was reaped)."""


def build_extensions(config: "Config") -> list[Any]:
    """The extensions ``podsup run`` installs for ``config``.

    Empty for now: issue 3 adds the control socket, HTTP server, watchdog,
    queue probe and metrics here.
    """
    return []
