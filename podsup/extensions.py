"""Extensions: what plugs into the master loop without owning it.

The control socket, the HTTP server (/metrics, /healthz, /readyz), the
watchdog, the queue probe and the Prometheus multiprocess directory are
extensions (issue 3). The loop stays the only place that forks and kills;
an extension observes through the hooks below and acts only by calling
``arbiter.submit(command)`` (see podsup.core.commands), from any thread.

The seam offered by :class:`podsup.loop.arbiter.Arbiter`:

``arbiter.submit(command) -> concurrent.futures.Future``
    Thread-safe; wakes the loop through its self-pipe. The loop executes
    Scale / Reload / Drain / FastStop / Recycle and resolves the future with a
    small dict, or sets an exception (ValueError/RuntimeError) for a refused
    command (e.g. scale below 0, recycle of an empty slot, anything but
    FastStop while draining).
``arbiter.snapshot(measure=True) -> PoolSnapshot``
    Thread-safe (copied under the loop's lock; psutil RSS/CPU are measured
    outside it, one process-table scan per call: ~15 ms for 64 workers).
    ``measure=False`` skips psutil (RSS/CPU read 0) for cheap, frequent
    reads such as health. Callable from the loop thread too (e.g. in ``tick``).
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
    from podsup.loop.arbiter import Arbiter
    from podsup.config import Config
    from podsup.host.reports import Report


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
        """A worker sent a well-formed report (podsup.host.reports.Report)."""

    def tick(self, now: float) -> None:
        """Called by the loop at least once per second (``now``: time.monotonic())."""

    def close(self) -> None:
        """podsup is exiting (after the last worker was reaped)."""


def build_extensions(config: "Config") -> list[Any]:
    """The extensions ``podsup run`` installs for ``config``.

    Everything that binds or imports is built here, before the first worker
    starts, so a taken port, a live control socket or a missing queue extra
    fails ``podsup run`` at once with one line (ConfigError).
    """
    from podsup.config import ConfigError
    from podsup.plugins.control.server import ControlExtension
    from podsup.plugins.http import HealthState, HttpExtension
    from podsup.plugins.metrics import MetricsExtension
    from podsup.plugins.multiproc import MultiprocExtension
    from podsup.plugins.queueprobe import QueueConfigError, QueueProbeExtension
    from podsup.plugins.watchdog import Limits, WatchdogExtension

    extensions: list[Any] = []
    try:
        multiproc = MultiprocExtension()
        extensions.append(multiproc)
        probe = QueueProbeExtension([config.queue], config.queue_interval) if config.queue else None
        metrics = MetricsExtension(probed=probe.board.readings if probe else dict, multiproc_dir=multiproc.path,
                                   probe_errors=probe.board.errors if probe else dict)
        extensions.append(metrics)
        if probe is not None:
            extensions.append(probe)
        health = HealthState(needed=config.ready_needed)
        if config.http is not None:
            try:
                extensions.append(HttpExtension(config.http, metrics.registry, health))
            except (OSError, ValueError, TypeError) as exc:  # TypeError/UnicodeError: a host IDNA cannot encode
                host, port = config.http
                reason = getattr(exc, "strerror", None) or str(exc).splitlines()[0]
                raise ConfigError(f"podsup run: invalid --http {host}:{port}: cannot listen: {reason}") from None
        if config.control is not None:
            try:
                extensions.append(ControlExtension(config.control, on_drain=health.set_draining,
                                                   drain_budget=config.drain_delay + config.graceful_timeout,
                                                   probed_queues=probe.board.readings if probe else None))
            except OSError as exc:
                raise ConfigError(f"podsup run: invalid --control {config.control}: {exc.strerror or exc}") from None
        limits = Limits.from_config(config)
        if limits.active:
            extensions.append(WatchdogExtension(limits, on_slow=metrics.stats.slow.inc))
    except QueueConfigError as exc:
        _close_all(extensions)
        raise ConfigError(f"podsup run: {exc}") from None
    except BaseException:
        _close_all(extensions)
        raise
    return extensions


def _close_all(extensions: list[Any]) -> None:
    for ext in extensions:
        try:
            ext.close()
        except Exception:  # noqa: BLE001 - cleaning up after a failed start
            pass
