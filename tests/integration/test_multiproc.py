"""Python workers counting with prometheus-client: podsup provides the
multiprocess directory, marks dead workers, and merges their metrics into its
own /metrics — counts survive respawns, live gauges of dead workers vanish."""
from __future__ import annotations

import os
import signal
import sys

from podsup.multiproc import ENV_MULTIPROC_DIR
from tests.integration.podsup_process import PodsupProcess, worker
from tests.integration.servers import http_get, scrape
from tests.waiting import wait_for

PER_LIFE = 5


def test_worker_metrics_merged_across_respawns():
    with PodsupProcess(["run", "--workers", "2", "--backoff-max", "0.2", "--crashloop-threshold", "0",
                        "--", sys.executable, worker("metrics_worker")],
                       env={"JOBS_PER_LIFE": str(PER_LIFE), "JOB_SECONDS": "0.02"}) as p:
        directory = wait_for(lambda: next((c.environ().get(ENV_MULTIPROC_DIR) for c in p.children()), None),
                             timeout=30, message="a worker with PROMETHEUS_MULTIPROC_DIR")
        assert os.path.isdir(directory)

        def after_respawns():
            got = scrape(p.http_port)
            lives = got.get(("podsup_worker_exits_total", (("code", "3"), ("kind", "exit"))), 0)
            return got if lives >= 4 else None
        got = wait_for(after_respawns, timeout=90, message=lambda: f"4 finished lives; {p.output()[-2000:]}")
        lives = got[("podsup_worker_exits_total", (("code", "3"), ("kind", "exit")))]
        # every finished life did exactly PER_LIFE jobs; their counts are still there
        assert got[("app_jobs_total", ())] >= PER_LIFE * lives
        # podsup's own count of done reports agrees with the workers' counter (give or take jobs in flight)
        assert abs(got[("podsup_requests_total", ())] - got[("app_jobs_total", ())]) <= 2 * 2
        # one livesum gauge per live process: dead workers were marked dead
        alive = wait_for(lambda: (lambda g: g if g in (1.0, 2.0) else None)(
            scrape(p.http_port).get(("app_workers_alive", ()))), timeout=30, message="app_workers_alive <= 2")
        assert alive <= 2
        body = http_get(p.http_port, "/metrics")[1]
        assert "# TYPE podsup_workers gauge" in body and "# TYPE app_jobs_total counter" in body
        p.signal(signal.SIGTERM)
        assert p.wait_exit(timeout=60) == 0
    assert not os.path.exists(directory)  # removed when podsup exited
