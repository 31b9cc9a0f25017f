"""podsup's own footprint (issue 13): its master's memory with 64 idle workers
stays under a generous ceiling, scraped or not, and its default path loads
neither prometheus-client's exposition nor ssl (~10 MB per pod). No timing is asserted."""
from __future__ import annotations

import importlib.util
import shutil
import urllib.request

import psutil

from tests.integration.podsup_process import PodsupProcess, running_children
from tests.waiting import wait_for

WORKERS = 64
#: About 18-19 MB today (bench/lean.py; 28-29 before podsup rendered /metrics
#: itself); the ceiling catches a heavy import or a per-worker leak, never noise.
RSS_CEILING = 24 * 2**20
THREAD_CEILING = 8


def test_master_rss_with_64_idle_workers_stays_under_a_ceiling_after_scrapes():
    sleep = shutil.which("sleep") or "/bin/sleep"
    with PodsupProcess(["run", "--workers", str(WORKERS), "--", sleep, "3600"]) as p:
        wait_for(lambda: len(running_children(p.pid)) >= WORKERS, 60, message=lambda: p.output()[-2000:])
        port = wait_for(lambda: p.http_port, 30, message="the HTTP port")
        for _ in range(3):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as resp:
                assert b"podsup_workers" in resp.read()
        master = psutil.Process(p.pid)
        rss = master.memory_info().rss
        assert rss < RSS_CEILING, f"podsup's RSS {rss / 2**20:.1f} MiB with {WORKERS} idle workers"
        assert master.num_threads() <= THREAD_CEILING
        ssl = importlib.util.find_spec("_ssl")
        if ssl is not None and ssl.origin and ssl.origin.endswith(".so"):  # ssl's C part, loaded with ssl
            with open(f"/proc/{p.pid}/maps") as fh:
                assert ssl.origin not in fh.read(), "podsup's default path imports ssl"
