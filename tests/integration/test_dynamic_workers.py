"""Dynamic mode with real processes (issue 11): a load grows the pool within
its bounds, idleness shrinks it, a busy worker is never retired, and scale,
TTIN and TTOU leave the bounds alone."""
from __future__ import annotations

import re
import signal
import sys

from tests.integration.podsup_process import PodsupProcess, records, running_children, worker
from tests.integration.servers import podsup_cli, status_json
from tests.waiting import wait_for

PY = sys.executable


def count(status: dict, state: str) -> int:
    return sum(1 for w in status["workers"] if w["state"] == state)


def test_load_grows_the_pool_idleness_shrinks_it_and_a_busy_worker_is_never_retired(tmp_path):
    jobs, rec = tmp_path / "jobs", tmp_path / "rec"
    jobs.mkdir()
    rec.mkdir()
    args = ["run", "--workers", "2", "--min-workers", "2", "--max-workers", "8", "--spare-workers", "2",
            "--idle-timeout", "1", "--graceful-timeout", "10", "--", PY, worker("job_taker")]
    with PodsupProcess(args, env={"JOBS_DIR": str(jobs), "RECORD_DIR": str(rec)}) as p:
        wait_for(lambda: len(records(rec, "ready")) == 2, 30, message=p.output)

        for i in range(6):  # 6 busy of 8: two spare idle workers on top
            (jobs / f"job{i}").write_text("")

        def settled(desired: int, busy: int) -> dict | None:
            status = status_json(p.control_path)
            ok = (status["desired"] == desired and count(status, "busy") == busy
                  and count(status, "idle") == desired - busy and count(status, "stopping") == 0
                  and len(running_children(p.pid)) == desired)
            return status if ok else None

        grown = wait_for(lambda: settled(8, 6), 60, message=p.output)
        assert grown["max_workers"] == 8 and grown["min_workers"] == 2 and grown["dynamic"]
        assert sorted(w["id"] for w in grown["workers"]) == list(range(8))  # slots 0..7, no gaps

        # bounds hold: TTIN/TTOU are ignored, scale is refused with one line
        p.signal(signal.SIGTTIN)
        p.wait_for_line(r"SIGTTIN ignored in dynamic mode")
        p.signal(signal.SIGTTOU)
        p.wait_for_line(r"SIGTTOU ignored in dynamic mode")
        refused = podsup_cli("scale", "3", "--control", p.control_path)
        assert refused.returncode != 0 and "refused in dynamic mode" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
        assert settled(8, 6)

        # 4 jobs end: busy 2 -> want 4; the two still busy are never retired
        taken = sorted(jobs.glob("*.taken"))
        still_busy = {int(t.name.split(".")[1]) for t in taken[4:]}
        for t in taken[:4]:
            t.unlink()
        wait_for(lambda: settled(4, 2), 60, message=p.output)
        assert still_busy <= set(running_children(p.pid))

        for t in taken[4:]:
            t.unlink()
        wait_for(lambda: settled(2, 0), 60, message=p.output)

        stopped = {int(m.group(1)) for m in p.matches(r"worker stopping slot=\d+ pid=(\d+)")}
        assert stopped and not (stopped & still_busy)
        sizes = [int(m.group(1)) for m in p.matches(r"dynamic: resizing .*workers=(\d+)")]
        assert sizes and max(sizes) == 8 and min(sizes) == 2
        p.signal(signal.SIGTERM)
        assert p.wait_exit(60) == 0


def test_a_dynamic_pool_whose_workers_never_report_stays_fixed_with_a_warning():
    args = ["run", "--workers", "2", "--max-workers", "4", "--", PY, worker("sleeper")]
    with PodsupProcess(args) as p:
        line = p.wait_for_line(r"dynamic mode inactive", timeout=60)
        assert "workers=2" in line.string
        assert len(running_children(p.pid)) == 2
        assert status_json(p.control_path)["desired"] == 2
