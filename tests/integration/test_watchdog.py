"""Every watchdog rule with real workers: a leaking one (through a child), one
that hangs after a heartbeat, one that stays busy, request and lifetime
limits, slow requests. Each recycle is counted by reason in /metrics."""
from __future__ import annotations

import re
import sys

from tests.integration.podsup_process import PodsupProcess
from tests.integration.servers import podsup_cli, sample, status_json
from tests.waiting import wait_for

PY = sys.executable

#: The worker stays small; its child grows 4 MiB every 50 ms (RSS counts the tree).
LEAKY = """
import subprocess, sys, time
leak = "import time\\nkeep = []\\nwhile True:\\n    keep.append(bytearray(4 * 2**20))\\n    time.sleep(0.05)\\n"
subprocess.Popen([sys.executable, "-c", leak])
while True:
    time.sleep(1)
"""
HANGS_AFTER_HEARTBEAT = """
import time
from podsup import client
client.heartbeat()
time.sleep(3600)
"""
STAYS_BUSY = """
import time
from podsup import client
client.busy()
time.sleep(3600)
"""
FAST_JOBS = """
import time
from podsup import client
while True:
    with client.job():
        pass
    time.sleep(0.01)
"""
SLOW_JOBS = """
import time
from podsup import client
while True:
    with client.job():
        time.sleep(0.3)
"""
SLEEPER = "import time\ntime.sleep(3600)\n"
#: Heartbeats while it works; on SIGTERM finishes its last job (3 s) in silence.
FINISHES_IN_SILENCE = """
import signal, time
from podsup import client
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
while not stop:
    client.heartbeat()
    time.sleep(0.1)
time.sleep(3)
"""


def recycled(p: PodsupProcess, reason: str, count: int = 1) -> None:
    wait_for(lambda: (sample(p.http_port, "podsup_worker_restarts_total", reason=reason) or 0) >= count,
             timeout=60, message=lambda: f"{count} recycle(s) for {reason}; output:\n{p.output()[-3000:]}")


def recycle_line(p: PodsupProcess, reason: str) -> re.Match:
    return p.wait_for_line(rf"watchdog: recycling worker slot=0 pid=(\d+) reason={reason}")


def line_index(p: PodsupProcess, pattern: str) -> int:
    regex = re.compile(pattern)
    with p._cond:
        lines = [text for _, text in p.lines]
    return next(i for i, text in enumerate(lines) if regex.search(text))


def replaced_first(p: PodsupProcess, reason: str) -> None:
    """The replacement started before the old worker was stopped (capacity never
    dips), the old one got the graceful stop signal, not SIGKILL, and the slot's
    row in ``podsup status`` shows that end as its last exit."""
    old = recycle_line(p, reason).group(1)
    stopped = p.wait_for_line(rf"worker stopped slot=0 pid={old} status=\"signal SIGTERM\"")
    new_started = line_index(p, r"worker started slot=0 pid=(?!%s\b)\d+" % old)
    assert new_started < line_index(p, rf"worker stopping slot=0 pid={old}\b"), p.output()
    assert stopped
    row = next(w for w in status_json(p.control_path)["workers"] if w["id"] == 0 and w["pid"])
    assert row["last_exit"] == "signal SIGTERM" and row["restarts"] >= 1, row


def test_max_rss_counts_children_and_replaces_first():
    with PodsupProcess(["run", "--workers", "1", "--max-rss", "80Mi", "--", PY, "-c", LEAKY]) as p:
        recycled(p, "rss")
        replaced_first(p, "rss")


def test_heartbeat_timeout_kills_a_hung_worker():
    with PodsupProcess(["run", "--workers", "1", "--heartbeat-timeout", "1", "--", PY, "-c",
                        HANGS_AFTER_HEARTBEAT]) as p:
        recycled(p, "heartbeat")
        old = recycle_line(p, "heartbeat").group(1)
        p.wait_for_line(rf"worker stopped slot=0 pid={old} status=\"signal SIGKILL\"")


def test_a_worker_that_never_heartbeats_is_left_alone():
    with PodsupProcess(["run", "--workers", "1", "--heartbeat-timeout", "0.5", "--max-lifetime", "2",
                        "--", PY, "-c", SLEEPER]) as p:
        # the lifetime recycle after 2 s proves 4 heartbeat periods went by without a verdict
        recycled(p, "lifetime")
        assert sample(p.http_port, "podsup_worker_restarts_total", reason="heartbeat") == 0


def test_request_timeout_kills_a_worker_busy_too_long():
    with PodsupProcess(["run", "--workers", "1", "--request-timeout", "1", "--", PY, "-c", STAYS_BUSY]) as p:
        recycled(p, "timeout")
        old = recycle_line(p, "timeout").group(1)
        p.wait_for_line(rf"worker stopped slot=0 pid={old} status=\"signal SIGKILL\"")


def test_max_requests_with_jitter():
    with PodsupProcess(["run", "--workers", "1", "--max-requests", "20", "--max-requests-jitter", "5",
                        "--", PY, "-c", FAST_JOBS]) as p:
        recycled(p, "requests", count=2)
        limits = [int(m.group(1)) for m in p.matches(r"reason=requests detail=\"served \d+ requests >= limit (\d+)\"")]
        assert limits and all(20 <= limit <= 25 for limit in limits), p.output()
        replaced_first(p, "requests")


def test_max_lifetime():
    with PodsupProcess(["run", "--workers", "2", "--max-lifetime", "1", "--", PY, "-c", SLEEPER]) as p:
        recycled(p, "lifetime", count=2)
        assert sample(p.http_port, "podsup_workers_desired") == 2
        replaced_first(p, "lifetime")


def test_slow_requests_are_logged_and_counted():
    with PodsupProcess(["run", "--workers", "1", "--slow-request", "0.2", "--", PY, "-c", SLOW_JOBS]) as p:
        match = p.wait_for_line(r"slow request slot=0 pid=(\d+) duration=(\d+\.\d+)s")
        assert float(match.group(2)) >= 0.2
        pids = {c.pid for c in p.children()}
        assert int(match.group(1)) in pids
        wait_for(lambda: (sample(p.http_port, "podsup_slow_requests_total") or 0) >= 1, timeout=30,
                 message="podsup_slow_requests_total")


def test_a_replaced_worker_finishing_in_silence_is_left_to_the_graceful_timeout():
    with PodsupProcess(["run", "--workers", "1", "--heartbeat-timeout", "1", "--graceful-timeout", "30",
                        "--", PY, "-c", FINISHES_IN_SILENCE]) as p:
        first = int(p.wait_for_line(r"worker idle slot=0 pid=(\d+)").group(1))
        assert podsup_cli("reload", "--control", p.control_path).returncode == 0
        second = int(p.wait_for_line(rf"worker started slot=0 pid=(?!{first}\b)(\d+)").group(1))
        # the old worker stops on its own, 3 s of silence after SIGTERM: not killed for it,
        # and its successor (which a slot-wide recycle would hit) keeps running
        p.wait_for_line(rf"worker stopped slot=0 pid={first} status=\"exit 0\"", timeout=60)
        assert not p.matches(r"watchdog: recycling worker"), p.output()
        assert sample(p.http_port, "podsup_worker_restarts_total", reason="heartbeat") == 0
        assert [w["pid"] for w in status_json(p.control_path)["workers"]] == [second]
