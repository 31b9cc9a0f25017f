"""The state the loop's parts share, declared once.

The Arbiter is assembled from mixins, one concern each (spawning, exits,
report intake, signal dispatch, command execution, the pool view,
elasticity). They all read and write the same loop state, which
``Arbiter.__init__`` creates; this class only declares it, so every mixin
type-checks against one list instead of repeating its own copy of it.
Nothing here runs: no ``__init__``, no behaviour.
"""
from __future__ import annotations

import collections
from typing import Any, Callable

from podsup.core import policy
from podsup.core.config import Config
from podsup.host.cgroup import OomCounter
from podsup.host.output import LinePump, Log
from podsup.host.reports import ReportSockets
from podsup.host.system import System
from podsup.loop.table import Slot, Worker


class LoopState:
    """Fields of the Arbiter its mixins use (assigned in ``Arbiter.__init__``)."""

    # what it runs with
    config: Config
    system: System
    log: Log
    oom: OomCounter
    extensions: list[Any]
    preload: Callable[[], object] | None
    keep_fds: frozenset[int]

    # the worker table and its targets
    slots: dict[int, Slot]
    workers: dict[int, Worker]
    desired: int
    bounds: Any  #: podsup.core.sizing.Bounds in dynamic mode, else None
    started: float

    # stopping, draining, reloading
    draining: bool
    stopping: bool
    drain_signal_at: float | None
    drain_why: str | None
    killed_any: bool
    lingering: dict[int, float]  #: pgid -> SIGKILL deadline of a stopped worker's leftovers
    reload_queue: collections.deque[int]
    reload_slot: int | None
    exit_code: int | None

    # crash storms and counters
    crash: policy.CrashWindow
    crash_loop: bool
    crash_loop_since: float | None
    crash_loop_for: Any    #: (now) -> seconds of the current storm or None (podsup.loop.exits)
    crash_loop_fatal: Any  #: (now) -> the storm fails liveness now (podsup.loop.exits)
    _fatal_logged: bool = False
    orphans_reaped: int
    exits: Any
    restarts: Any

    # descriptors and plumbing of the loop
    reports: ReportSockets | None
    _selector: Any
    _pumps: dict[int, LinePump]
    _wake_w: int
    _lock: Any
    #: bumped at the end of every loop iteration: whoever caches a view of the
    #: pool (the /metrics page) knows it may have changed
    generation: int
    _env_cache: tuple[Any, dict[str, str]] | None  #: (os.environ's raw mapping, decoded) at the last spawn

    # methods of one mixin another calls
    _transition: Any
    _stop: Any
    _spawn: Any
    _launch: Any
    _respawn: Any
    _crashed: Any
    _crash_threshold: Any
    _commands: Any
