"""Real podsup processes keeping N real workers: slots, respawn, scaling, output."""
from __future__ import annotations

import json
import os
import signal
import sys

from tests.integration.podsup_process import PodsupProcess, alive, by_slot, records, worker
from tests.waiting import wait_for

PY = sys.executable


def run_args(*options: str, script: str = "sleeper") -> list[str]:
    return ["run", "--graceful-timeout", "2", *options, "--", PY, worker(script)]


def test_n_workers_get_ids_0_to_n_minus_1_in_their_own_process_groups(tmp_path):
    with PodsupProcess(run_args("--workers", "3"), env={"RECORD_DIR": str(tmp_path)}) as p:
        started = wait_for(lambda: len(records(tmp_path)) == 3 and records(tmp_path), 30,
                           message=lambda: p.output())
        assert sorted(int(r["slot"]) for r in started) == [0, 1, 2]
        assert {r["workers"] for r in started} == {"3"}
        assert all(r["pgid"] == r["pid"] for r in started)  # each leads its own group
        assert all(r["pgid"] != os.getpgid(p.pid) for r in started)


def test_kill_9_is_replaced_by_a_new_pid_in_the_same_slot(tmp_path):
    with PodsupProcess(run_args("--workers", "2"), env={"RECORD_DIR": str(tmp_path)}) as p:
        wait_for(lambda: len(records(tmp_path)) == 2, 30, message=p.output)
        victim = by_slot(tmp_path)[1][0]["pid"]
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: len(by_slot(tmp_path).get(1, [])) == 2, 30, message=p.output)
        replacement = by_slot(tmp_path)[1][1]
        assert replacement["pid"] != victim
        assert len(by_slot(tmp_path)[0]) == 1  # the other slot was left alone
        line = p.wait_for_line(rf"worker exited slot=1 pid={victim} status=\"signal SIGKILL\" "
                               r"uptime=[0-9.]+s respawn_in=0\.00s")
        assert line
        assert not alive(victim)


def test_ttin_adds_the_next_slot_and_ttou_stops_the_highest(tmp_path):
    with PodsupProcess(run_args("--workers", "2"), env={"RECORD_DIR": str(tmp_path)}) as p:
        wait_for(lambda: len(records(tmp_path)) == 2, 30, message=p.output)
        p.signal(signal.SIGTTIN)
        wait_for(lambda: 2 in by_slot(tmp_path), 30, message=p.output)
        added = by_slot(tmp_path)[2][0]
        assert added["workers"] == "3"
        p.signal(signal.SIGTTOU)
        p.wait_for_line(rf"worker stopped slot=2 pid={added['pid']} status=\"signal SIGTERM\"")
        wait_for(lambda: not alive(added["pid"]), 30, message="slot 2 to be gone")
        assert all(alive(r["pid"]) for r in records(tmp_path) if r["slot"] != "2")
        assert len(by_slot(tmp_path).get(2, [])) == 1  # not respawned


def test_worker_output_is_prefixed_with_the_slot_in_text_format(tmp_path):
    with PodsupProcess(run_args("--workers", "2"), env={"RECORD_DIR": str(tmp_path)}) as p:
        for slot in (0, 1):
            p.wait_for_line(rf"^\[worker {slot}\] hello from worker {slot} pid \d+$", stream="stdout")
            p.wait_for_line(rf"^\[worker {slot}\] a line on stderr from \d+$", stream="stderr")
        assert p.matches(r"^\[podsup\] worker started slot=0 pid=\d+$", stream="stderr")


def test_json_log_format_gives_worker_lines_with_slot_and_pid_and_podsup_events(tmp_path):
    with PodsupProcess(run_args("--workers", "2", "--log-format", "json"),
                       env={"RECORD_DIR": str(tmp_path)}) as p:
        p.wait_for_line(r'"line": "hello from worker 1', stream="stdout")
        p.wait_for_line(r'"msg": "worker started"', count=2)
        wait_for(lambda: len(records(tmp_path)) == 2, 30, message=p.output)  # both wrote theirs
        pids = {int(r["slot"]): r["pid"] for r in records(tmp_path)}
        worker_lines = [json.loads(t) for s, t in p.lines if '"source": "worker"' in t]
        hello = [w for w in worker_lines if w["line"].startswith("hello from worker 1")][0]
        assert hello["slot"] == 1 and hello["pid"] == pids[1] and hello["stream"] == "stdout"
        events = [json.loads(t) for s, t in p.lines if '"source": "podsup"' in t]
        started = [e for e in events if e["msg"] == "worker started"]
        assert {(e["slot"], e["pid"]) for e in started} == set(pids.items())
        assert all(e["level"] == "info" and "ts" in e for e in started)


