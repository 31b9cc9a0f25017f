"""podsup.loop.signals: the Kubernetes stop order (preStop `podsup drain`, then the kubelet's SIGTERM).

All against FakeSystem: no processes, no real waiting. Tests are named after
the transitions they check.
"""
from __future__ import annotations

import signal

import pytest

from podsup.core import commands


# --- the Kubernetes stop order: preStop `podsup drain`, then the kubelet's SIGTERM ------

def test_sigterm_after_a_drain_command_goes_on_draining_and_a_second_sigterm_is_fast(pools):
    pool = pools(drain_delay=2.0, graceful_timeout=60.0)
    pool.run(commands.Drain())
    pool.arb._signals.append(signal.SIGTERM)  # the kubelet's, once preStop returned
    pool.step()
    assert pool.arb.draining and not pool.arb.stopping
    assert "SIGTERM while draining: the graceful stop goes on" in pool.log()
    assert pool.fake.signals == []  # still in the drain delay: nobody signalled, nobody killed
    pool.arb._signals.append(signal.SIGTERM)  # a person's second TERM
    pool.step()
    assert pool.arb.stopping and "second SIGTERM" in pool.log()


def test_a_drain_while_draining_gets_the_same_answer_not_an_error(pools):
    pool = pools(drain_delay=1.0, graceful_timeout=4.0)
    first = pool.run(commands.Drain()).result(0)
    again = pool.run(commands.Drain()).result(0)
    assert first["draining"] and again["draining"] and again["already"]
    assert again["drain_delay"] == 1.0 and again["graceful_timeout"] == 4.0
    with pytest.raises(RuntimeError, match="only a fast stop"):
        pool.run(commands.Scale(absolute=3)).result(0)


def test_a_worker_ending_by_itself_during_the_drain_delay_has_its_leftovers_stopped(pools):
    pool = pools(workers=1, drain_delay=3.0, graceful_timeout=2.0)
    leader = pool.pid(0)
    pool.fake.lingering.add(leader)  # `sleep 300 &` of a shell worker
    pool.run(commands.Drain())
    pool.fake.exit(leader, code=0)  # ends on its own before the stop signal
    pool.step()
    assert (leader, signal.SIGTERM) in pool.fake.signals and leader in pool.arb.lingering
    pool.advance(2.1)
    assert pool.fake.signals[-1] == (leader, signal.SIGKILL)
    pool.advance(1.0)
    assert not pool.arb.lingering and pool.arb.exit_code is not None


def test_job_mode_waits_for_a_done_workers_leftovers_before_exiting(pools):
    pool = pools(workers=1, normal_exit_codes=frozenset({0}), graceful_timeout=2.0)
    leader = pool.pid(0)
    pool.fake.lingering.add(leader)  # a background job that ignores TERM
    pool.fake.exit(leader, code=0)
    pool.step()
    assert pool.arb.slots[0].done and pool.arb.exit_code is None
    assert pool.arb.snapshot(measure=False).lingering == 1
    pool.advance(2.1)
    assert pool.fake.signals[-1] == (leader, signal.SIGKILL)
    pool.step()
    assert pool.arb.exit_code == 0 and pool.arb.snapshot(measure=False).lingering == 0


def test_hup_during_a_reload_never_starts_a_second_new_worker_in_the_slot_being_replaced(pools):
    pool = pools(workers=2)
    pool.run(commands.Reload())
    spawned = len(pool.fake.spawned)
    for _ in range(5):  # HUPs in quick succession
        pool.arb._signals.append(signal.SIGHUP)
        pool.step()
    assert len(pool.fake.spawned) == spawned  # slot 0's new worker is still starting: wait for it
    in_slot0 = [w for w in pool.arb.workers.values() if w.slot == 0]
    assert len(in_slot0) == 2  # the old one and its one replacement
    pool.advance(1.1)  # the replacement is up (start-up period): the reload goes on, one at a time
    assert len(pool.fake.spawned) == spawned + 1
