"""Rendering of `podsup status` from the JSON the control socket returns."""
from __future__ import annotations

import json

import pytest

from podsup.core import status_view
from podsup.core.snapshot import PoolSnapshot, WorkerSnapshot
from podsup.core.states import PoolState, WorkerState


def status() -> dict:
    workers = (
        WorkerSnapshot(id=1, pid=4242, state=WorkerState.BUSY, started_at=1000.0, uptime=3725.0,
                       rss_bytes=25 * 1024 * 1024, cpu_percent=12.345, requests=1500, qps=3.25,
                       restarts=2, last_exit="signal SIGKILL"),
        WorkerSnapshot(id=0, pid=None, state=None, started_at=None, uptime=0.0, rss_bytes=0,
                       cpu_percent=0.0, requests=0, qps=0.0, restarts=5, last_exit="exit 1"),
    )
    snap = PoolSnapshot(version="0.1.0", started_at=86400.0, uptime=90061.0, state=PoolState.CRASH_LOOP,
                        desired=2, running=1, ready=False, healthy=False, draining=False, crash_loop=True,
                        exits={"exit 1": 5, "signal SIGKILL": 2}, restarts={"exit": 5, "rss": 2},
                        workers=workers, loadavg=(0.5, 0.25, 1.0), queues={"jobs": 17.0})
    return json.loads(json.dumps(snap.to_json()))  # exactly what crosses the socket


@pytest.mark.parametrize("seconds,text", [(0, "0s"), (45.9, "45s"), (723, "12m03s"), (3725, "1h02m"),
                                          (90061, "1d01h"), (None, "-"), (-3, "0s")])
def test_format_duration(seconds, text):
    assert status_view.format_duration(seconds) == text


@pytest.mark.parametrize("size,text", [(0, "0B"), (512, "512B"), (2048, "2.0K"), (25 * 1024 ** 2, "25.0M"),
                                       (300 * 1024 ** 2, "300M"), (3 * 1024 ** 3, "3.0G"), (None, "-")])
def test_format_bytes(size, text):
    assert status_view.format_bytes(size) == text


def test_table_header_and_rows():
    text = status_view.render_table(status())
    lines = text.splitlines()
    assert "podsup 0.1.0    state: crash-loop" in text
    assert "start time: 1970-01-02 00:00:00 UTC    uptime: 1d01h" in text
    assert "load average: 0.50, 0.25, 1.00" in text
    assert "workers: 1 running / 2 desired    ready: no    healthy: no" in text
    assert "exits: exit 1: 5, signal SIGKILL: 2" in text
    assert "restarts: exit: 5, rss: 2" in text
    assert "queues: jobs=17" in text
    header = next(line for line in lines if line.startswith("slot"))
    assert header.split() == ["slot", "pid", "state", "uptime", "rss", "cpu%", "requests", "qps",
                              "restarts", "last", "exit"]
    rows = lines[lines.index(header) + 1:-1]
    assert rows[0].split() == ["0", "-", "down", "-", "-", "-", "0", "0.0", "5", "exit", "1"]  # sorted by slot
    assert rows[1].split() == ["1", "4242", "busy", "1h02m", "25.0M", "12.3", "1500", "3.2", "2", "signal", "SIGKILL"]
    # columns line up: every row as long as the header or shorter only by trailing text
    assert len({line.index("restarts") for line in [header]}) == 1


def test_json_is_one_object_with_the_worker_fields():
    data = json.loads(status_view.render_json(status()))
    worker = next(w for w in data["workers"] if w["id"] == 1)
    for key in ("id", "pid", "state", "rss_bytes", "cpu_percent", "requests", "restarts"):
        assert key in worker
    assert worker["state"] == "busy" and worker["rss_bytes"] == 25 * 1024 * 1024
    assert status_view.render_json(status()).count("\n") == 1


def test_table_of_an_empty_pool():
    snap = status()
    snap["workers"], snap["exits"], snap["restarts"], snap["queues"] = [], {}, {}, {}
    text = status_view.render_table(snap)
    assert "exits: none" in text and "restarts:" not in text and "queues:" not in text


def test_header_shows_dynamic_bounds_only_in_dynamic_mode():
    data = status()
    assert "(dynamic" not in status_view.render_table(data)
    data.update(dynamic=True, min_workers=2, max_workers=8)
    assert "workers: 1 running / 2 desired (dynamic 2..8)" in status_view.render_table(data)


def test_header_shows_how_long_a_crash_storm_lasted_and_whether_liveness_fails():
    data = status()  # crash_loop True
    data.update(crash_loop_seconds=80.0, crash_loop_fatal=False)
    assert "crash loop: 1m20s (not ready; still live until --crashloop-restart-after)" in status_view.render_table(data)
    data.update(crash_loop_seconds=400.0, crash_loop_fatal=True)
    assert "liveness fails: past --crashloop-restart-after" in status_view.render_table(data)
