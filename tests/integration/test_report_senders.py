"""Reports sent from short-lived helper processes (a shell worker's ``socat``)
are all counted: the sender is often gone, and reaped by the worker's shell,
before podsup reads its datagram, so its process group cannot be looked up;
the slot's own socket says whose report it is."""
from __future__ import annotations

import shutil

import pytest

from tests.integration.podsup_process import PodsupProcess, worker
from tests.integration.servers import status_json
from tests.waiting import wait_for

EXAMPLES = worker("x").rsplit("/", 1)[0]
JOBS = 40


@pytest.mark.skipif(shutil.which("socat") is None, reason="socat not installed")
def test_every_done_report_from_a_shell_workers_socat_is_counted_in_its_slot():
    # each slot does JOBS jobs (one socat per report), then stays up idle
    script = f"JOBS={JOBS} JOB_SECONDS=0 sh {EXAMPLES}/report_worker.sh; exec sleep 600"
    with PodsupProcess(["run", "--workers", "2", "--", "sh", "-c", script]) as p:
        def counted() -> list[int]:
            return [w["requests"] for w in status_json(p.control_path)["workers"]]
        wait_for(lambda: counted() == [JOBS, JOBS], timeout=60,
                 message=lambda: f"{JOBS} done reports in each slot (counted: {counted()}); {p.output()[-2000:]}")
        st = status_json(p.control_path)
        assert [w["restarts"] for w in st["workers"]] == [0, 0]  # one life per slot: no count from a respawn
        assert st["queues"] == {"shell-backlog": float(JOBS)}
