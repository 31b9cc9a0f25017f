"""Drain (the preStop hook) and the health endpoints with a real podsup."""
from __future__ import annotations

import signal
import subprocess
import sys

import psutil

from tests.integration.podsup_process import PodsupProcess, worker
from tests.integration.servers import http_get, live_pids, podsup_cli, sample, status_json
from tests.waiting import wait_for

PY = sys.executable


def ready(p: PodsupProcess) -> None:
    wait_for(lambda: http_get(p.http_port, "/readyz")[0] == 200, timeout=60,
             message=lambda: f"/readyz 200; output:\n{p.output()[-2000:]}")


def gone(pids: set[int]) -> bool:
    def dead(pid: int) -> bool:
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True
    return all(dead(pid) for pid in pids)


def test_drain_wait_turns_readiness_off_first_and_returns_when_workers_exited():
    # the checks below must all run within the drain delay: 10 s leaves room on a loaded machine
    with PodsupProcess(["run", "--workers", "2", "--drain-delay", "10", "--graceful-timeout", "20",
                        "--", PY, worker("metrics_worker")]) as p:
        ready(p)
        assert http_get(p.http_port, "/healthz")[0] == 200
        pids = live_pids(status_json(p.control_path))
        assert len(pids) == 2
        hook = subprocess.Popen([PY, "-m", "podsup", "drain", "--wait", "--control", p.control_path],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            status, body = wait_for(lambda: (lambda r: r if r[0] == 503 else None)(http_get(p.http_port, "/readyz")),
                                    timeout=30, message="/readyz 503 after drain")
            assert body == "draining\n"
            # readiness went off while the workers still serve (they are signalled after --drain-delay)
            assert not gone(pids)
            # the control socket turns /readyz off before the loop takes the drain: wait for the loop
            wait_for(lambda: sample(p.http_port, "podsup_draining") == 1, timeout=10, message="podsup_draining 1")
            assert hook.poll() is None  # --wait is still waiting
            # last: so every observation above was made before the workers were signalled
            assert not p.matches(r"stopping workers"), p.output()
            out, err = hook.communicate(timeout=60)
        finally:
            if hook.poll() is None:
                hook.kill()
        assert hook.returncode == 0, err
        assert "drained" in out
        assert gone(pids)  # it returned only once the workers had exited
        assert p.wait_exit(timeout=30) == 0
        assert p.matches(r"graceful stop: readiness off why=command")


def test_drain_wait_returns_when_the_grace_period_ends():
    with PodsupProcess(["run", "--workers", "1", "--graceful-timeout", "1",
                        "--", PY, worker("ignore_term")]) as p:
        p.wait_for_line(r"ignoring SIGTERM")
        result = podsup_cli("drain", "--wait", "--control", p.control_path)
        assert result.returncode == 0, result.stderr
        p.wait_for_line(r"did not stop within the graceful timeout: SIGKILL")
        assert p.wait_exit(timeout=30) == 1  # a worker had to be killed


def test_drain_wait_after_sigterm_still_waits():
    # the drain command must reach podsup within the drain delay (after it podsup exits):
    # 10 s leaves room for starting the CLI on a loaded machine
    with PodsupProcess(["run", "--workers", "1", "--drain-delay", "10", "--", PY, worker("metrics_worker")]) as p:
        ready(p)
        pids = live_pids(status_json(p.control_path))
        p.signal(signal.SIGTERM)
        # the loop took the SIGTERM (logged as it sets draining; cheaper than a `status` CLI run)
        p.wait_for_line(r"graceful stop: readiness off why=SIGTERM")
        result = podsup_cli("drain", "--wait", "--control", p.control_path)
        assert result.returncode == 0 and "drained" in result.stdout, result.stderr
        assert gone(pids)
        assert p.wait_exit(timeout=30) == 0


def test_drain_without_wait_returns_at_once():
    with PodsupProcess(["run", "--workers", "1", "--drain-delay", "30", "--", PY, worker("metrics_worker")]) as p:
        ready(p)
        result = podsup_cli("drain", "--control", p.control_path)
        assert result.returncode == 0 and "draining" in result.stdout
        assert http_get(p.http_port, "/readyz") == (503, "draining\n")
        assert p.returncode is None  # still in its drain delay
        table = podsup_cli("status", "--control", p.control_path).stdout
        assert "state: draining" in table and "ready: no" in table, table
        # a second command while draining is refused with one line
        again = podsup_cli("scale", "3", "--control", p.control_path)
        assert again.returncode == 1 and "draining" in again.stderr and "Traceback" not in again.stderr


def test_min_ready_and_crash_loop_in_health():
    with PodsupProcess(["run", "--workers", "2", "--min-ready", "1", "--crashloop-threshold", "3",
                        "--crashloop-interval", "60", "--crashloop-restart-after", "1", "--", PY, worker("crasher")],
                       env={"CRASH_AFTER": "0"}) as p:
        # crash storm: unhealthy and not ready
        wait_for(lambda: sample(p.http_port, "podsup_crash_loop") == 1, timeout=60, message="crash loop")
        # health follows the loop's ticks (at most a second behind), never waits on the loop
        status, body = wait_for(lambda: (lambda r: r if r[0] == 503 else None)(http_get(p.http_port, "/healthz")),
                                timeout=30, message="/healthz 503 in a crash loop")
        assert "crash loop" in body
        st = status_json(p.control_path)
        assert st["state"] == "crash-loop" and st["healthy"] is False and st["ready"] is False
        assert "state: crash-loop" in podsup_cli("status", "--control", p.control_path).stdout
        assert wait_for(lambda: http_get(p.http_port, "/readyz")[0] == 503, timeout=30, message="/readyz 503")
    with PodsupProcess(["run", "--workers", "3", "--min-ready", "2", "--", PY, worker("metrics_worker")]) as p:
        ready(p)
        assert http_get(p.http_port, "/healthz") == (200, "ok\n")


def test_status_and_readyz_agree_and_sigterm_turns_readiness_off_at_once():
    # a worker that never reports is "starting" for the start-up period
    with PodsupProcess(["run", "--workers", "2", "--drain-delay", "30", "--", PY, worker("sleeper")]) as p:
        first = wait_for(lambda: (lambda st: st if st["workers"] and all(w["pid"] for w in st["workers"]) else None)(
            status_json(p.control_path)), timeout=30, message="status answers with both workers spawned")
        if any(w["state"] == "starting" for w in first["workers"]):
            # status said "not ready" while a worker was starting, so /readyz must not say ready yet
            assert first["ready"] is False
        ready(p)
        assert status_json(p.control_path)["ready"] is True
        p.signal(signal.SIGTERM)
        wait_for(lambda: status_json(p.control_path)["state"] == "draining", timeout=30,
                 message="draining after SIGTERM")
        # the loop has taken the SIGTERM: readiness is off now, not at the next tick
        assert http_get(p.http_port, "/readyz") == (503, "draining\n")
        assert status_json(p.control_path)["ready"] is False