def test_worker_exit_is_logged_with_code_uptime_and_backoff_delays(tmp_path):
    args = run_args("--workers", "1", "--crashloop-threshold", "0", "--backoff-max", "0.4",
                    script="crasher")
    with PodsupProcess(args, env={"RECORD_DIR": str(tmp_path), "EXIT_CODE": "3"}) as p:
        p.wait_for_line(r"worker exited slot=0 .*respawn_in", count=5)
        delays = [m.group(1) for m in p.matches(r'worker exited slot=0 pid=\d+ status="exit 3" '
                                                r"uptime=[0-9.]+s respawn_in=([0-9.]+)s")][:5]
        # first respawn immediate, then doubling up to --backoff-max
        assert delays == ["0.00", "0.10", "0.20", "0.40", "0.40"]


def status(p: PodsupProcess) -> dict:
    import subprocess
    result = subprocess.run([PY, "-m", "podsup", "status", "--json", "--control", p.control_path],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_reports_over_the_socket_drive_worker_states_requests_and_queues(tmp_path):
    step = tmp_path / "step"
    with PodsupProcess(run_args("--workers", "1", script="stepper"),
                       env={"RECORD_DIR": str(tmp_path), "STEP_FILE": str(step)}) as p:
        wait_for(lambda: status(p)["workers"][0]["state"] == "busy", 30, message=p.output)
        before = status(p)
        assert before["workers"][0]["busy_since"] is not None and before["workers"][0]["requests"] == 0
        step.write_text("go")
        p.wait_for_line(r"^\[worker 0\] reported$")
        after = wait_for(lambda: (s := status(p))["malformed_reports"] == 1 and s, 30, message=p.output)
        worker0 = after["workers"][0]
        assert worker0["state"] == "idle" and worker0["requests"] == 1 and worker0["busy_since"] is None
        assert worker0["pid"] == records(tmp_path)[0]["pid"]
        assert after["queues"] == {"jobs": 7.0}


def test_worker_rss_in_the_snapshot_includes_its_children(tmp_path):
    hog = "import time; x = b'x' * (48 * 2**20); print('allocated', flush=True); time.sleep(600)"
    args = ["run", "--workers", "1", "--graceful-timeout", "2", "--", "sh", "-c", f'{PY} -c "{hog}"; true']
    with PodsupProcess(args) as p:
        p.wait_for_line(r"^\[worker 0\] allocated$")
        shell = p.children()[0]
        assert shell.memory_info().rss < 16 * 2**20  # the worker itself is a small shell
        worker0 = wait_for(lambda: (w := status(p)["workers"][0])["rss_bytes"] >= 48 * 2**20 and w, 30,
                           message=p.output)
        assert worker0["pid"] == shell.pid


def test_workers_start_with_default_signal_dispositions_and_an_empty_mask():
    # podsup (Python) ignores SIGPIPE and SIGXFSZ; an exec'd worker must not inherit that
    args = ["run", "--workers", "1", "--normal-exit-codes", "0", "--", "cat", "/proc/self/status"]
    with PodsupProcess(args) as p:
        assert p.wait_exit(30) == 0
        ignored = p.wait_for_line(r"^\[worker 0\] SigIgn:\s+([0-9a-f]+)$")
        blocked = p.wait_for_line(r"^\[worker 0\] SigBlk:\s+([0-9a-f]+)$")
        ignored_mask = int(ignored.group(1), 16)
        for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            assert not ignored_mask & (1 << (sig - 1)), signal.Signals(sig).name
        assert int(blocked.group(1), 16) == 0
