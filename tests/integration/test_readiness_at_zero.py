"""/readyz when the pool is scaled to 0 workers inside the pod (``podsup scale 0``)."""
from __future__ import annotations

import sys

from tests.integration.podsup_process import PodsupProcess, worker
from tests.integration.servers import http_get, podsup_cli, status_json
from tests.waiting import wait_for

PY = sys.executable


def readyz_becomes(p: PodsupProcess, code: int) -> tuple[int, str]:
    return wait_for(lambda: (lambda r: r if r[0] == code else None)(http_get(p.http_port, "/readyz")),
                    timeout=30, message=lambda: f"/readyz {code}; output:\n{p.output()[-2000:]}")


def test_scaled_to_zero_workers_is_not_ready_and_scaling_back_makes_it_ready():
    with PodsupProcess(["run", "--workers", "1", "--", PY, worker("metrics_worker")]) as p:
        readyz_becomes(p, 200)
        assert podsup_cli("scale", "0", "--control", p.control_path).returncode == 0
        assert readyz_becomes(p, 503) == (503, "scaled to 0 workers\n")
        assert status_json(p.control_path)["ready"] is False
        assert podsup_cli("scale", "1", "--control", p.control_path).returncode == 0
        readyz_becomes(p, 200)


def test_min_ready_0_stays_ready_with_no_worker():
    with PodsupProcess(["run", "--workers", "1", "--min-ready", "0", "--", PY, worker("metrics_worker")]) as p:
        readyz_becomes(p, 200)
        assert podsup_cli("scale", "0", "--control", p.control_path).returncode == 0
        wait_for(lambda: status_json(p.control_path)["running"] == 0, timeout=30, message="no worker running")
        assert http_get(p.http_port, "/readyz")[0] == 200
