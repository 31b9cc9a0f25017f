"""The Kubernetes stop order with a real podsup: the preStop hook's `podsup
drain` first, then the kubelet's SIGTERM; concurrent drains; and `drain
--wait` waiting for what a stopped worker's process group still runs."""
from __future__ import annotations

import concurrent.futures
import subprocess
import sys

from tests.integration.podsup_process import PodsupProcess, records, worker
from tests.integration.servers import podsup_cli
from tests.waiting import wait_for

PY = sys.executable


def test_plain_drain_then_the_kubelets_sigterm_lets_jobs_finish_and_exits_0(tmp_path):
    args = ["run", "--workers", "2", "--drain-delay", "1", "--graceful-timeout", "30",
            "--", PY, worker("graceful_job")]
    with PodsupProcess(args, env={"RECORD_DIR": str(tmp_path), "JOB_SECONDS": "2"}) as p:
        p.wait_for_line(r"^\[worker \d\] ready$", count=2)
        hook = podsup_cli("drain", "--control", p.control_path)
        assert hook.returncode == 0 and "draining" in hook.stdout, hook.stderr
        p.signal(15)  # SIGTERM, right after preStop returned
        assert p.wait_exit(60) == 0, p.output()[-3000:]
        assert p.matches(r"SIGTERM while draining: the graceful stop goes on")
        assert not p.matches(r"fast stop") and not p.matches(r"SIGKILL")
    assert sorted(r["slot"] for r in records(tmp_path, "finished")) == ["0", "1"]  # both jobs done


def test_concurrent_drain_waits_all_succeed():
    with PodsupProcess(["run", "--workers", "4", "--drain-delay", "1", "--", "sleep", "300"]) as p:
        p.wait_for_line(r"worker started slot=3")
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            hooks = list(pool.map(lambda _: podsup_cli("drain", "--wait", "--control", p.control_path),
                                  range(4)))
        assert [h.returncode for h in hooks] == [0, 0, 0, 0], [h.stderr for h in hooks]
        assert all("drained" in h.stdout for h in hooks), [h.stdout for h in hooks]
        assert p.wait_exit(60) == 0


def test_drain_wait_waits_for_a_job_left_running_in_a_stopped_workers_group(tmp_path):
    # the worker (a shell) dies on TERM at once; the job it started in its group finishes in 3 s
    script = f"{PY} {worker('graceful_job')} & wait"
    with PodsupProcess(["run", "--workers", "1", "--graceful-timeout", "30", "--", "sh", "-c", script],
                       env={"RECORD_DIR": str(tmp_path), "JOB_SECONDS": "3"}) as p:
        p.wait_for_line(r"^\[worker 0\] ready$")
        hook = subprocess.Popen([PY, "-m", "podsup", "drain", "--wait", "--control", p.control_path],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            p.wait_for_line(r"worker's process group still has members: waiting for them")
            assert hook.poll() is None  # the job still runs: not drained
            out, err = hook.communicate(timeout=60)
        finally:
            if hook.poll() is None:
                hook.kill()
        assert hook.returncode == 0 and "drained" in out, err
        assert records(tmp_path, "finished"), "drain --wait returned before the job finished"
        assert p.wait_exit(60) == 0
