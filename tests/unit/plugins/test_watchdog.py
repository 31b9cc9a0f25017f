"""Watchdog policy (pure) and its extension against a fake arbiter at our seam."""
from __future__ import annotations

import concurrent.futures
import logging
import os
import random
import subprocess
import sys

import pytest

from podsup.core.commands import Recycle
from podsup.core.protocol import Report
from podsup.plugins.watchdog import Limits, WatchdogExtension, WorkerWatch, check, request_limit, tree_rss
from tests.waiting import wait_for


def watch(**over) -> WorkerWatch:
    data = dict(slot=3, pid=99, started=100.0)
    data.update(over)
    return WorkerWatch(**data)


def test_healthy_worker_has_no_verdict():
    limits = Limits(max_rss=1000, max_requests=10, max_lifetime=60, heartbeat_timeout=5, request_timeout=5)
    assert check(watch(rss_bytes=999, requests=9, request_limit=10, last_heard=104, busy_since=104), limits, 105) is None


def test_request_timeout_kills():
    v = check(watch(busy_since=100.0), Limits(request_timeout=30), 130.5)
    assert (v.slot, v.pid, v.reason, v.kill) == (3, 99, "timeout", True)
    assert check(watch(busy_since=None), Limits(request_timeout=30), 1e9) is None


def test_heartbeat_timeout_only_after_a_first_heartbeat():
    limits = Limits(heartbeat_timeout=10)
    assert check(watch(last_heard=None), limits, 1e9) is None   # never sent one: supervised by process only
    v = check(watch(last_heard=100.0), limits, 110.1)
    assert (v.reason, v.kill) == ("heartbeat", True)


def test_soft_limits_recycle_gracefully():
    v = check(watch(rss_bytes=2048), Limits(max_rss=1024), 101)
    assert (v.reason, v.kill) == ("rss", False)
    v = check(watch(requests=10, request_limit=10), Limits(max_requests=10), 101)
    assert (v.reason, v.kill) == ("requests", False)
    v = check(watch(), Limits(max_lifetime=60), 160.5)
    assert (v.reason, v.kill) == ("lifetime", False)


def test_precedence_hard_failures_first_and_only_once():
    w = watch(busy_since=0.0, rss_bytes=10 ** 9, last_heard=0.0)
    limits = Limits(max_rss=1, request_timeout=1, heartbeat_timeout=1)
    assert check(w, limits, 200).reason == "timeout"
    w.recycled = True
    assert check(w, limits, 200) is None


def test_request_limit_jitter_is_within_bounds_and_varies():
    rng = random.Random(7)
    limits = Limits(max_requests=100, max_requests_jitter=20)
    values = {request_limit(limits, rng) for _ in range(200)}
    assert min(values) >= 100 and max(values) <= 120 and len(values) > 5
    assert request_limit(Limits(max_requests=100), rng) == 100
    assert request_limit(Limits(), rng) is None


def test_from_config_turns_zero_into_off():
    class Cfg:
        max_rss = 0; max_requests = 5; max_requests_jitter = 0; max_lifetime = 0.0
        heartbeat_timeout = 2.5; request_timeout = 0.0; slow_request = 0.0
    limits = Limits.from_config(Cfg())
    assert limits == Limits(max_requests=5, heartbeat_timeout=2.5)


class FakeArbiter:
    def __init__(self):
        self.submitted = []

    def submit(self, command):
        self.submitted.append(command)
        f = concurrent.futures.Future()
        f.set_result({})
        return f


def test_extension_tracks_reports_and_submits_each_recycle_once(caplog):
    now = {"t": 0.0}
    slow = []
    ext = WatchdogExtension(Limits(max_requests=2, heartbeat_timeout=5, request_timeout=10, slow_request=1.0),
                            clock=lambda: now["t"], on_slow=lambda: slow.append(1))
    arbiter = FakeArbiter()
    ext.attach(arbiter)
    ext.on_spawn(0, 10)
    ext.on_spawn(1, 11)
    ext.on_spawn(2, 12)
    ext.on_report(0, 10, Report("done", seconds=0.1))
    with caplog.at_level(logging.WARNING, logger="podsup.watchdog"):
        ext.on_report(0, 10, Report("done", seconds=2.5))
    assert "slow request slot=0 pid=10 duration=2.500s" in caplog.text and slow == [1]
    ext.on_report(1, 11, Report("heartbeat"))
    ext.on_report(2, 12, Report("busy"))
    now["t"] = 6.0
    ext.tick(now["t"])
    ext.tick(now["t"])
    assert arbiter.submitted == [Recycle(slot=0, reason="requests", kill=False),
                                 Recycle(slot=1, reason="heartbeat", kill=True)]
    now["t"] = 11.0
    ext.tick(now["t"])
    assert arbiter.submitted[-1] == Recycle(slot=2, reason="timeout", kill=True)
    ext.on_exit(2, 12, "signal SIGKILL")
    assert 12 not in ext.watches


def test_a_report_counts_for_the_worker_the_loop_placed_it_on_only():
    # the loop resolves helpers (socat) to their worker before calling on_report;
    # two lives of one slot (a reload) are never mixed up here
    ext = WatchdogExtension(Limits(max_requests=5), clock=lambda: 0.0)
    ext.on_spawn(4, 40)
    ext.on_spawn(4, 41)  # the successor in slot 4
    ext.on_report(4, 40, Report("done", seconds=0.0))
    ext.on_report(4, 4000, Report("done", seconds=0.0))  # no such worker: nobody's budget
    assert ext.watches[40].requests == 1 and ext.watches[41].requests == 0


def test_tree_rss_counts_children():
    child = subprocess.Popen([sys.executable, "-c", "import sys; b = bytearray(40 * 2**20); sys.stdin.read()"],
                             stdin=subprocess.PIPE)
    try:
        own = tree_rss(os.getpid())
        # the child's 40 MiB show up in our tree once it has allocated them
        wait_for(lambda: tree_rss(os.getpid()) - own > 30 * 2 ** 20, timeout=30, message="child's RSS in the tree")
    finally:
        child.stdin.close()
        child.wait(timeout=30)
    assert tree_rss(child.pid) is None
