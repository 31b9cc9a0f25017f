"""Which plug-ins ``podsup run`` installs, wired to each other: the composition root.

The loop knows plug-ins only as :class:`podsup.core.plugin.Extension` hooks
and the plug-ins know the loop only as a :class:`podsup.core.plugin.LoopHandle`;
this is the one place that names both sides' concrete classes.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from podsup.core.config import Config


def build_extensions(config: "Config") -> list[Any]:
    """The extensions ``podsup run`` installs for ``config``.

    Everything that binds or imports is built here, before the first worker
    starts, so a taken port, a live control socket or a missing queue extra
    fails ``podsup run`` at once with one line (ConfigError).
    """
    from podsup.core.config import ConfigError
    from podsup.plugins.control.server import ControlExtension
    from podsup.plugins.http import HealthState, HttpExtension
    from podsup.plugins.metrics import MetricsExtension
    from podsup.plugins.multiproc import MultiprocExtension
    from podsup.plugins.watchdog import Limits, WatchdogExtension

    if config.queue:  # only then: its URL parsing (urllib, ipaddress) costs every other pod ~0.4 MB
        from podsup.plugins.queueprobe import QueueConfigError, QueueProbeExtension
    else:
        QueueConfigError = QueueProbeExtension = None  # type: ignore[misc,assignment]

    extensions: list[Any] = []
    try:
        multiproc = MultiprocExtension()
        extensions.append(multiproc)
        probe = QueueProbeExtension([config.queue], config.queue_interval) if QueueProbeExtension else None
        metrics = MetricsExtension(probed=probe.board.readings if probe else dict, workers=multiproc.collector,
                                   probe_errors=probe.board.errors if probe else dict)
        extensions.append(metrics)
        if probe is not None:
            extensions.append(probe)
        health = HealthState(needed=config.ready_needed)
        if config.http is not None:
            try:
                extensions.append(HttpExtension(config.http, metrics, health))
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
            extensions.append(WatchdogExtension(limits, on_slow=metrics.stats.slow_request))
    except BaseException as exc:
        _close_all(extensions)
        if QueueConfigError is not None and isinstance(exc, QueueConfigError):
            raise ConfigError(f"podsup run: {exc}") from None
        raise
    return extensions


def _close_all(extensions: list[Any]) -> None:
    for ext in extensions:
        try:
            ext.close()
        except Exception:  # noqa: BLE001 - cleaning up after a failed start
            pass
