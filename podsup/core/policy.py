"""Pure decisions of the master loop: respawn backoff, crash storm, job mode.

Plain functions over plain numbers so each rule is unit-tested on its own;
the loop (podsup.loop.arbiter) only feeds them what happened and obeys.
"""
from __future__ import annotations

import dataclasses
import signal
from collections import deque
from typing import Iterable

#: First non-immediate respawn delay; doubles per consecutive failure.
BACKOFF_BASE = 0.1
#: A worker that stayed up this long was healthy: its slot's backoff resets.
STABLE_UPTIME = 5.0
#: In a crash storm no slot is respawned faster than this, whatever
#: --backoff-max says, so a storm can never turn into a busy spin.
CRASHLOOP_MIN_DELAY = 1.0


@dataclasses.dataclass(frozen=True)
class RespawnPlan:
    delay: float       #: seconds to wait before the replacement is started
    failures: int      #: the slot's consecutive-failure count after this exit


def plan_respawn(failures: int, uptime: float, backoff_max: float, crash_loop: bool,
                 stable_uptime: float = STABLE_UPTIME) -> RespawnPlan:
    """Delay before refilling a slot whose worker just exited abnormally.

    ``failures`` counts the slot's consecutive short-lived workers. A worker
    that stayed up ``stable_uptime`` resets it, so the first respawn after a
    healthy run is immediate; then 0.1 s, 0.2 s, 0.4 s ... up to
    ``backoff_max``. In a crash storm the delay is at least
    ``CRASHLOOP_MIN_DELAY``.
    """
    if uptime >= stable_uptime:
        failures = 0
    delay = backoff_delay(failures, backoff_max)
    if crash_loop:
        delay = max(delay, CRASHLOOP_MIN_DELAY)
    return RespawnPlan(delay=delay, failures=failures + 1)


def backoff_delay(failures: int, backoff_max: float) -> float:
    """0 for the first failure, then BACKOFF_BASE doubling, capped."""
    if failures <= 0:
        return 0.0
    # cap the exponent: 2**64 would only overflow float maths for nothing
    return min(backoff_max, BACKOFF_BASE * 2 ** min(failures - 1, 60))


def is_done(code: int | None, normal_exit_codes: Iterable[int]) -> bool:
    """Job mode: a worker exiting with a normal code has finished for good."""
    return code is not None and code in normal_exit_codes


class TimeWindow:
    """Event times within the trailing ``span`` seconds."""

    def __init__(self, span: float) -> None:
        self.span = span
        self.times: deque[float] = deque()

    def record(self, now: float) -> None:
        self.times.append(now)
        self.prune(now)

    def prune(self, now: float) -> None:
        while self.times and self.times[0] <= now - self.span:
            self.times.popleft()

    def count(self, now: float) -> int:
        self.prune(now)
        return len(self.times)

    def clears_at(self) -> float | None:
        """When the oldest event leaves the window (a timer for the loop)."""
        return self.times[0] + self.span if self.times else None


class CrashWindow(TimeWindow):
    """Abnormal exits within the trailing ``interval`` seconds.

    ``threshold`` 0 disables crash-storm detection (PHP-FPM's
    emergency_restart_threshold = 0).
    """

    def __init__(self, threshold: int, interval: float) -> None:
        super().__init__(interval)
        self.threshold = threshold

    def in_crash_loop(self, now: float) -> bool:
        return crash_storm(self.count(now), self.threshold)

    def would_storm(self, now: float) -> bool:
        """One more exit recorded at ``now`` would make (or keep) a crash storm."""
        return crash_storm(self.count(now) + 1, self.threshold)


#: The automatic --crashloop-threshold: this many exits per worker within the
#: interval, and never less than CRASHLOOP_MIN_THRESHOLD. A fixed 10 made a
#: 64-worker pool "storm" on a few slow crashes, and a 4-worker one too.
CRASHLOOP_PER_WORKER = 2
CRASHLOOP_MIN_THRESHOLD = 10


def crashloop_threshold(configured: int | None, workers: int) -> int:
    """--crashloop-threshold if given, else scaled to the pool: max(10, 2 per
    worker), ``workers`` being --max-workers in dynamic mode, else the desired count."""
    if configured is not None:
        return configured
    return max(CRASHLOOP_MIN_THRESHOLD, CRASHLOOP_PER_WORKER * workers)


def storm_fails_liveness(storm_for: float | None, restart_after: float) -> bool:
    """A crash storm fails readiness at once (no traffic to a pool that cannot
    serve) but liveness only once it has lasted ``restart_after`` seconds
    (--crashloop-restart-after; 0: never): a pod restart cures nothing when a
    downstream service is down, so it is the last resort, not the first."""
    return storm_for is not None and restart_after > 0 and storm_for >= restart_after


def crash_storm(exits_in_window: int, threshold: int) -> bool:
    """More than ``threshold`` exits in the window is a crash storm."""
    return threshold > 0 and exits_in_window > threshold


def describe_exit(code: int | None, sig: int | None, oom: bool = False) -> str:
    """'exit 3', 'signal SIGKILL' or 'oom' (keys of the exits-by counters)."""
    if oom:
        return "oom"
    if sig is not None:
        return f"signal {signal_name(sig)}"
    return f"exit {code}"


def restart_reason(code: int | None, sig: int | None) -> str:
    """Reason label of a respawn after an unrequested exit."""
    return "signal" if sig is not None else "exit"


def signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"SIG{sig}"
