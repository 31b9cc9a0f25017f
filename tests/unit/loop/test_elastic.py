"""The start gate and dynamic sizing in the master loop, against FakeSystem
(issue 11). Tests are named after the transitions they check; the policies
themselves are in tests/unit/core/test_startgate.py and test_sizing.py."""
from __future__ import annotations

import signal

import pytest

from podsup.core import commands
from podsup.core.states import WorkerState

S, I, B, X = WorkerState.STARTING, WorkerState.IDLE, WorkerState.BUSY, WorkerState.STOPPING


def say(pool, slot, line):
    pool.arb.handle_report(pool.pid(slot), line.encode())


def finish_stopping(pool):
    for pid, worker in list(pool.arb.workers.items()):
        if worker.state is X:
            pool.fake.exit(pid, sig=signal.SIGTERM)
    pool.step()


# --- start gate ----------------------------------------------------------------

def test_protocol_pool_reload_keeps_the_old_worker_until_the_new_one_reports(pools):
    pool = pools(workers=1, start_period=1.0, start_timeout=60.0)
    say(pool, 0, "idle")
    old = pool.arb.slots[0].current
    pool.run(commands.Reload())
    new = pool.arb.slots[0].current
    assert new is not old and new.state is S
    pool.advance(5.0)  # far past the start period: a protocol worker still waits for its report
    assert new.state is S and old.state is I and not old.stop_deadline
    states = sorted(w.state.value for w in pool.arb.snapshot(measure=False).workers)
    assert states == ["idle", "starting"]  # what status and workers{state} show: the new one is not counted
    pool.arb.handle_report(new.pid, b"idle")
    pool.step()
    assert new.state is I and old.state is X


def test_silent_pool_worker_counts_after_the_start_period(pools):
    pool = pools(workers=1, start_period=2.5)
    pool.advance(2.0)
    assert pool.state(0) is S
    pool.advance(0.5)
    assert pool.state(0) is I


def test_protocol_worker_silent_past_start_timeout_is_killed_and_replaced(pools):
    pool = pools(workers=2, start_timeout=3.0)
    say(pool, 0, "heartbeat")  # the pool speaks the protocol; slot 1 never reports
    silent = pool.pid(1)
    pool.advance(2.9)
    assert pool.state(1) is S
    pool.advance(0.1)
    assert (silent, signal.SIGKILL) in pool.fake.signals
    pool.fake.exit(silent, sig=signal.SIGKILL)
    pool.step()
    assert pool.pid(1) != silent and pool.state(1) is S
    assert pool.arb.snapshot().restarts == {"start-timeout": 1}
    assert "sent no report within --start-timeout" in pool.log()


def test_start_timeout_zero_waits_for_the_report_for_ever(pools):
    pool = pools(workers=2, start_timeout=0.0)
    say(pool, 0, "idle")
    pool.advance(10_000.0)
    assert pool.state(1) is S and pool.arb.snapshot().restarts == {}


def test_next_timeout_wakes_for_the_start_timeout(pools):
    pool = pools(workers=2, start_timeout=3.0)
    say(pool, 0, "idle")
    pool.advance(2.5)
    assert pool.arb.next_timeout() == pytest.approx(0.5)


# --- dynamic sizing ------------------------------------------------------------

def dynamic(pools, **options):
    options.setdefault("workers", 2)
    return pools(max_workers=8, min_workers=2, spare_workers=2, idle_timeout=5.0, **options)


def test_dynamic_pool_stays_at_its_start_count_until_workers_report_jobs(pools):
    pool = dynamic(pools)
    pool.advance(20.0)
    assert sorted(pool.arb.slots) == [0, 1] and pool.arb.desired == 2
    assert "dynamic mode inactive" in pool.log()


def test_busy_workers_grow_the_pool_to_keep_spare_idle_ones(pools):
    pool = dynamic(pools)
    say(pool, 0, "busy")
    pool.step()
    assert sorted(pool.arb.slots) == [0, 1, 2] and pool.arb.desired == 3
    say(pool, 1, "busy")
    pool.step()
    assert sorted(pool.arb.slots) == [0, 1, 2, 3]
    assert pool.spawned_slots() == ["0", "1", "2", "3"]


def test_growth_stops_at_max_workers(pools):
    pool = dynamic(pools)
    for _ in range(10):
        for slot in list(pool.arb.slots):
            say(pool, slot, "busy")
        pool.step()
    assert len(pool.arb.slots) == 8 and pool.arb.desired == 8
    assert pool.arb.snapshot().max_workers == 8


def test_idle_workers_above_target_retire_after_idle_timeout_and_busy_ones_never(pools):
    pool = dynamic(pools)
    for slot in range(2):
        say(pool, slot, "busy")
    pool.step()
    for slot in (2, 3):
        say(pool, slot, "busy")
    pool.step()
    assert len(pool.arb.slots) == 6
    for slot in (0, 1, 2, 4, 5):
        say(pool, slot, "idle")
    pool.step()          # busy 1 (slot 3): want 3, live 6
    pool.advance(4.9)
    assert len(pool.arb.slots) == 6
    pool.advance(0.1)
    assert sorted(pool.arb.slots) == [0, 1, 3]  # the highest idle slots retire; busy slot 3 stays
    stopping = [w for w in pool.arb.workers.values() if w.state is X]
    assert sorted(w.slot for w in stopping) == [2, 4, 5]
    finish_stopping(pool)
    assert pool.arb.snapshot().restarts == {}  # retired, not restarted


def test_crash_storm_freezes_growth(pools):
    pool = dynamic(pools, crashloop_threshold=1, crashloop_interval=60.0)
    say(pool, 0, "idle")
    for _ in range(2):
        pool.fake.exit(pool.pid(1), code=1)
        pool.advance(1.5)
    assert pool.arb.crash_loop
    say(pool, 0, "busy")
    pool.step()
    assert sorted(pool.arb.slots) == [0, 1]


def test_scale_is_refused_in_dynamic_mode(pools):
    pool = dynamic(pools)
    future = pool.run(commands.Scale(absolute=5))
    with pytest.raises(ValueError, match="refused in dynamic mode"):
        future.result(0)


def test_ttin_and_ttou_are_ignored_in_dynamic_mode(pools):
    pool = dynamic(pools)
    for sig in (signal.SIGTTIN, signal.SIGTTOU):
        pool.arb.record_signal(sig)
        pool.step()
    assert sorted(pool.arb.slots) == [0, 1]
    assert "SIGTTIN ignored in dynamic mode" in pool.log()


def test_dynamic_pool_is_ready_with_min_workers_while_it_grows(pools):
    pool = dynamic(pools)
    say(pool, 0, "busy")
    say(pool, 1, "busy")
    pool.step()  # slots 2 and 3 starting
    snap = pool.arb.snapshot()
    assert snap.desired == 4 and snap.ready and snap.min_workers == 2 and snap.dynamic
