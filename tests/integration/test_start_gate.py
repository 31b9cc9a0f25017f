"""The start gate with real processes (issue 11): a worker that speaks the
protocol counts, and replaces its predecessor, only at its first report."""
from __future__ import annotations

import signal
import sys
import threading

from tests.integration.podsup_process import PodsupProcess, records, worker
from tests.integration.servers import status_json
from tests.waiting import wait_for

PY = sys.executable

SILENT_SLOT_1 = ("import os, socket, time\n"
                 "if os.environ['PODSUP_WORKER_ID'] == '0':\n"
                 "    socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b'idle', os.environ['PODSUP_REPORT'])\n"
                 "time.sleep(3600)\n")


def test_reload_of_slow_booting_workers_never_stops_the_old_one_before_the_new_one_reported(tmp_path):
    jobs, rec = tmp_path / "jobs", tmp_path / "rec"
    jobs.mkdir()
    rec.mkdir()
    args = ["run", "--workers", "2", "--graceful-timeout", "10", "--", PY, worker("job_taker")]
    env = {"JOBS_DIR": str(jobs), "RECORD_DIR": str(rec), "BOOT_SECONDS": "2.5"}
    with PodsupProcess(args, env=env) as p:
        wait_for(lambda: len(records(rec, "ready")) == 2, 30, message=p.output)
        wait_for(lambda: {w["state"] for w in status_json(p.control_path)["workers"]} == {"idle"}, 30)
        old = {r["pid"] for r in records(rec, "ready")}
        samples: list[dict] = []
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                samples.append(status_json(p.control_path))

        sampler = threading.Thread(target=sample)
        p.signal(signal.SIGHUP)
        sampler.start()
        try:
            p.wait_for_line(r"reload: last worker replaced", timeout=60)
            wait_for(lambda: len(records(rec, "stopped")) == 2, 60, message=p.output)
        finally:
            done.set()
            sampler.join()

        ready = {r["pid"]: r["time"] for r in records(rec, "ready")}
        successor_ready = {r["slot"]: r["time"] for r in records(rec, "ready") if r["pid"] not in old}
        stopped = records(rec, "stopped")
        assert {r["pid"] for r in stopped} == old
        for record in stopped:  # each old worker outlived its successor's first report
            assert successor_ready[record["slot"]] < record["time"]
        assert samples
        for status in samples:
            counted = [w for w in status["workers"] if w["state"] in ("idle", "busy")]
            assert status["ready"] and len(counted) >= 2, status
            assert all(w["pid"] in ready for w in counted), status  # counted only once it reported
        assert any(w["state"] == "starting" for s in samples for w in s["workers"])


def test_a_protocol_worker_that_never_reports_is_replaced_after_the_start_timeout():
    args = ["run", "--workers", "2", "--start-timeout", "1.5", "--", PY, "-c", SILENT_SLOT_1]
    with PodsupProcess(args) as p:
        p.wait_for_line(r"sent no report within --start-timeout: killing and replacing it slot=1")
        wait_for(lambda: status_json(p.control_path)["restarts"].get("start-timeout", 0) >= 1, 30,
                 message=p.output)
        status = status_json(p.control_path)
        assert [w["state"] for w in status["workers"] if w["id"] == 0 and w["pid"]] == ["idle"]
        assert not p.matches(r"start-timeout: killing and replacing it slot=0")


def test_a_silent_worker_counts_after_the_start_period_not_before(tmp_path):
    args = ["run", "--workers", "1", "--start-period", "3600", "--", PY, worker("sleeper")]
    with PodsupProcess(args, env={"RECORD_DIR": str(tmp_path)}) as p:
        wait_for(lambda: len(records(tmp_path)) == 1, 30, message=p.output)
        status = status_json(p.control_path)
        assert [w["state"] for w in status["workers"]] == ["starting"] and not status["ready"]
