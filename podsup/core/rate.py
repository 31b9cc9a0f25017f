"""The one rolling rate (events per second over a trailing window); pure: time is passed in."""
from __future__ import annotations

import collections
import math


class RollingRate:
    """Events per second over the trailing ``window`` seconds (pure: time is passed in).

    The one rate of podsup: each worker's QPS in ``podsup status`` and the
    pool's ``podsup_requests_per_second`` (podsup.plugins.metrics) are both this class.
    Events are kept in one-second buckets, so memory is bounded by the window
    whatever the report rate (1,000 ``done``/s cost 10 buckets, not 10,000
    timestamps). A bucket counts while its second is inside the window, so the
    rate never includes events older than ``window`` and may miss up to one
    second of the oldest ones.

    A source younger than the window (a fresh worker, a fresh pod) would
    under-report by its missing history, so the rate divides by its age, at
    least one second: give ``start`` (monotonic) once, or ``age`` per call.
    """

    def __init__(self, window: float = 10.0, start: float | None = None) -> None:
        if window <= 0:
            raise ValueError("window must be > 0")
        self.window = window
        self.start = start
        self._buckets: collections.deque[list[float]] = collections.deque()  # [second, count]

    def record(self, now: float, count: float = 1.0) -> None:
        second = math.floor(now)
        if self._buckets and self._buckets[-1][0] == second:
            self._buckets[-1][1] += count
        else:
            self._buckets.append([second, count])
        self._expire(now)

    add = record  #: the name podsup.plugins.metrics used

    def _expire(self, now: float) -> None:
        horizon = now - self.window
        while self._buckets and self._buckets[0][0] < horizon:
            self._buckets.popleft()

    def rate(self, now: float, age: float | None = None) -> float:
        """Rate over the window, or over ``age`` (or ``now - start``) if the source is younger."""
        self._expire(now)
        if age is None and self.start is not None:
            age = now - self.start
        span = self.window if age is None else min(self.window, max(1.0, age))
        return sum(count for _, count in self._buckets) / span
