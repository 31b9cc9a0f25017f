"""The start gate (podsup.startgate): when a new worker counts."""
from __future__ import annotations

from podsup.core import startgate
from podsup.core.startgate import Verdict


def test_silent_pool_worker_counts_after_the_start_period():
    assert startgate.verdict(0.99, pool_reports=False, start_period=1.0) is Verdict.WAIT
    assert startgate.verdict(1.0, pool_reports=False, start_period=1.0) is Verdict.UP


def test_protocol_pool_worker_waits_for_its_report_past_the_start_period():
    assert startgate.verdict(30.0, pool_reports=True, start_period=1.0, start_timeout=60.0) is Verdict.WAIT


def test_protocol_pool_worker_silent_past_start_timeout_is_replaced():
    assert startgate.verdict(60.0, pool_reports=True, start_timeout=60.0) is Verdict.TIMEOUT


def test_start_timeout_zero_waits_for_ever():
    assert startgate.verdict(1e9, pool_reports=True, start_timeout=0.0) is Verdict.WAIT
    assert startgate.due(5.0, pool_reports=True, start_timeout=0.0) is None


def test_due_is_when_the_verdict_changes():
    assert startgate.due(5.0, pool_reports=False, start_period=2.0) == 7.0
    assert startgate.due(5.0, pool_reports=True, start_timeout=30.0) == 35.0
