"""podsup.loop.exits: reaped workers, backoff, job mode, OOM.

All against FakeSystem: no processes, no real waiting. Tests are named after
the transitions they check.
"""
from __future__ import annotations

import signal

from podsup.core.states import PoolState


# --- exits, backoff, job mode, OOM -----------------------------------------

def test_crash_respawns_the_same_slot_first_at_once_then_with_backoff(pools):
    pool = pools(backoff_max=0.3)
    first = pool.pid(1)
    pool.fake.exit(first, code=1)
    pool.step()
    second = pool.pid(1)
    assert second != first and pool.spawned_slots()[-1] == "1"
    pool.fake.exit(second, code=1)
    pool.step()
    assert pool.arb.slots[1].current is None  # waits 0.1 s
    pool.advance(0.05)
    assert pool.arb.slots[1].current is None
    pool.advance(0.06)
    third = pool.pid(1)
    assert pool.arb.restarts["exit"] == 2 and pool.arb.slots[1].restarts == 2
    assert pool.arb.snapshot().exits == {"exit 1": 2}
    assert "respawn_in=0.10s" in pool.log()
    assert third not in (first, second)


def test_backoff_resets_once_a_worker_stayed_up(pools):
    pool = pools(backoff_max=10)
    for _ in range(3):
        pool.fake.exit(pool.pid(0), code=1)
        pool.step()
        pool.advance(1.0)  # respawned (0, 0.1, 0.2 s), each up < the stable period
    assert pool.arb.slots[0].failures == 3
    pool.advance(5)  # the current worker has now been up for the stable period
    pool.fake.exit(pool.pid(0), code=1)
    pool.step()
    assert pool.arb.slots[0].current is not None  # respawned at once


def test_signal_exit_is_described_by_name_and_counted_as_reason_signal(pools):
    pool = pools()
    pool.fake.exit(pool.pid(0), sig=signal.SIGSEGV)
    pool.step()
    snap = pool.arb.snapshot()
    assert snap.exits == {"signal SIGSEGV": 1}
    assert snap.restarts == {"signal": 1}
    assert snap.workers[0].last_exit == "signal SIGSEGV"


def test_normal_exit_code_marks_the_slot_done_and_all_done_exits_0(pools):
    pool = pools(normal_exit_codes=frozenset({0}))
    pool.fake.exit(pool.pid(0), code=0)
    pool.step()
    assert pool.arb.slots[0].done and pool.arb.slots[0].current is None
    assert pool.arb.exit_code is None
    pool.fake.exit(pool.pid(1), code=0)
    pool.step()
    assert pool.arb.exit_code == 0
    assert len(pool.fake.spawned) == 2  # nothing respawned


def test_sigkill_with_a_rise_of_oom_kill_is_reported_as_oom(pools, tmp_path):
    events = tmp_path / "memory.events"
    events.write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    pool = pools(oom_path=str(events))
    events.write_text("low 0\nhigh 0\nmax 4\noom 2\noom_kill 2\n")
    pool.fake.exit(pool.pid(0), sig=signal.SIGKILL)
    pool.step()
    assert pool.arb.slots[0].last_exit == "oom"
    assert "out-of-memory" in pool.log()
    pool.fake.exit(pool.pid(1), sig=signal.SIGKILL)  # no further rise: a plain SIGKILL
    pool.step()
    assert pool.arb.snapshot().exits == {"oom": 1, "signal SIGKILL": 1}


def test_crash_storm_enters_crash_loop_slows_respawns_and_clears(pools):
    pool = pools(workers=1, crashloop_threshold=2, crashloop_interval=10.0, backoff_max=0.0,
                 crashloop_restart_after=0.5)
    for _ in range(3):
        pool.fake.exit(pool.pid(0), code=1)
        pool.step()
        if pool.arb.slots[0].current is None:
            break
    snap = pool.arb.snapshot()
    assert snap.crash_loop and snap.state is PoolState.CRASH_LOOP and not snap.ready
    assert snap.healthy  # liveness fails only after --crashloop-restart-after
    assert pool.arb.slots[0].current is None  # backoff-max 0, yet no busy spin
    pool.advance(0.5)
    assert not pool.arb.snapshot().healthy and pool.arb.snapshot().crash_loop_fatal
    assert "liveness fails now" in pool.log()
    pool.advance(0.49)
    assert pool.arb.slots[0].current is None
    pool.advance(0.01)
    assert pool.arb.slots[0].current is not None
    pool.advance(10)
    snap = pool.arb.snapshot()
    assert not snap.crash_loop and snap.healthy and snap.state is PoolState.RUNNING
    assert "crash loop over" in pool.log()


