"""Stopping podsup with real signals: graceful TERM, fast INT/QUIT, second TERM."""
from __future__ import annotations

import json
import os
import signal
import sys
from datetime import datetime

import pytest

from tests.integration.podsup_process import PodsupProcess, alive, records, worker
from tests.waiting import wait_for

PY = sys.executable


def start(tmp_path, script, *options, env=None):
    args = ["run", *options, "--", PY, worker(script)]
    return PodsupProcess(args, env={"RECORD_DIR": str(tmp_path), **(env or {})})


def test_term_waits_for_a_worker_finishing_its_job_and_exits_0(tmp_path):
    with start(tmp_path, "graceful_job", "--workers", "2", "--graceful-timeout", "20",
               env={"JOB_SECONDS": "1"}) as p:
        p.wait_for_line(r"^\[worker \d\] ready$", count=2)
        p.signal(signal.SIGTERM)
        assert p.wait_exit(40) == 0
        finished = records(tmp_path, "finished")
        assert sorted(r["slot"] for r in finished) == ["0", "1"]
        assert p.matches(r"^\[worker 0\] job finished$")
        assert not p.matches(r"SIGKILL")


def test_a_worker_ignoring_term_is_sigkilled_after_the_graceful_timeout(tmp_path):
    with start(tmp_path, "ignore_term", "--workers", "1", "--graceful-timeout", "1") as p:
        p.wait_for_line(r"^\[worker 0\] ignoring SIGTERM$")
        pid = records(tmp_path)[0]["pid"]
        p.signal(signal.SIGTERM)
        assert p.wait_exit(30) == 1  # non-zero: a worker had to be killed
        p.wait_for_line(rf"did not stop within the graceful timeout: SIGKILL slot=0 pid={pid}")
        assert p.matches(rf'worker stopped slot=0 pid={pid} status="signal SIGKILL"')
        assert not alive(pid)


def test_stop_signal_option_is_what_workers_receive(tmp_path):
    with start(tmp_path, "ignore_term", "--workers", "1", "--graceful-timeout", "20",
               "--stop-signal", "INT") as p:
        p.wait_for_line(r"^\[worker 0\] ignoring SIGTERM$")
        p.signal(signal.SIGTERM)
        assert p.wait_exit(30) == 0  # SIGINT (KeyboardInterrupt) ended the worker in time
        assert p.matches(r"stopping workers signal=SIGINT")
        assert not p.matches(r"SIGKILL")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGQUIT])
def test_int_and_quit_stop_fast_without_waiting_for_jobs(tmp_path, sig):
    with start(tmp_path, "graceful_job", "--workers", "2", "--graceful-timeout", "60",
               env={"JOB_SECONDS": "60"}) as p:
        p.wait_for_line(r"^\[worker \d\] ready$", count=2)
        pids = [r["pid"] for r in records(tmp_path)]
        p.signal(sig)
        assert p.wait_exit(30) == 1  # well before the 60 s jobs: workers were killed
        assert p.matches(rf"fast stop: killing every worker why={signal.Signals(sig).name}")
        assert not records(tmp_path, "finished")
        assert not any(alive(pid) for pid in pids)


def test_second_term_during_a_graceful_stop_turns_it_into_a_fast_stop(tmp_path):
    with start(tmp_path, "graceful_job", "--workers", "1", "--graceful-timeout", "60",
               env={"JOB_SECONDS": "60"}) as p:
        p.wait_for_line(r"^\[worker 0\] ready$")
        p.signal(signal.SIGTERM)
        p.wait_for_line(r"^\[worker 0\] finishing the current job$")
        assert p.returncode is None
        p.signal(signal.SIGTERM)
        assert p.wait_exit(30) == 1  # well before the 60 s job: it was killed
        assert p.matches(r"fast stop: killing every worker why=\"second SIGTERM\"")
        assert not records(tmp_path, "finished")


def test_drain_delay_holds_workers_before_signalling_them(tmp_path):
    with start(tmp_path, "graceful_job", "--workers", "1", "--graceful-timeout", "20",
               "--drain-delay", "1", "--log-format", "json", env={"JOB_SECONDS": "0"}) as p:
        p.wait_for_line(r'"line": "ready"')
        p.signal(signal.SIGTERM)
        assert p.wait_exit(30) == 0
        events = {e["msg"]: e for e in (json.loads(t) for _, t in p.lines if t.startswith("{"))
                  if e["source"] == "podsup"}
        drain, signalled = events["graceful stop: readiness off"], events["stopping workers"]
        assert drain["drain_delay"] == "1s"
        # the workers were signalled no earlier than the drain delay after TERM (signalling at
        # once would be ~0 s; the margin is for the loop being preempted between setting the
        # delay's deadline and stamping its log line, and for the ms timestamps)
        assert _ts(signalled) - _ts(drain) >= 0.9
        finishing = [json.loads(t) for _, t in p.lines if '"line": "finishing the current job"' in t]
        assert finishing and _ts(finishing[0]) >= _ts(signalled)


