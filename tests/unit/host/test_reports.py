"""Where the report sockets go (podsup.host.reports)."""
from __future__ import annotations

import pytest

from podsup.host import reports
from podsup.host.reports import ReportSocketError, report_root


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


def test_the_next_workers_socket_is_opened_ahead_and_handed_out_once(tmp_path):
    import os

    from podsup.host.reports import ReportSockets

    sockets = ReportSockets(str(tmp_path))
    first = sockets.open()  # nothing ahead yet: opened now
    sockets.prepare()
    ahead = sockets.spare
    assert ahead is not None and os.path.exists(ahead.path) and ahead.path != first.path
    sockets.prepare()
    assert sockets.spare is ahead  # one ahead, never more
    second = sockets.open()
    assert second is ahead and sockets.spare is None
    third = sockets.open()
    assert len({first.path, second.path, third.path}) == 3
    sockets.prepare()
    left = sockets.spare.path
    sockets.close()
    assert not os.path.exists(left)  # closed and unlinked with the directory's owner
    for sock in (first, second, third):
        sock.close()
