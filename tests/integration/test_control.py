"""The control socket end to end: real podsup, real workers, the real CLI."""
from __future__ import annotations

import os
import select
import signal
import socket
import stat
import struct
import subprocess
import sys

import psutil

from podsup.cli.control_client import ControlError, request
from podsup.host import framing
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
            # Ctrl-C ends it (also when this suite runs with SIGINT ignored:
            # `nohup make test &`; test_signal_inheritance.py covers that case)
            watch.send_signal(signal.SIGINT)
            assert watch.wait(timeout=30) == 130
        finally:
            if watch.poll() is None:  # a failed assertion must not leave it refreshing
                watch.kill()
                watch.wait(10)
            watch.stdout.close()


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
    # one line, the command named once, the allowed forms spelled out
    assert result.stderr.strip() == ("podsup scale: value must be N (set the count), +K (add K) or -K (remove K), "
                                     "in ASCII digits (got 'lots')")

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


def _one_line(result: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr
    return result.stderr.strip()


def test_scale_refuses_targets_above_the_maximum_and_non_ascii_digits():
    with PodsupProcess(["run", "--workers", "1", "--", "sleep", "1000"]) as p:
        wait_for(lambda: status_json(p.control_path)["running"] == 1, timeout=60, message="1 worker up")
        # refused by the CLI before anything is sent
        for value in ("1025", "100000", "+5000"):
            result = podsup_cli("scale", value, "--control", p.control_path)
            assert result.returncode == 2
            assert _one_line(result) == f"podsup scale: {value} is out of range; allowed: 0..1024 workers"
        for value in ("\u0663", "\uff11\uff12"):
            result = podsup_cli("scale", value, "--control", p.control_path)
            assert result.returncode == 2 and "value must be N (set the count), +K" in _one_line(result)
        # refused by podsup itself (any client, not only the CLI)
        for value in ("1025", "100000", "\u0663", "\uff11\uff12"):
            try:
                request(p.control_path, {"command": "scale", "value": value}, timeout=30)
            except ControlError as exc:
                assert "out of range" in str(exc) or "value must be" in str(exc)
            else:
                raise AssertionError(f"scale {value!r} was accepted")
        # +K is checked against the current count
        result = podsup_cli("scale", "+1024", "--control", p.control_path)
        assert result.returncode == 1
        assert _one_line(result) == "podsup: scale: +1024 would make 1025 workers; allowed: 0..1024 workers"
        st = status_json(p.control_path)
        assert st["desired"] == 1 and len(live_pids(st)) == 1


def test_hostile_frames_are_answered_without_a_traceback():
    with PodsupProcess(["run", "--workers", "1", "--", *REPORTER]) as p:
        running(p.control_path, 1)
        for depth in (100000, 30000):
            body = b"[" * depth + b"]" * depth
            with socket.socket(socket.AF_UNIX) as raw:
                raw.settimeout(30)
                raw.connect(p.control_path)
                raw.sendall(struct.pack(">I", len(body)) + body)
                answer = framing.recv_message(raw)
            assert answer["ok"] is False and answer["error"].startswith("bad request: ")
            if depth == 30000:  # small enough to be read, too deep to be parsed
                assert answer["error"] == "bad request: frame is not UTF-8 JSON: nested too deeply"
        assert status_json(p.control_path)["desired"] == 1
        assert "Traceback" not in p.output() and "RecursionError" not in p.output()


def _answered(sock: socket.socket) -> bool:
    """True once podsup has written to, or closed, ``sock`` (non-blocking)."""
    return bool(select.select([sock], [], [], 0)[0])


def test_idle_connections_are_bounded_and_dropped():
    with PodsupProcess(["run", "--workers", "1", "--", *REPORTER]) as p:
        running(p.control_path, 1)
        master = psutil.Process(p.pid)
        threads_before = master.num_threads()
        idle = []
        try:
            for _ in range(100):
                sock = socket.socket(socket.AF_UNIX)
                sock.connect(p.control_path)
                idle.append(sock)
            # beyond 32 connections podsup answers "busy" instead of starting a thread each; the
            # others are answered "bad request: timed out" after the 10 s connection timeout. The
            # answer says which is which, so no clock is needed to tell a refusal from a timeout.
            replies: dict[int, str] = {}

            def busy() -> int:
                for i, sock in enumerate(idle):
                    if i not in replies and _answered(sock):
                        sock.settimeout(10)
                        try:
                            replies[i] = str(framing.recv_message(sock).get("error"))
                        except (OSError, framing.FramingError) as exc:
                            replies[i] = f"no answer: {exc!r}"
                return sum(r.startswith("busy: 32 control connections are open") for r in replies.values())
            wait_for(lambda: busy() >= 100 - 32, timeout=30,
                     message=lambda: f"{busy()} of 100 idle connections refused as busy: {sorted(set(replies.values()))}")
            assert master.num_threads() <= threads_before + 32 + 3
            # the idle ones are dropped after the connection timeout; podsup serves again
            wait_for(lambda: all(_answered(s) for s in idle), timeout=40, message="idle connections dropped")
            assert status_json(p.control_path)["desired"] == 1
            wait_for(lambda: master.num_threads() <= threads_before + 2, timeout=30, message="connection threads ended")
        finally:
            for sock in idle:
                sock.close()
        assert "Traceback" not in p.output()


def test_status_watch_into_a_closed_pipe_and_bad_intervals(tmp_path):
    with PodsupProcess(["run", "--workers", "1", "--", *REPORTER]) as p:
        running(p.control_path, 1)
        env = {**os.environ, "PYTHONPATH": os.getcwd()}
        stderr_path = tmp_path / "stderr"
        with open(stderr_path, "wb") as stderr:
            watch = subprocess.Popen([sys.executable, "-m", "podsup", "status", "--watch", "--interval", "0.05",
                                      "--control", p.control_path], stdout=subprocess.PIPE, stderr=stderr, env=env)
        try:
            assert watch.stdout.readline().strip()  # the first line of the first screen
            watch.stdout.close()  # like `| head -1` exiting
            assert watch.wait(timeout=30) == 0
        finally:
            if watch.poll() is None:
                watch.kill()
                watch.wait(10)
        assert stderr_path.read_text() == ""  # no BrokenPipeError, not even "Exception ignored"

        shell = subprocess.run(["bash", "-o", "pipefail", "-c",
                                f"{sys.executable} -m podsup status --watch --interval 0.05 "
                                f"--control {p.control_path} | head -1"],
                               capture_output=True, text=True, env=env, timeout=60)
        assert shell.returncode == 0 and shell.stdout.strip() and shell.stderr == "", shell

        for value in ("nan", "inf", "-inf", "0", "-1", "1e300"):
            result = podsup_cli("status", "--watch", f"--interval={value}", "--control", p.control_path, timeout=30)
            assert result.returncode == 2, (value, result.stdout, result.stderr)
            assert _one_line(result) == (f"podsup status: argument --interval: must be a number of seconds "
                                         f"> 0 and <= 86400 (got {value!r})")
