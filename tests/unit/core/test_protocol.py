"""The report protocol (podsup.core.protocol): parsing a worker's datagram."""
from __future__ import annotations

import pytest

from podsup.core.protocol import MalformedReport, Report, parse_report


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


@pytest.mark.parametrize("data", [b"queue a\x00b 3", b"queue " + b"q" * 201 + b" 1", "queue café\u200b 2".encode()])
def test_queue_names_that_cannot_be_a_label_are_malformed(data):
    with pytest.raises(MalformedReport):
        parse_report(data)


def test_a_printable_queue_name_with_label_syntax_is_kept_verbatim():
    assert parse_report(b'queue q{a="b"} 2') == Report("queue", queue='q{a="b"}', depth=2.0)
