"""podsup.loop.spawning: what a worker is started with.

All against FakeSystem: no processes, no real waiting. Tests are named after
the transitions they check.
"""
from __future__ import annotations

import os

from podsup import names
from podsup.core.states import WorkerState


# --- spawning ---------------------------------------------------------------

def test_start_spawns_every_slot_in_starting_with_its_id_count_and_report_path(pools):
    pool = pools(workers=3)
    assert pool.spawned_slots() == ["0", "1", "2"]
    for _pid, argv, env in pool.fake.spawned:
        assert argv == ["worker"]
        assert env[names.ENV_WORKERS] == "3"
        assert env[names.ENV_REPORT] == pool.arb.slots[int(env[names.ENV_WORKER_ID])].current.report.path
    assert len({env[names.ENV_REPORT] for _pid, _argv, env in pool.fake.spawned}) == 3  # one socket a worker
    assert all(os.path.exists(pool.report_path(s)) for s in range(3))
    assert all(pool.state(s) is WorkerState.STARTING for s in range(3))
