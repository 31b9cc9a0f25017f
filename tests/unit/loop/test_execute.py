"""podsup.loop.execute: scale, reload, recycle.

All against FakeSystem: no processes, no real waiting. Tests are named after
the transitions they check.
"""
from __future__ import annotations

import signal

import pytest

from podsup import names
from podsup.core import commands
from podsup.core.states import WorkerState


# --- scale, reload, recycle -----------------------------------------------

def test_scale_up_spawns_new_slots_and_down_stops_the_highest(pools):
    pool = pools()
    assert pool.run(commands.Scale(delta=1)).result(0) == {"desired": 3, "previous": 2}
    assert pool.spawned_slots() == ["0", "1", "2"]
    assert pool.fake.spawned[-1][2][names.ENV_WORKERS] == "3"
    top, middle = pool.pid(2), pool.pid(1)
    pool.run(commands.Scale(absolute=1))
    assert pool.fake.signals == [(top, signal.SIGTERM), (middle, signal.SIGTERM)]
    assert sorted(pool.arb.slots) == [0]
    pool.fake.exit(top, sig=signal.SIGTERM)
    pool.fake.exit(middle, sig=signal.SIGTERM)
    pool.step()
    assert len(pool.fake.spawned) == 3 and pool.arb.restarts == {}


def test_scale_below_zero_is_refused(pools):
    pool = pools()
    with pytest.raises(ValueError, match="0..1024"):
        pool.run(commands.Scale(delta=-3)).result(0)
    assert pool.arb.desired == 2


def test_ttin_at_the_maximum_is_ignored_and_scale_above_it_refused(pools):
    from podsup.core.config import MAX_WORKERS

    pool = pools(workers=1)
    pool.arb.desired = MAX_WORKERS  # as if scaled there: no need to fork 1,024 fakes
    pool.arb._dispatch_signal(signal.SIGTTIN)
    assert pool.arb.desired == MAX_WORKERS and "SIGTTIN ignored: at the maximum" in pool.log()
    with pytest.raises(ValueError, match="0..1024"):
        pool.arb._scale(MAX_WORKERS + 1)


def test_ttin_and_ttou_signals_scale_by_one(pools):
    pool = pools()
    pool.arb._signals.append(signal.SIGTTIN)
    pool.step()
    assert pool.arb.desired == 3
    pool.arb._signals.extend([signal.SIGTTOU] * 4)
    pool.step()
    assert pool.arb.desired == 0  # and no error below zero


def test_recycle_starts_the_replacement_before_stopping_the_old_worker(pools):
    pool = pools()
    old = pool.pid(0)
    result = pool.run(commands.Recycle(slot=0, reason="rss")).result(0)
    new = result["new_pid"]
    assert result["old_pid"] == old and pool.pid(0) == new
    assert pool.fake.signals == []  # the old one serves until the new one is up
    assert pool.arb.snapshot().running == 3
    pool.arb.handle_report(new, b"heartbeat")
    pool.step()
    assert pool.fake.signals == [(old, signal.SIGTERM)]
    assert pool.arb.snapshot().restarts == {"rss": 1}
    pool.fake.exit(old, sig=signal.SIGTERM)
    pool.step()
    assert pool.pid(0) == new and len(pool.fake.spawned) == 3  # not respawned again


def test_recycle_with_kill_kills_the_old_worker_at_once(pools):
    pool = pools()
    old = pool.pid(1)
    pool.run(commands.Recycle(slot=1, reason="heartbeat", kill=True))
    assert pool.fake.signals == [(old, signal.SIGKILL)]
    pool.step()
    assert pool.arb.slots[1].current.pid != old
    assert pool.arb.snapshot().restarts == {"heartbeat": 1}


def test_recycle_of_an_empty_slot_is_refused(pools):
    pool = pools()
    with pytest.raises(ValueError, match="slot 7"):
        pool.run(commands.Recycle(slot=7, reason="rss")).result(0)


def test_reload_replaces_one_slot_at_a_time_and_never_dips_below_n(pools):
    pool = pools(workers=3)
    old = {pool.pid(s) for s in range(3)}
    pool.run(commands.Reload())
    lowest = 3
    for _ in range(20):
        for pid in list(pool.fake.alive):
            worker = pool.arb.workers.get(pid)
            if worker and worker.state is WorkerState.STOPPING:
                pool.fake.exit(pid, sig=signal.SIGTERM)
        pool.advance(0.5)
        lowest = min(lowest, pool.arb.snapshot().running)
    assert lowest >= 3
    assert not old & {pool.pid(s) for s in range(3)}
    assert pool.arb.snapshot().restarts == {"reload": 3}
    assert pool.spawned_slots() == ["0", "1", "2", "0", "1", "2"]
