"""The one rolling rate (podsup.core.rate)."""
from __future__ import annotations

import pytest

from podsup.core.rate import RollingRate


def test_rolling_rate_over_the_window_and_for_young_workers():
    rate = RollingRate(window=10.0)
    for t in range(20):
        rate.record(100.0 + t * 0.5)   # 2 per second for 10 s
    assert rate.rate(110.0) == pytest.approx(2.0)
    assert rate.rate(125.0) == 0.0
    young = RollingRate(window=10.0)
    for t in (0.1, 0.2, 0.3, 0.4):
        young.record(t)
    assert young.rate(2.0, age=2.0) == 2.0  # 4 over the 2 s it has lived


def test_one_rolling_rate_for_status_and_metrics():
    """Each worker's QPS (status) and podsup_requests_per_second (metrics) are
    the same implementation, with memory bounded by the window."""
    from podsup.plugins import metrics
    assert metrics.RollingRate is RollingRate
    rate = RollingRate(window=10.0)
    for i in range(100_000):
        rate.record(1000.0 + i / 1000.0)   # 1,000 events/s for 100 s
    assert len(rate._buckets) <= 11
    assert rate.rate(1100.0) == pytest.approx(1000.0)