def test_spawn_failure_is_a_crash_with_backoff_not_a_loop_crash(pools):
    pool = pools(workers=1, backoff_max=1.0)
    pool.fake.fail_spawn = OSError(2, "No such file or directory")
    pool.fake.exit(pool.pid(0), code=1)
    pool.step()
    pool.advance(0.1)
    assert pool.arb.slots[0].current is None and pool.arb.slots[0].last_exit == "spawn error"
    line = next(li for li in pool.log().splitlines() if "cannot start worker" in li)
    assert "command=worker" in line and 'error="No such file or directory"' in line and "respawn_in=" in line
    pool.fake.fail_spawn = None
    pool.advance(1.0)
    assert pool.arb.slots[0].current is not None


class _Order:
    """An extension that notes, at each hook, how many processes were spawned so far."""

    def __init__(self, fake):
        self.fake, self.seen = fake, []

    def on_exit(self, slot, pid, description):
        self.seen.append(("exit", pid, len(self.fake.spawned)))

    def on_spawn(self, slot, pid):
        self.seen.append(("spawn", pid, len(self.fake.spawned)))


def test_an_immediate_refill_starts_the_replacement_before_the_dead_workers_bookkeeping(pools):
    pool = pools(workers=2)
    order = _Order(pool.fake)
    pool.arb.extensions.append(order)
    old = pool.pid(1)
    pool.fake.exit(old, code=1)
    pool.step()
    new = pool.pid(1)
    # on_exit already finds the replacement spawned; hooks and log lines keep their order
    assert order.seen == [("exit", old, 3), ("spawn", new, 3)]
    log = pool.log()
    assert log.index(f"worker exited slot=1 pid={old}") < log.index(f"worker started slot=1 pid={new}")
    assert pool.arb.slots[1].restarts == 1 and pool.arb.restarts["exit"] == 1
    assert pool.arb.slots[1].respawn_at is None


def test_a_refill_with_backoff_or_a_command_waiting_is_left_to_the_timers(pools):
    from podsup.core import commands

    pool = pools(workers=2, backoff_max=30.0)
    order = _Order(pool.fake)
    pool.arb.extensions.append(order)
    pool.fake.exit(pool.pid(1), code=1)
    pool.step()  # the first refill is immediate
    pool.fake.exit(pool.pid(1), code=1)
    pool.step()  # the second waits its backoff
    assert pool.arb.slots[1].current is None and len(pool.fake.spawned) == 3
    # a scale-down queued before an exit is applied before any refill: no spawn at all
    pool.arb.submit(commands.Scale(absolute=1))
    pool.fake.exit(pool.pid(0), code=1)
    pool.step()
    assert len(pool.fake.spawned) == 4 and pool.arb.desired == 1  # slot 0 refilled by the timers' pass
    assert [kind for kind, _pid, _n in order.seen].count("spawn") == 2


def test_workers_get_podsups_environment_as_it_is_at_each_spawn(pools, monkeypatch):
    pool = pools(workers=1)
    monkeypatch.setenv("PODSUP_TEST_LATE", "1")
    pool.fake.exit(pool.pid(0), code=1)
    pool.step()
    assert pool.fake.spawned[-1][2]["PODSUP_TEST_LATE"] == "1"
    monkeypatch.delenv("PODSUP_TEST_LATE")
    pool.fake.advance(60)
    pool.fake.exit(pool.pid(0), code=1)
    pool.step()
    assert "PODSUP_TEST_LATE" not in pool.fake.spawned[-1][2]
