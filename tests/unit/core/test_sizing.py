"""Dynamic pool sizing (podsup.sizing): one test per transition of the pool."""
from __future__ import annotations

import pytest

from podsup.core import sizing
from podsup.core.sizing import Bounds, SlotView
from podsup.core.states import WorkerState

B, I, S, X = WorkerState.BUSY, WorkerState.IDLE, WorkerState.STARTING, WorkerState.STOPPING
BOUNDS = Bounds(minimum=2, maximum=8, spare=2, idle_timeout=10.0)


def pool(*states, idle_since=0.0):
    return [SlotView(i, st, idle_since if st is I else None) for i, st in enumerate(states)]


def test_want_is_busy_plus_spare_clamped_to_the_bounds():
    assert [sizing.want(busy, BOUNDS) for busy in (0, 1, 3, 6, 7, 20)] == [2, 3, 5, 8, 8, 8]


def test_steady_pool_with_spare_idle_workers_does_nothing():
    plan = sizing.plan(pool(B, B, I, I), BOUNDS, now=100.0)
    assert (plan.start, plan.retire, plan.desired) == ((), (), 4)


def test_busy_rise_opens_slots_until_spare_workers_are_idle():
    # 6 of 8 busy is the load: with spare 2 a full 8 is wanted
    plan = sizing.plan(pool(B, B, B, B, B, B), BOUNDS, now=1.0)
    assert plan.start == (6, 7) and plan.desired == 8 and plan.want == 8 and plan.busy == 6


def test_growth_stops_at_max_workers():
    plan = sizing.plan(pool(*[B] * 8), BOUNDS, now=1.0)
    assert plan.start == () and plan.desired == 8


def test_starting_workers_count_so_a_load_step_starts_each_worker_once():
    plan = sizing.plan(pool(B, B, B, S, S), BOUNDS, now=1.0)
    assert plan.start == ()


def test_a_slot_waiting_for_its_respawn_counts_as_live():
    plan = sizing.plan(pool(B, None, I), BOUNDS, now=1.0)
    assert plan.start == () and plan.desired == 3


def test_stopping_workers_do_not_count_and_their_slot_id_is_not_reused_while_taken():
    slots = [SlotView(0, B), SlotView(1, X), SlotView(2, B)]
    plan = sizing.plan(slots, BOUNDS, now=1.0)
    assert plan.start == (3, 4)  # want 4, live 2; slot 1 still holds its stopping worker


def test_new_slots_reuse_the_lowest_free_ids():
    slots = [SlotView(0, B), SlotView(3, B), SlotView(5, B)]
    assert sizing.plan(slots, BOUNDS, now=1.0).start == (1, 2)


def test_pool_below_min_grows_to_min_even_when_nothing_is_busy():
    plan = sizing.plan([], Bounds(minimum=3, maximum=8, spare=1), now=1.0)
    assert plan.start == (0, 1, 2)


def test_crash_storm_freezes_growth():
    plan = sizing.plan(pool(B, B, B, B), BOUNDS, now=1.0, crash_loop=True)
    assert plan.start == () and plan.desired == 4


def test_idle_worker_above_target_retires_after_idle_timeout():
    slots = pool(B, I, I, I, I, idle_since=0.0)  # want 3, live 5
    assert sizing.plan(slots, BOUNDS, now=9.9).retire == ()
    plan = sizing.plan(slots, BOUNDS, now=10.0)
    assert plan.retire == (4, 3) and plan.desired == 3


def test_retirement_takes_the_highest_expired_slots_first():
    slots = [SlotView(0, I, 0.0), SlotView(1, I, 0.0), SlotView(2, I, 0.0), SlotView(3, I, 5.0)]
    # want 2 (min 2, nothing busy); at t=10 slots 0-2 expired, slot 3 not yet
    assert sizing.plan(slots, BOUNDS, now=10.0).retire == (2, 1)


def test_busy_worker_is_never_retired():
    # 5 live, want 3 (max 3): the surplus is real, but every worker is busy
    plan = sizing.plan(pool(B, B, B, B, B), Bounds(minimum=1, maximum=3, spare=0, idle_timeout=0.0), now=100.0)
    assert plan.retire == () and plan.desired == 5


def test_surplus_retires_only_the_idle_workers_among_busy_ones():
    slots = pool(B, I, B, I, B, idle_since=0.0)
    plan = sizing.plan(slots, Bounds(minimum=1, maximum=3, spare=0, idle_timeout=0.0), now=100.0)
    assert plan.retire == (3, 1)


def test_starting_worker_is_never_retired():
    plan = sizing.plan(pool(S, S, S, S), Bounds(minimum=1, maximum=8, spare=1, idle_timeout=0.0), now=100.0)
    assert plan.retire == ()


def test_retirement_never_goes_below_min_workers():
    slots = pool(I, I, I, I, idle_since=0.0)
    plan = sizing.plan(slots, Bounds(minimum=3, maximum=8, spare=0, idle_timeout=1.0), now=100.0)
    assert plan.retire == (3,) and plan.desired == 3


def test_spare_idle_workers_are_kept_whatever_their_idle_time():
    slots = pool(B, I, I, idle_since=0.0)  # want 3 = 1 busy + 2 spare
    assert sizing.plan(slots, BOUNDS, now=1e6).retire == ()


def test_inactive_pool_stays_at_its_start_count():
    plan = sizing.plan(pool(I, I, I, I, I), BOUNDS, now=1e6, active=False)
    assert (plan.start, plan.retire, plan.desired) == ((), (), 5)
    assert sizing.next_retire_at(pool(I, I, I, I, I), BOUNDS, active=False) is None


def test_next_retire_at_is_the_earliest_idle_timeout_above_target():
    slots = [SlotView(0, I, 3.0), SlotView(1, I, 1.0), SlotView(2, I, 2.0)]
    assert sizing.next_retire_at(slots, BOUNDS) == 11.0
    assert sizing.next_retire_at(slots[:2], BOUNDS) is None  # at target: no timer


@pytest.mark.parametrize("busy,capacity,expected", [(0, 8, 0.0), (6, 8, 0.75), (8, 8, 1.0), (9, 8, 1.0), (3, 0, 0.0)])
def test_saturation_is_busy_over_capacity(busy, capacity, expected):
    assert sizing.saturation(busy, capacity) == expected
