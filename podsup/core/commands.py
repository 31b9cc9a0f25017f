"""Requests to change the pool's targets.

Signals (recorded by their handlers), the control socket and the HTTP layer
turn what they receive into one of these and hand it to the master loop with
``Arbiter.submit(command)``; the loop is the only place that acts on them
(forks, kills). ``submit`` is thread-safe and wakes the loop; it returns a
``concurrent.futures.Future`` the loop resolves with a short result dict (or
an exception for a refused command).
"""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Scale:
    """Set the worker count: ``absolute`` if given, else current + ``delta``."""

    absolute: int | None = None
    delta: int = 0


@dataclasses.dataclass(frozen=True)
class Reload:
    """Rolling restart, one slot at a time, new worker up before the old stops."""


@dataclasses.dataclass(frozen=True)
class Drain:
    """Graceful stop (what SIGTERM does): readiness off, wait --drain-delay,
    stop workers with --stop-signal, SIGKILL after --graceful-timeout, exit."""


@dataclasses.dataclass(frozen=True)
class FastStop:
    """What SIGINT/SIGQUIT do: stop workers at once and exit."""


@dataclasses.dataclass(frozen=True)
class Recycle:
    """Replace one worker (watchdog): start the replacement first, then stop
    the old one gracefully; ``kill`` kills it at once instead (hung worker)."""

    slot: int
    reason: str
    kill: bool = False


Command = Scale | Reload | Drain | FastStop | Recycle
