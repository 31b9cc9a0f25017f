"""Report intake in batches (issue 13): one wake-up reads every ready report
socket, then the sockets rest for a pause sized so no worker's kernel queue
(net.unix.max_dgram_qlen + 1 datagrams) can fill meanwhile."""
from __future__ import annotations

import os

from podsup import client
from podsup.core.commands import Scale
from podsup.host import reports
from podsup.loop import intake
from podsup.loop.intake import REPORT_BATCH, batch_pause
from tests.unit.loop.pool import Pool
from tests.waiting import wait_for


def test_a_slow_pool_pauses_the_longest_batch_pause():
    # 64 workers each sending busy+done every 64 ms: two datagrams a socket per batch
    assert batch_pause(2, REPORT_BATCH + 0.002, 11) == REPORT_BATCH


def test_the_pause_lets_the_fastest_socket_fill_a_quarter_of_its_queue():
    # 3 datagrams in 10 ms = 300/s: a quarter of 11 (2.75) takes ~9.2 ms
    assert abs(batch_pause(3, 0.010, 11, longest=1.0) - 11 / 4 * 0.010 / 3) < 1e-12
    assert batch_pause(3, 0.010, 11, longest=0.005) == 0.005


def test_a_socket_near_half_its_queue_is_read_again_at_once():
    assert batch_pause(6, 0.010, 11) == 0.0
    assert batch_pause(5, 10.0, 11) > 0
    assert batch_pause(1, 0.0, 1) == 0.0  # a queue of one datagram: never pause


def test_no_datagram_or_no_interval_pauses_the_longest():
    assert batch_pause(0, 0.010, 11) == REPORT_BATCH
    assert batch_pause(2, 0.0, 11) == REPORT_BATCH


def test_the_queue_limit_is_the_kernels_max_dgram_qlen_plus_one(tmp_path):
    qlen = tmp_path / "max_dgram_qlen"
    qlen.write_text("512\n")
    assert reports.datagram_queue_limit(str(qlen)) == 513
    assert reports.datagram_queue_limit(str(tmp_path / "absent")) == 11
    if os.path.exists(reports.DGRAM_QLEN_PATH):
        # what a non-blocking sender really gets queued on a report socket
        sock = reports.ReportSocket(str(tmp_path), "q.sock")
        sender = client.Reporter(sock.path)
        sent = 0
        while sent < 10_000 and sender.heartbeat():
            sent += 1
        sender.close()
        assert sent == reports.datagram_queue_limit()
        assert len(sock.receive()) == sent
        sock.close()


def test_a_burst_within_the_queue_during_a_pause_is_counted_whole(monkeypatch):
    monkeypatch.setattr(intake, "batch_pause", lambda *_args: 0.5)  # the burst surely lands in the pause
    pool = Pool(workers=1, first_pid=os.getpid())
    try:
        reporter = client.Reporter(pool.report_path(0))
        assert reporter.done(0.1)
        wait_for(lambda: pool.step() or pool.arb.workers[os.getpid()].requests == 1, 10, message="first done")
        assert not pool.arb._reports_watched  # the batch of one datagram started a pause
        burst = pool.arb._queue_limit // 2  # what the pause sizing allows a socket to gather
        assert all(reporter.done(0.1) for _ in range(burst))
        wait_for(lambda: pool.step() or pool.arb.workers[os.getpid()].requests == 1 + burst, 10,
                 message="the burst counted")
        reporter.close()
    finally:
        pool.close()


def test_commands_are_not_held_by_a_report_pause(monkeypatch):
    monkeypatch.setattr(intake, "batch_pause", lambda *_args: 30.0)
    pool = Pool(workers=1, first_pid=os.getpid())
    try:
        reporter = client.Reporter(pool.report_path(0))
        assert reporter.busy()
        wait_for(lambda: pool.step() or not pool.arb._reports_watched, 10, message="a batch and its pause")
        future = pool.arb.submit(Scale(absolute=2))
        pool.step()
        assert future.result(0) == {"desired": 2, "previous": 1}
        assert 0 < pool.arb.next_timeout() <= 1.0  # the pause never outlasts the loop's tick
        reporter.close()
    finally:
        pool.close()


def test_after_a_pause_the_gathered_reports_are_the_next_batch_without_watching_in_between(monkeypatch):
    pauses = iter([0.05, 30.0])
    monkeypatch.setattr(intake, "batch_pause", lambda *_args: next(pauses))
    pool = Pool(workers=1, first_pid=os.getpid())
    try:
        reporter = client.Reporter(pool.report_path(0))
        assert reporter.done(0.1)
        wait_for(lambda: pool.step() or pool.arb.workers[os.getpid()].requests == 1, 10, message="first batch")
        assert reporter.done(0.1) and reporter.done(0.1)  # land during the 50 ms pause
        wait_for(lambda: pool.step() or pool.arb.workers[os.getpid()].requests == 3, 10, message="second batch")
        assert not pool.arb._reports_watched  # read when the pause ended, and paused again
        reporter.close()
    finally:
        pool.close()
