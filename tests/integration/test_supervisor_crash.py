"""Crash storms stay bounded; job mode ends with exit 0."""
from __future__ import annotations

import json
import sys
from datetime import datetime

from tests.integration.podsup_process import PodsupProcess, records, worker
from tests.waiting import wait_for

PY = sys.executable


def _ts(event: dict) -> float:
    return datetime.fromisoformat(event["ts"].replace("Z", "+00:00")).timestamp()


def test_crash_storm_enters_crash_loop_and_respawns_each_slot_at_most_once_a_second(tmp_path):
    args = ["run", "--workers", "2", "--log-format", "json", "--crashloop-threshold", "3",
            "--crashloop-interval", "30", "--backoff-max", "0.05", "--", PY, worker("crasher")]
    with PodsupProcess(args, env={"RECORD_DIR": str(tmp_path)}) as p:
        p.wait_for_line(r'"msg": "crash loop: too many worker exits', timeout=30)

        def podsup_events() -> list[dict]:
            with p._cond:
                texts = [t for _, t in p.lines]
            return [json.loads(t) for t in texts if t.startswith("{") and '"source": "podsup"' in t]

        def starts_after_storm(events: list[dict], slot: int) -> list[float]:
            storm = next(i for i, e in enumerate(events) if e["msg"].startswith("crash loop"))
            return [_ts(e) for e in events[storm:] if e["msg"] == "worker started" and e["slot"] == slot]

        # 4 starts per slot after the storm began (a total count of starts could be
        # reached with one slot ahead of the other, or with starts logged before the storm)
        events = wait_for(lambda: (lambda ev: ev if all(len(starts_after_storm(ev, slot)) >= 4 for slot in (0, 1))
                                   else None)(podsup_events()), timeout=60,
                          message=lambda: f"4 starts per slot after the crash loop began; {p.output()[-3000:]}")
        storm = next(i for i, e in enumerate(events) if e["msg"].startswith("crash loop"))
        assert events[storm]["level"] == "error" and events[storm]["threshold"] == 3
        for slot in (0, 1):
            starts = starts_after_storm(events, slot)
            gaps = [b - a for a, b in zip(starts, starts[1:])]
            assert len(gaps) >= 3
            # --backoff-max 0.05 alone would allow 20 spawns/s; the crash loop floor is 1 s
            assert min(gaps) >= 0.9, gaps
        exited = [e for e in events[storm:] if e["msg"] == "worker exited"]
        assert all(e["crash_loop"] is True and float(e["respawn_in"][:-1]) >= 1.0 for e in exited)


def test_job_mode_workers_exiting_0_are_done_and_podsup_exits_0(tmp_path):
    args = ["run", "--workers", "3", "--normal-exit-codes", "0", "--", PY, worker("batch")]
    with PodsupProcess(args, env={"RECORD_DIR": str(tmp_path)}) as p:
        assert p.wait_exit(60) == 0
        assert sorted(r["slot"] for r in records(tmp_path, "finished")) == ["0", "1", "2"]
        assert len(p.matches(r'worker done slot=\d pid=\d+ status="exit 0"')) == 3
        assert p.matches(r"all workers done")
        assert not p.matches(r"worker exited")  # nothing was respawned


def test_job_mode_still_respawns_an_abnormal_exit(tmp_path):
    args = ["run", "--workers", "1", "--normal-exit-codes", "0,7", "--", PY, worker("crasher")]
    with PodsupProcess(args, env={"RECORD_DIR": str(tmp_path), "EXIT_CODE": "2"}) as p:
        p.wait_for_line(r'worker exited slot=0 pid=\d+ status="exit 2"', count=2)
        assert p.returncode is None
