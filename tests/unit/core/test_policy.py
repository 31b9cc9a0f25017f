"""Pure respawn / crash-storm / job-mode decisions."""
from __future__ import annotations

import signal

from podsup.core import policy


def test_first_respawn_is_immediate_then_doubles_to_the_cap():
    failures, delays = 0, []
    for _ in range(7):
        plan = policy.plan_respawn(failures, uptime=0.5, backoff_max=1.0, crash_loop=False)
        delays.append(plan.delay)
        failures = plan.failures
    assert delays == [0.0, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


def test_backoff_resets_after_the_worker_stayed_up():
    plan = policy.plan_respawn(9, uptime=policy.STABLE_UPTIME, backoff_max=30, crash_loop=False)
    assert plan.delay == 0.0 and plan.failures == 1
    plan = policy.plan_respawn(9, uptime=policy.STABLE_UPTIME - 0.1, backoff_max=30, crash_loop=False)
    assert plan.delay == 25.6 and plan.failures == 10


def test_crash_loop_sets_a_floor_so_it_never_busy_spins():
    plan = policy.plan_respawn(0, uptime=0.0, backoff_max=0.0, crash_loop=True)
    assert plan.delay == policy.CRASHLOOP_MIN_DELAY
    plan = policy.plan_respawn(8, uptime=0.0, backoff_max=20.0, crash_loop=True)
    assert plan.delay == 12.8  # above the floor: backoff rules


def test_huge_failure_counts_do_not_overflow():
    assert policy.backoff_delay(10_000, 5.0) == 5.0


def test_crash_window_counts_exits_in_the_trailing_interval():
    window = policy.CrashWindow(threshold=2, interval=10.0)
    for t in (0.0, 1.0, 2.0):
        window.record(t)
    assert window.in_crash_loop(2.0)
    assert window.clears_at() == 10.0
    assert not window.in_crash_loop(10.0)  # the exit at t=0 left the window
    assert len(window.times) == 2


def test_crash_storm_is_more_than_threshold_and_zero_disables_it():
    assert not policy.crash_storm(3, 3)
    assert policy.crash_storm(4, 3)
    assert not policy.crash_storm(1000, 0)


def test_job_mode_done_only_for_listed_exit_codes():
    assert policy.is_done(0, {0})
    assert policy.is_done(3, frozenset({0, 3}))
    assert not policy.is_done(1, {0})
    assert not policy.is_done(None, {0})  # killed by a signal is never "done"
    assert not policy.is_done(0, frozenset())  # default: no job mode


def test_exit_descriptions_and_restart_reasons():
    assert policy.describe_exit(3, None) == "exit 3"
    assert policy.describe_exit(None, signal.SIGKILL) == "signal SIGKILL"
    assert policy.describe_exit(None, signal.SIGKILL, oom=True) == "oom"
    assert policy.restart_reason(None, signal.SIGSEGV) == "signal"
    assert policy.restart_reason(1, None) == "exit"
    assert policy.signal_name(200) == "SIG200"
