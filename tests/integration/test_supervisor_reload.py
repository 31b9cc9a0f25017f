"""HUP: rolling reload, one slot at a time, never fewer than N running."""
from __future__ import annotations

import signal
import sys
import threading

from tests.integration.podsup_process import PodsupProcess, records, running_children, worker
from tests.waiting import wait_for


def test_hup_replaces_every_worker_and_never_dips_below_n(tmp_path):
    n = 3
    args = ["run", "--workers", str(n), "--graceful-timeout", "5", "--", sys.executable, worker("sleeper")]
    with PodsupProcess(args, env={"RECORD_DIR": str(tmp_path)}) as p:
        wait_for(lambda: len(running_children(p.pid)) == n and len(records(tmp_path)) == n, 30,
                 message=p.output)
        old = {r["pid"] for r in records(tmp_path)}
        samples: list[int] = []
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                samples.append(len(running_children(p.pid)))
                done.wait(0.005)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            p.signal(signal.SIGHUP)
            # sleeper dies at once on SIGTERM, so a live child is a running worker
            p.wait_for_line(r"worker stopped slot=\d+", count=n, timeout=60)
            wait_for(lambda: len(running_children(p.pid)) == n, 30, message=p.output)
        finally:
            done.set()
            sampler.join()
        wait_for(lambda: len(records(tmp_path)) == 2 * n, 30, message=p.output)  # new ones wrote theirs
        new = {r["pid"] for r in records(tmp_path)} - old
        assert len(new) == n and not (new & old)
        assert set(running_children(p.pid)) == new
        assert min(samples) >= n, f"dipped to {min(samples)} running workers during the reload"
        assert max(samples) > n  # each replacement starts before its old worker stops
        # one slot at a time, in order, each slot keeping its id
        started = [int(m.group(1)) for m in p.matches(r"worker started slot=(\d+)")][n:]
        assert started == list(range(n))
