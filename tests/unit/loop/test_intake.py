"""podsup.loop.intake: worker reports move the worker state machine.

All against FakeSystem: no processes, no real waiting. Tests are named after
the transitions they check.
"""
from __future__ import annotations

import os

from podsup import client
from podsup.core import commands
from podsup.core.states import WorkerState
from tests.waiting import wait_for


# --- worker state machine -------------------------------------------------

def test_starting_to_idle_on_first_report(pools):
    pool = pools()
    pool.arb.handle_report(pool.pid(0), b"heartbeat")
    assert pool.state(0) is WorkerState.IDLE
    assert pool.state(1) is WorkerState.STARTING
    assert pool.arb.transitions[("starting", "idle")] == 1
    assert pool.arb.snapshot().workers[0].last_heartbeat is not None


def test_starting_to_idle_after_the_startup_period(pools):
    pool = pools()
    pool.advance(0.5)
    assert pool.state(0) is WorkerState.STARTING
    pool.advance(0.5)
    assert pool.state(0) is WorkerState.IDLE and pool.state(1) is WorkerState.IDLE


def test_idle_to_busy_on_busy_and_busy_to_idle_on_done(pools):
    pool = pools()
    pid = pool.pid(0)
    pool.arb.handle_report(pid, b"busy")
    assert pool.state(0) is WorkerState.BUSY
    assert pool.arb.snapshot().workers[0].busy_since is not None
    pool.advance(0.2)
    pool.arb.handle_report(pid, b"done 0.2\n")
    worker = pool.arb.snapshot().workers[0]
    assert worker.state is WorkerState.IDLE and worker.busy_since is None
    assert worker.requests == 1 and worker.qps > 0
    pool.arb.handle_report(pid, b"busy")
    pool.arb.handle_report(pid, b"idle")
    assert pool.state(0) is WorkerState.IDLE
    assert pool.arb.snapshot().workers[0].requests == 1  # idle is not a request


def test_stopping_is_final_reports_do_not_revive_a_stopping_worker(pools):
    pool = pools(workers=1)
    old = pool.pid(0)
    pool.run(commands.Scale(absolute=0))
    worker = pool.arb.workers[old]
    assert worker.state is WorkerState.STOPPING
    pool.arb.handle_report(old, b"busy")
    assert worker.state is WorkerState.STOPPING


def test_queue_report_sets_the_pool_queue_depth(pools):
    pool = pools()
    pool.arb.handle_report(pool.pid(1), b"queue jobs 42")
    assert pool.arb.snapshot().queues == {"jobs": 42.0}


def test_a_queue_depth_nobody_refreshes_expires(pools):
    from podsup.loop.intake import QUEUE_REPORT_TTL

    pool = pools()
    pool.arb.handle_report(pool.pid(0), b"queue jobs 42")
    pool.advance(QUEUE_REPORT_TTL - 1)
    pool.arb.handle_report(pool.pid(0), b"queue other 1")
    assert pool.arb.snapshot().queues == {"jobs": 42.0, "other": 1.0}
    pool.advance(2)
    assert pool.arb.snapshot().queues == {"other": 1.0}  # a stale backlog is gone, not kept for the HPA


def test_reported_queue_names_are_bounded(pools):
    from podsup.loop.intake import MAX_REPORTED_QUEUES, QUEUE_REPORT_TTL

    pool = pools()
    for i in range(MAX_REPORTED_QUEUES + 10):
        pool.arb.handle_report(pool.pid(0), f"queue q{i} {i}".encode())
    snap = pool.arb.snapshot()
    assert len(snap.queues) == MAX_REPORTED_QUEUES and snap.malformed_reports == 10
    assert pool.log().count("too many queue names") == 1
    pool.arb.handle_report(pool.pid(0), b"queue q0 7")  # a known name is still updated
    assert pool.arb.snapshot().queues["q0"] == 7.0
    pool.advance(QUEUE_REPORT_TTL + 1)
    pool.arb.handle_report(pool.pid(0), b"queue fresh 1")  # stale names make room
    assert pool.arb.snapshot().queues == {"fresh": 1.0}


def test_malformed_reports_are_counted_and_ignored(pools):
    pool = pools()
    for data in (b"", b"dance", b"done soon", b"queue jobs", b"\xff\xfe", b"busy now"):
        pool.arb.handle_report(pool.pid(0), data)
    assert pool.arb.snapshot().malformed_reports == 6
    assert pool.state(0) is WorkerState.STARTING


def test_report_over_the_real_socket_is_attributed_by_kernel_credentials(pools):
    # the fake pool's first worker gets our own pid, so a datagram we send is
    # attributed to it by SCM_CREDENTIALS, not by anything in the payload, nor
    # by the socket: sent to slot 1's socket, it still counts for slot 0
    pool = pools(workers=2, first_pid=os.getpid())
    assert pool.pid(0) == os.getpid()
    reporter = client.Reporter(pool.report_path(1))
    assert reporter.busy()

    def busy() -> bool:
        pool.step()
        return pool.state(0) is WorkerState.BUSY
    wait_for(busy, 10, message="the busy report to arrive")
    assert pool.state(1) is WorkerState.STARTING
    assert reporter.send("not a report")
    wait_for(lambda: pool.step() or pool.arb.malformed_reports == 1, 10, message="malformed count")
    reporter.close()