def _ts(event: dict) -> float:
    return datetime.fromisoformat(event["ts"].replace("Z", "+00:00")).timestamp()

def test_the_stop_signal_reaches_the_workers_whole_process_group(tmp_path):
    # sh backgrounds two sleeps in its own (the worker's) process group
    args = ["run", "--workers", "1", "--graceful-timeout", "10", "--",
            "sh", "-c", "sleep 1000 & sleep 1000 & echo started; wait"]
    with PodsupProcess(args) as p:
        p.wait_for_line(r"^\[worker 0\] started$")
        shell = p.children()[0]
        family = wait_for(lambda: len(shell.children()) == 2 and shell.children(), 30, message="two sleeps")
        assert all(os.getpgid(c.pid) == shell.pid for c in family)
        p.signal(signal.SIGTERM)
        assert p.wait_exit(30) == 0
        wait_for(lambda: not any(alive(c.pid) for c in family), 30, message="the sleeps to be gone")


def test_group_members_outliving_the_worker_are_sigkilled_after_the_graceful_timeout(tmp_path):
    # the subshell ignores TERM and so does its sleep; sh itself dies on TERM. "started" is
    # printed by the subshell once it ignores TERM: printed by sh, it could come before the
    # subshell ran its trap, and the TERM below would end the subshell too
    args = ["run", "--workers", "1", "--graceful-timeout", "1", "--",
            "sh", "-c", "(trap '' TERM; echo started; sleep 1000) & wait"]
    with PodsupProcess(args) as p:
        p.wait_for_line(r"^\[worker 0\] started$")
        shell = p.children()[0]

        def members():
            family = shell.children(recursive=True)
            return family if any(c.name() == "sleep" for c in family) else None
        family = wait_for(members, 30, message="the subshell and its sleep")
        p.signal(signal.SIGTERM)
        assert p.wait_exit(30) == 1
        p.wait_for_line(rf"worker stopped slot=0 pid={shell.pid} status=\"signal SIGTERM\"")
        p.wait_for_line(rf"process group outlived its worker's graceful timeout: SIGKILL pgid={shell.pid}")
        wait_for(lambda: not any(alive(c.pid) for c in family), 30, message="the group to be gone")


def test_a_stalled_reader_of_podsups_output_does_not_stall_the_loop(tmp_path):
    """podsup's stdout is a FIFO nobody reads (a wedged log shipper) and a
    worker floods it: reaping, TERM and the graceful-timeout SIGKILL must go
    on — output lines are dropped instead of blocking the master loop."""
    import re
    import subprocess
    import urllib.request

    from tests.integration.podsup_process import REPO

    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # open for reading, never read
    err_log = tmp_path / "err.log"
    err = open(err_log, "wb")
    with open(fifo, "wb") as out:
        # port 0: the kernel's choice, read from the log (a port picked here could be taken before podsup binds it)
        proc = subprocess.Popen(
            [PY, "-m", "podsup", "run", "--workers", "2", "--graceful-timeout", "2", "--http", "127.0.0.1:0",
             "--control", str(tmp_path / "c.sock"), "--", "sh", "-c", "trap '' TERM; yes flood"],
            stdout=out, stderr=err, cwd=REPO, env={**os.environ, "PYTHONPATH": REPO})
    try:
        serving = wait_for(lambda: re.search(r"serving /metrics, /healthz, /readyz address=127\.0\.0\.1:(\d+)",
                                             err_log.read_text()), 30,
                           message=lambda: f"podsup's HTTP port in its log: {err_log.read_text()[-2000:]}")
        port = int(serving.group(1))

        def healthz() -> int:
            try:
                return urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10).status
            except OSError as exc:
                return getattr(exc, "code", 0)
        wait_for(lambda: healthz() == 200, 30, message="podsup healthy")
        wait_for(lambda: healthz() == 200 and os.path.exists(tmp_path / "c.sock"), 30,
                 message="the loop ticking while stdout is full")
        proc.send_signal(signal.SIGTERM)
        # graceful timeout 2 s, workers ignore TERM: SIGKILLed, podsup exits 1 — without anyone reading
        assert proc.wait(30) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        os.close(reader)
        err.close()
