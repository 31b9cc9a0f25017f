"""A crash storm with real processes (issue 11, part 5): readiness off at once,
liveness kept until --crashloop-restart-after, both reported."""
from __future__ import annotations

import sys

from tests.integration.podsup_process import PodsupProcess, worker
from tests.integration.servers import http_get, podsup_cli, sample, status_json
from tests.waiting import wait_for

PY = sys.executable


def test_a_storm_turns_readiness_off_at_once_and_keeps_the_pod_live():
    args = ["run", "--workers", "2", "--crashloop-threshold", "3", "--crashloop-interval", "600",
            "--", PY, worker("crasher")]
    with PodsupProcess(args, env={"CRASH_AFTER": "0"}) as p:
        wait_for(lambda: sample(p.http_port, "podsup_crash_loop") == 1, timeout=60, message=p.output)
        assert wait_for(lambda: http_get(p.http_port, "/readyz")[0] == 503, timeout=30, message="/readyz 503")
        assert http_get(p.http_port, "/healthz") == (200, "ok\n")  # the default 5 m have not passed
        assert sample(p.http_port, "podsup_crash_loop_unhealthy") == 0
        wait_for(lambda: (sample(p.http_port, "podsup_crash_loop_seconds") or 0) > 0, timeout=30)
        st = status_json(p.control_path)
        assert st["crash_loop"] and st["ready"] is False and st["healthy"] is True and not st["crash_loop_fatal"]
        assert "still live until --crashloop-restart-after" in podsup_cli("status", "--control", p.control_path).stdout
        p.wait_for_line(r"crash loop: too many worker exits; not ready, respawns slowed .*liveness_fails_after=300s")


def test_a_storm_past_restart_after_fails_liveness_and_says_so():
    args = ["run", "--workers", "2", "--crashloop-threshold", "3", "--crashloop-interval", "600",
            "--crashloop-restart-after", "1", "--", PY, worker("crasher")]
    with PodsupProcess(args, env={"CRASH_AFTER": "0"}) as p:
        status, body = wait_for(lambda: (lambda r: r if r[0] == 503 else None)(http_get(p.http_port, "/healthz")),
                                timeout=60, message=p.output)
        assert "crash loop past --crashloop-restart-after" in body
        assert sample(p.http_port, "podsup_crash_loop_unhealthy") == 1
        assert status_json(p.control_path)["crash_loop_fatal"] is True
        p.wait_for_line(r"crash loop lasted --crashloop-restart-after: liveness fails now")
