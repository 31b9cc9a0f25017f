"""Crash storms scaled to the pool, readiness at once, liveness last (issue 11, part 5)."""
from __future__ import annotations

from podsup.core import policy
from podsup.core.config import Config
from podsup.core.states import PoolState


def test_default_threshold_scales_with_the_pool_and_never_drops_below_ten():
    assert [policy.crashloop_threshold(None, n) for n in (1, 4, 5, 8, 64)] == [10, 10, 10, 16, 128]


def test_a_given_threshold_wins_whatever_the_pool():
    assert policy.crashloop_threshold(3, 64) == 3 and policy.crashloop_threshold(0, 64) == 0


def test_storm_fails_liveness_only_after_restart_after():
    assert not policy.storm_fails_liveness(None, 300.0)
    assert not policy.storm_fails_liveness(299.9, 300.0)
    assert policy.storm_fails_liveness(300.0, 300.0)
    assert not policy.storm_fails_liveness(1e9, 0.0)  # 0: never


def test_config_default_is_auto_and_five_minutes():
    config = Config()
    assert config.crashloop_threshold is None and config.crashloop_restart_after == 300.0


def crash(pool, times):
    for _ in range(times):
        if pool.arb.slots[0].current is not None:
            pool.fake.exit(pool.pid(0), code=1)
        pool.advance(1.0)


def test_a_storm_in_a_four_worker_pool_is_not_ready_at_once_but_stays_live(pools):
    pool = pools(workers=4, crashloop_interval=60.0, backoff_max=0.0)
    assert pool.arb.crash.threshold == 10
    for _ in range(11):  # 11 exits within a minute: past the 10 a 4-worker pool allows
        slot = next(s for s in pool.arb.slots.values() if s.current is not None)
        pool.fake.exit(slot.current.pid, code=1)
        pool.advance(1.0)
    snap = pool.arb.snapshot()
    assert snap.crash_loop and snap.state is PoolState.CRASH_LOOP
    assert not snap.ready and snap.healthy and not snap.crash_loop_fatal
    assert pool.arb.health().crash_loop and not pool.arb.health().crash_loop_fatal
    assert snap.crash_loop_seconds == 0.0  # it began at the last exit
    pool.advance(12.0)
    assert pool.arb.snapshot().crash_loop_seconds == 12.0 and pool.arb.snapshot().healthy


def test_the_storm_fails_liveness_once_it_lasted_restart_after(pools):
    pool = pools(workers=1, crashloop_threshold=2, crashloop_interval=600.0, crashloop_restart_after=30.0,
                 backoff_max=0.0)
    crash(pool, 3)
    assert pool.arb.crash_loop and pool.arb.snapshot().healthy
    assert pool.arb.next_timeout() <= 1.0
    pool.advance(30.0)
    snap = pool.arb.snapshot()
    assert snap.crash_loop_fatal and not snap.healthy and pool.arb.health().crash_loop_fatal
    assert "liveness fails now" in pool.log()


def test_restart_after_zero_never_fails_liveness(pools):
    pool = pools(workers=1, crashloop_threshold=2, crashloop_interval=1e6, crashloop_restart_after=0.0,
                 backoff_max=0.0)
    crash(pool, 3)
    pool.advance(1e5)
    assert pool.arb.crash_loop and pool.arb.snapshot().healthy


def test_the_threshold_follows_the_desired_count(pools):
    pool = pools(workers=8)
    assert pool.arb.crash.threshold == 16
    from podsup.core import commands
    pool.run(commands.Scale(absolute=20))
    pool.fake.exit(pool.pid(0), code=1)
    pool.step()
    assert pool.arb.crash.threshold == 40
