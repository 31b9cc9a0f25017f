"""The report protocol: parsing and the rolling rate."""
from __future__ import annotations

import pytest

from podsup.host import reports
from podsup.core.protocol import MalformedReport, Report, parse_report
from podsup.core.rate import RollingRate
from podsup.host.reports import ReportSocketError, report_root


@pytest.mark.parametrize("data,expected", [
    (b"heartbeat", Report("heartbeat")),
    (b"busy\n", Report("busy")),
    (b"idle", Report("idle")),
    (b"done 0.25", Report("done", seconds=0.25)),
    (b"done", Report("done")),
    (b"queue jobs 17", Report("queue", queue="jobs", depth=17.0)),
    (b"  queue jobs 0 \n", Report("queue", queue="jobs", depth=0.0)),
])
def test_valid_reports(data, expected):
    assert parse_report(data) == expected


@pytest.mark.parametrize("data", [b"", b"\n", b"hello", b"done -1", b"done nan", b"done 1 2",
                                  b"busy please", b"queue jobs", b"queue jobs many", b"queue jobs -3",
                                  b"\xff", b"BUSY"])
def test_malformed_reports(data):
    with pytest.raises(MalformedReport):
        parse_report(data)


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


def test_report_dir_stays_in_a_short_tmpdir():
    assert report_root("/tmp") is None  # tempfile's own choice ($TMPDIR)


def test_report_dir_moves_to_tmp_when_tmpdir_is_too_deep_for_a_socket_path():
    deep = "/var/" + "d" * 80
    assert report_root(deep) == reports.FALLBACK_ROOT


def test_report_dir_nowhere_is_one_line_naming_tmpdir(monkeypatch):
    monkeypatch.setattr(reports, "FALLBACK_ROOT", "/nonexistent-podsup-fallback")
    deep = "/var/" + "d" * 80
    with pytest.raises(ReportSocketError) as info:
        report_root(deep)
    message = str(info.value)
    assert f"TMPDIR={deep} is too long" in message and "107 bytes" in message and "\n" not in message


@pytest.mark.parametrize("data", [b"queue a\x00b 3", b"queue " + b"q" * 201 + b" 1", "queue café\u200b 2".encode()])
def test_queue_names_that_cannot_be_a_label_are_malformed(data):
    with pytest.raises(MalformedReport):
        parse_report(data)


def test_a_printable_queue_name_with_label_syntax_is_kept_verbatim():
    assert parse_report(b'queue q{a="b"} 2') == Report("queue", queue='q{a="b"}', depth=2.0)
