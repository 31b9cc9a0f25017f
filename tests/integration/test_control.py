"""The control socket end to end: real podsup, real workers, the real CLI."""
from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys

from tests.integration.podsup_process import PodsupProcess, worker
from tests.integration.servers import live_pids, podsup_cli, status_json
from tests.waiting import wait_for

REPORTER = [sys.executable, worker("metrics_worker")]


def running(control: str, count: int) -> dict:
    """Wait until exactly ``count`` workers run and none is starting or stopping; return the status."""
    def check():
        st = status_json(control)
        states = [w["state"] for w in st["workers"] if w["pid"] is not None]
        return st if len(states) == count and all(s in ("idle", "busy") for s in states) else None
    return wait_for(check, timeout=60, message=f"{count} workers up")


def test_status_table_json_and_watch():
    with PodsupProcess(["run", "--workers", "2", "--", *REPORTER]) as p:
        st = running(p.control_path, 2)
        assert stat.S_IMODE(os.stat(p.control_path).st_mode) == 0o600
        assert st["desired"] == 2 and st["state"] == "running"
        for w in st["workers"]:
            assert {"id", "pid", "state", "rss_bytes", "cpu_percent", "requests", "restarts"} <= set(w)
            assert w["rss_bytes"] > 1_000_000  # a real Python process
        assert {w["id"] for w in st["workers"]} == {0, 1}

        table = podsup_cli("status", "--control", p.control_path)
        assert table.returncode == 0, table.stderr
        lines = table.stdout.splitlines()
        assert any(line.startswith("podsup ") and "state: running" in line for line in lines)
        assert any("workers: 2 running / 2 desired" in line for line in lines)
        header = next(line for line in lines if line.startswith("slot"))
        rows = [line.split() for line in lines[lines.index(header) + 1:-1]]
        assert sorted(int(r[1]) for r in rows) == sorted(live_pids(st))

        env = {**os.environ, "PYTHONPATH": os.getcwd()}
        watch = subprocess.Popen([sys.executable, "-m", "podsup", "status", "--watch", "--interval", "0.2",
                                  "--control", p.control_path], stdout=subprocess.PIPE, text=True, env=env)
        try:
            screens = 0
            for line in watch.stdout:
                screens += line.startswith("podsup ")
                if screens >= 3:
                    break
            assert screens >= 3
        finally:
            watch.send_signal(signal.SIGINT)
            assert watch.wait(timeout=30) == 130


def test_scale_and_reload():
    with PodsupProcess(["run", "--workers", "1", "--", *REPORTER]) as p:
        running(p.control_path, 1)
        result = podsup_cli("scale", "3", "--control", p.control_path)
        assert result.returncode == 0 and "scaled to 3 workers" in result.stdout
        running(p.control_path, 3)
        assert podsup_cli("scale", "-1", "--control", p.control_path).returncode == 0
        st = running(p.control_path, 2)
        assert st["desired"] == 2
        assert podsup_cli("scale", "+2", "--control", p.control_path).returncode == 0
        before = live_pids(running(p.control_path, 4))

        result = podsup_cli("reload", "--control", p.control_path)
        assert result.returncode == 0 and "reload started" in result.stdout
        def replaced():
            st = running(p.control_path, 4)
            return st if not (live_pids(st) & before) else None
        st = wait_for(replaced, timeout=90, message="every worker replaced by the reload")
        assert st["desired"] == 4 and sorted(w["id"] for w in st["workers"]) == [0, 1, 2, 3]


def test_refusals_are_one_line(tmp_path):
    missing = str(tmp_path / "none.sock")
    result = podsup_cli("status", "--control", missing)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and missing in result.stderr and "no such file" in result.stderr

    dead = str(tmp_path / "dead.sock")
    s = socket.socket(socket.AF_UNIX)
    s.bind(dead)
    s.close()
    result = podsup_cli("reload", "--control", dead)
    assert result.returncode == 1 and dead in result.stderr and "Traceback" not in result.stderr

    result = podsup_cli("scale", "lots", "--control", missing)
    assert result.returncode == 2
    assert result.stderr.strip() == "podsup scale: scale: value must be N, +K or -K (got 'lots')"

    result = podsup_cli("status", "--interval", "0", "--control", missing)
    assert result.returncode == 2 and "--interval" in result.stderr


def test_podsup_refuses_a_socket_another_podsup_listens_on():
    with PodsupProcess(["run", "--workers", "1", "--", *REPORTER]) as first:
        running(first.control_path, 1)
        with PodsupProcess(["run", "--workers", "1", "--control", first.control_path, "--", *REPORTER]) as second:
            assert second.wait_exit(timeout=60) == 2
            assert f"podsup run: invalid --control {first.control_path}: another podsup is listening" in second.output()
            assert "Traceback" not in second.output()
        assert status_json(first.control_path)["desired"] == 1  # the first one was not disturbed
