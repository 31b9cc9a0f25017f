"""The configuration model of ``podsup run``: the frozen :class:`Config` every
layer receives, its bounds, and :class:`ConfigError`.

Reading it from flags, ``PODSUP_<FLAG>`` variables and the YAML file is the
command line's job (podsup.cli.options); the value parsers it uses are pure
functions (podsup.core.values).
"""
from __future__ import annotations

import dataclasses
import signal

from podsup import names

EXIT_USAGE = 2
#: The most workers one podsup runs (--workers, `podsup scale`, TTIN): beyond
#: this a typo would fork-bomb the pod and stall the master loop.
MAX_WORKERS = 1024
#: The longest duration an option takes (seconds): a year.
MAX_DURATION = 365 * 24 * 3600.0
#: The largest byte size an option takes (--max-rss).
MAX_BYTES = 2**63 - 1


class ConfigError(Exception):
    """A bad value: the message is the single line shown to the user."""


def _http_default() -> tuple[str, int]:
    host, _, port = names.DEFAULT_HTTP.rpartition(":")
    return host, int(port)


@dataclasses.dataclass(frozen=True)
class Config:
    """The resolved configuration, passed to everything (never mutated)."""

    command: tuple[str, ...] = ()
    workers: int = 1
    max_workers: int = 0
    min_workers: int = 1
    spare_workers: int = 1
    idle_timeout: float = 10.0
    start_period: float = 1.0
    start_timeout: float = 60.0
    stop_signal: int = int(signal.SIGTERM)
    graceful_timeout: float = 30.0
    drain_delay: float = 0.0
    normal_exit_codes: frozenset[int] = frozenset()
    backoff_max: float = 10.0
    crashloop_threshold: int | None = None  #: None: scaled to the pool (policy.crashloop_threshold)
    crashloop_restart_after: float = 300.0
    crashloop_interval: float = 60.0
    max_requests: int = 0
    max_requests_jitter: int = 0
    max_lifetime: float = 0.0
    max_rss: int = 0
    heartbeat_timeout: float = 0.0
    request_timeout: float = 0.0
    slow_request: float = 0.0
    http: tuple[str, int] | None = _http_default()
    control: str | None = None  #: load() fills in default_control_path()
    queue: str | None = None
    queue_interval: float = 5.0
    min_ready: int | None = None
    log_format: str = "text"
    preload: str | None = None
    config: str | None = None

    @property
    def dynamic(self) -> bool:
        """--max-workers given: the pool sizes itself within [min, max]."""
        return self.max_workers > 0

    def ready_needed(self, desired: int) -> int:
        """Running workers /readyz needs when ``desired`` are wanted: all of
        them (or --min-ready, capped by ``desired``), and at least one — a pod
        scaled to 0 workers serves nothing, so it must not count as ready.
        Only an explicit ``--min-ready 0`` means ready with no worker up. In
        dynamic mode the default is --min-workers, not all: a pool growing
        under load starts workers that must not make the pod unready."""
        if self.min_ready == 0:
            return 0
        default = min(self.min_workers, desired) if self.dynamic else desired
        needed = default if self.min_ready is None else min(self.min_ready, desired)
        return max(needed, 1)
