"""PID-1 duties: reap orphans (as PID 1 and as a sub-reaper), survive stray signals."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

import psutil
import pytest

from tests.integration.podsup_process import PodsupProcess, alive, worker
from tests.waiting import wait_for

PY = sys.executable


def _can_unshare() -> str | None:
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed"
    if os.geteuid() != 0:
        return "needs root for unshare --pid (the sub-reaper test covers non-root)"
    probe = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True)
    if probe.returncode != 0:
        return f"unshare --pid is not permitted here: {probe.stderr.decode().strip()}"
    return None


def _zombies_under(pid: int) -> list[int]:
    try:
        family = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    zombies = []
    for proc in family:
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                zombies.append(proc.pid)
        except psutil.NoSuchProcess:
            pass
    return zombies


@pytest.mark.skipif(_can_unshare() is not None, reason=str(_can_unshare()))
def test_as_pid_1_it_reaps_orphans_and_survives_unhandled_signals(tmp_path):
    args = ["run", "--workers", "1", "--graceful-timeout", "5", "--", PY, worker("orphan_maker")]
    with PodsupProcess(args, prefix=["unshare", "--pid", "--fork", "--mount-proc"]) as p:
        p.wait_for_line(r"podsup started version=\S+ pid=1 ")
        p.wait_for_line(r"reaped orphan pid=\d+ status=\"exit 0\"", count=3)
        podsup = wait_for(lambda: p.children() and p.children()[0], 30, message="podsup under unshare")
        wait_for(lambda: not _zombies_under(podsup.pid), 30, message="no zombie left")
        for sig in (signal.SIGALRM, signal.SIGPWR, signal.SIGUSR1):
            podsup.send_signal(sig)
        p.wait_for_line(r"signal ignored signal=SIGPWR")
        p.wait_for_line(r"signal ignored signal=SIGALRM")
        p.wait_for_line(r"signal forwarded to workers signal=SIGUSR1")
        # SIGUSR1's default action ended the worker; podsup respawned it and lives on
        p.wait_for_line(r'worker exited slot=0 pid=\d+ status="signal SIGUSR1"')
        assert alive(podsup.pid)
        podsup.send_signal(signal.SIGTERM)
        assert p.wait_exit(30) == 0


def test_as_a_sub_reaper_it_reaps_orphans_of_its_workers(tmp_path):
    args = ["run", "--workers", "1", "--graceful-timeout", "5", "--", PY, worker("orphan_maker")]
    with PodsupProcess(args, env={"ORPHANS": "4"}) as p:
        p.wait_for_line(r"^\[worker 0\] left orphans behind$")
        p.wait_for_line(r"reaped orphan pid=\d+ status=\"exit 0\"", count=4)
        wait_for(lambda: not _zombies_under(p.pid), 30, message="no zombie left")
        assert not p.matches("cannot become child sub-reaper")
        p.signal(signal.SIGALRM)
        p.wait_for_line(r"signal ignored signal=SIGALRM")
        assert alive(p.pid)
        p.signal(signal.SIGTERM)
        assert p.wait_exit(30) == 0
