"""The master loop's policy against FakeSystem: no processes, no real waiting.

Tests are named after the transitions they check.
"""
from __future__ import annotations

import errno
import io
import os
import signal
import subprocess
import sys

import pytest

from podsup import client, names

from podsup.core import commands
from podsup.core.config import Config
from podsup.core.health import HealthView
from podsup.core.plugin import Extension
from podsup.core.states import PoolState, WorkerState
from podsup.host.cgroup import OomCounter
from podsup.host.output import Log
from podsup.host.system import ExitStatus, FakeSystem
from podsup.loop.arbiter import Arbiter
from tests.waiting import wait_for


class Pool:
    """An Arbiter on a FakeSystem, with helpers to drive it."""

    def __init__(self, first_pid: int | None = None, oom_path: str | None = None,
                 extensions=(), **options) -> None:
        options.setdefault("workers", 2)
        options.setdefault("graceful_timeout", 5.0)
        self.config = Config(command=("worker",), **options)
        self.fake = FakeSystem()
        if first_pid is not None:
            self.fake.next_pid = first_pid - 1
        self.err = io.BytesIO()
        self.arb = Arbiter(self.config, extensions=extensions, system=self.fake,
                           log=Log("text", out=io.BytesIO(), err=self.err),
                           oom=OomCounter(oom_path or ""), install_signals=False)
        self.arb.start()
        self.step()

    def step(self) -> None:
        self.arb.step(0)

    def advance(self, seconds: float) -> None:
        self.fake.advance(seconds)
        self.step()

    def pid(self, slot: int) -> int:
        return self.arb.slots[slot].current.pid

    def report_path(self, slot: int) -> str:
        """PODSUP_REPORT of the slot's current worker."""
        return self.arb.slots[slot].current.report.path

    def state(self, slot: int) -> WorkerState:
        return self.arb.slots[slot].current.state

    def spawned_slots(self) -> list[str]:
        return [env[names.ENV_WORKER_ID] for _pid, _argv, env in self.fake.spawned]

    def run(self, command):
        future = self.arb.submit(command)
        self.step()
        return future

    def log(self) -> str:
        return self.err.getvalue().decode()

    def close(self) -> None:
        self.arb.close()


@pytest.fixture
def pools():
    made = []

    def make(**options) -> Pool:
        made.append(Pool(**options))
        return made[-1]
    yield make
    for pool in made:
        pool.close()


# --- health -----------------------------------------------------------------

def test_health_reads_the_worker_table_without_a_snapshot(pools, monkeypatch):
    """/readyz calls health() from an HTTP thread per request: flags and the
    table only, never the psutil-measured snapshot."""
    pool = pools(workers=3)
    pool.arb.handle_report(pool.pid(0), b"idle")
    pool.arb.handle_report(pool.pid(2), b"busy")

    def no_snapshot(measure=True):
        raise AssertionError("a psutil-measured snapshot at every tick is what this avoids")
    monkeypatch.setattr(pool.arb, "snapshot", no_snapshot)
    assert pool.arb.health() == HealthView(desired=3, up=2, draining=False, crash_loop=False)
    pool.arb.stopping = True
    assert pool.arb.health() == HealthView(desired=3, up=2, draining=True, crash_loop=False)


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


# --- worker state machine -------------------------------------------------

def test_starting_to_idle_on_first_report(pools):
    pool = pools()
    pool.arb.handle_report(pool.pid(0), b"heartbeat")
    assert pool.state(0) is WorkerState.IDLE
    assert pool.state(1) is WorkerState.STARTING
    assert pool.arb.transitions[("starting", "idle")] == 1
    assert pool.arb.snapshot().workers[0].last_heartbeat is not None


def test_starting_to_idle_after_the_startup_period(pools):
    pool = pools()
    pool.advance(0.5)
    assert pool.state(0) is WorkerState.STARTING
    pool.advance(0.5)
    assert pool.state(0) is WorkerState.IDLE and pool.state(1) is WorkerState.IDLE


def test_idle_to_busy_on_busy_and_busy_to_idle_on_done(pools):
    pool = pools()
    pid = pool.pid(0)
    pool.arb.handle_report(pid, b"busy")
    assert pool.state(0) is WorkerState.BUSY
    assert pool.arb.snapshot().workers[0].busy_since is not None
    pool.advance(0.2)
    pool.arb.handle_report(pid, b"done 0.2\n")
    worker = pool.arb.snapshot().workers[0]
    assert worker.state is WorkerState.IDLE and worker.busy_since is None
    assert worker.requests == 1 and worker.qps > 0
    pool.arb.handle_report(pid, b"busy")
    pool.arb.handle_report(pid, b"idle")
    assert pool.state(0) is WorkerState.IDLE
    assert pool.arb.snapshot().workers[0].requests == 1  # idle is not a request


def test_stopping_is_final_reports_do_not_revive_a_stopping_worker(pools):
    pool = pools(workers=1)
    old = pool.pid(0)
    pool.run(commands.Scale(absolute=0))
    worker = pool.arb.workers[old]
    assert worker.state is WorkerState.STOPPING
    pool.arb.handle_report(old, b"busy")
    assert worker.state is WorkerState.STOPPING


def test_queue_report_sets_the_pool_queue_depth(pools):
    pool = pools()
    pool.arb.handle_report(pool.pid(1), b"queue jobs 42")
    assert pool.arb.snapshot().queues == {"jobs": 42.0}


def test_a_queue_depth_nobody_refreshes_expires(pools):
    from podsup.loop.intake import QUEUE_REPORT_TTL

    pool = pools()
    pool.arb.handle_report(pool.pid(0), b"queue jobs 42")
    pool.advance(QUEUE_REPORT_TTL - 1)
    pool.arb.handle_report(pool.pid(0), b"queue other 1")
    assert pool.arb.snapshot().queues == {"jobs": 42.0, "other": 1.0}
    pool.advance(2)
    assert pool.arb.snapshot().queues == {"other": 1.0}  # a stale backlog is gone, not kept for the HPA


def test_reported_queue_names_are_bounded(pools):
    from podsup.loop.intake import MAX_REPORTED_QUEUES, QUEUE_REPORT_TTL

    pool = pools()
    for i in range(MAX_REPORTED_QUEUES + 10):
        pool.arb.handle_report(pool.pid(0), f"queue q{i} {i}".encode())
    snap = pool.arb.snapshot()
    assert len(snap.queues) == MAX_REPORTED_QUEUES and snap.malformed_reports == 10
    assert pool.log().count("too many queue names") == 1
    pool.arb.handle_report(pool.pid(0), b"queue q0 7")  # a known name is still updated
    assert pool.arb.snapshot().queues["q0"] == 7.0
    pool.advance(QUEUE_REPORT_TTL + 1)
    pool.arb.handle_report(pool.pid(0), b"queue fresh 1")  # stale names make room
    assert pool.arb.snapshot().queues == {"fresh": 1.0}


def test_malformed_reports_are_counted_and_ignored(pools):
    pool = pools()
    for data in (b"", b"dance", b"done soon", b"queue jobs", b"\xff\xfe", b"busy now"):
        pool.arb.handle_report(pool.pid(0), data)
    assert pool.arb.snapshot().malformed_reports == 6
    assert pool.state(0) is WorkerState.STARTING


def test_report_over_the_real_socket_is_attributed_by_kernel_credentials(pools):
    # the fake pool's first worker gets our own pid, so a datagram we send is
    # attributed to it by SCM_CREDENTIALS, not by anything in the payload, nor
    # by the socket: sent to slot 1's socket, it still counts for slot 0
    pool = pools(workers=2, first_pid=os.getpid())
    assert pool.pid(0) == os.getpid()
    reporter = client.Reporter(pool.report_path(1))
    assert reporter.busy()

    def busy() -> bool:
        pool.step()
        return pool.state(0) is WorkerState.BUSY
    wait_for(busy, 10, message="the busy report to arrive")
    assert pool.state(1) is WorkerState.STARTING
    assert reporter.send("not a report")
    wait_for(lambda: pool.step() or pool.arb.malformed_reports == 1, 10, message="malformed count")
    reporter.close()


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
    pool = pools(workers=1, crashloop_threshold=2, crashloop_interval=10.0, backoff_max=0.0)
    for _ in range(3):
        pool.fake.exit(pool.pid(0), code=1)
        pool.step()
        if pool.arb.slots[0].current is None:
            break
    snap = pool.arb.snapshot()
    assert snap.crash_loop and snap.state is PoolState.CRASH_LOOP and not snap.healthy
    assert pool.arb.slots[0].current is None  # backoff-max 0, yet no busy spin
    pool.advance(0.99)
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


# --- stopping ----------------------------------------------------------------

def test_drain_waits_the_delay_then_stop_signal_then_sigkill_after_the_timeout(pools):
    pool = pools(drain_delay=2.0, graceful_timeout=5.0, stop_signal=int(signal.SIGQUIT))
    a, b = pool.pid(0), pool.pid(1)
    assert pool.run(commands.Drain()).result(0)["draining"]
    snap = pool.arb.snapshot()
    assert snap.draining and not snap.ready and snap.state is PoolState.DRAINING
    assert pool.fake.signals == []
    pool.advance(2.0)
    assert pool.fake.signals == [(a, signal.SIGQUIT), (b, signal.SIGQUIT)]
    assert all(w.state is WorkerState.STOPPING for w in pool.arb.workers.values())
    pool.fake.exit(a, sig=signal.SIGQUIT)
    pool.advance(4.9)
    assert pool.arb.exit_code is None
    pool.advance(0.1)
    assert (b, signal.SIGKILL) in pool.fake.signals
    pool.step()
    assert pool.arb.exit_code == 1
    assert len(pool.fake.spawned) == 2  # nothing respawned while draining


def test_drain_exits_0_when_every_worker_stops_in_time(pools):
    pool = pools()
    pool.run(commands.Drain())
    for slot in (0, 1):
        pool.fake.exit(pool.pid(slot), code=0)
    pool.step()
    assert pool.arb.exit_code == 0


def test_a_second_term_turns_the_drain_into_a_fast_stop(pools):
    pool = pools(graceful_timeout=60.0)
    pool.arb._signals.append(signal.SIGTERM)
    pool.step()
    assert pool.arb.draining and not pool.arb.stopping
    pool.arb._signals.append(signal.SIGTERM)
    pool.step()
    assert pool.arb.stopping
    assert sorted(sig for _pid, sig in pool.fake.signals) == [signal.SIGKILL] * 2 + [signal.SIGTERM] * 2
    pool.step()
    assert pool.arb.exit_code == 1


def test_fast_stop_kills_every_worker_at_once(pools):
    pool = pools()
    assert pool.run(commands.FastStop()).result(0) == {"stopping": True}
    assert {sig for _pid, sig in pool.fake.signals} == {signal.SIGKILL}
    pool.step()
    assert pool.arb.exit_code == 1 and pool.arb.snapshot().state is PoolState.STOPPING


def test_commands_other_than_fast_stop_are_refused_while_draining(pools):
    pool = pools()
    pool.run(commands.Drain())
    with pytest.raises(RuntimeError, match="draining"):
        pool.run(commands.Scale(delta=1)).result(0)


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


# --- snapshot and extensions -------------------------------------------------

def test_snapshot_readiness_follows_min_ready(pools):
    pool = pools(workers=3, min_ready=2)
    assert not pool.arb.snapshot().ready  # still starting: no traffic yet (as /readyz says)
    pool.advance(1.0)                     # the start-up period passed
    assert pool.arb.snapshot().ready
    pool.fake.exit(pool.pid(0), code=1)
    pool.fake.exit(pool.pid(1), code=1)
    pool.arb.crash.threshold = 0
    pool.fake.fail_spawn = OSError(1, "nope")
    pool.step()
    snap = pool.arb.snapshot()
    assert snap.running == 1 and not snap.ready and snap.healthy


class Recording(Extension):
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def attach(self, arbiter):
        self.calls.append(("attach",))

    def worker_env(self, slot):
        return {"EXTRA": f"x{slot}"}

    def on_spawn(self, slot, pid):
        self.calls.append(("spawn", slot, pid))

    def on_exit(self, slot, pid, description):
        self.calls.append(("exit", slot, pid, description))

    def on_report(self, slot, pid, report):
        self.calls.append(("report", slot, report.kind))

    def tick(self, now):
        self.calls.append(("tick",))

    def close(self):
        self.calls.append(("close",))


class Broken(Extension):
    def on_spawn(self, slot, pid):
        raise RuntimeError("boom")

    def tick(self, now):
        raise RuntimeError("boom")


def test_extension_hooks_are_called_and_a_failing_extension_is_contained(pools):
    ext = Recording()
    pool = pools(workers=1, extensions=[Broken(), ext])
    pid = pool.pid(0)
    assert pool.fake.spawned[0][2]["EXTRA"] == "x0"
    pool.arb.handle_report(pid, b"busy")
    pool.fake.exit(pid, code=4)
    pool.advance(1.0)
    pool.close()
    kinds = [c[0] for c in ext.calls]
    assert kinds[0] == "attach" and kinds[-1] == "close"
    assert ("spawn", 0, pid) in ext.calls and ("exit", 0, pid, "exit 4") in ext.calls
    assert ("report", 0, "busy") in ext.calls and ("tick",) in ext.calls
    assert "extension hook failed" in pool.log()
    assert pool.arb.submit(commands.Reload()).exception(0)  # refused after close


def test_add_reader_callbacks_run_in_the_loop(pools):
    pool = pools(workers=0)
    r, w = os.pipe()
    seen = []
    pool.arb.add_reader(r, lambda: seen.append(os.read(r, 10)))
    os.write(w, b"ping")
    wait_for(lambda: pool.step() or seen, 30, message="callback")
    assert seen == [b"ping"]
    pool.arb.remove_reader(r)
    os.close(r)
    os.close(w)


def test_drain_waits_for_a_stopped_workers_group_and_sigkills_it_at_the_deadline(pools):
    pool = pools(workers=1, graceful_timeout=3.0)
    leader = pool.pid(0)
    pool.fake.lingering.add(leader)  # a grandchild in the worker's group ignores TERM
    pool.run(commands.Drain())
    pool.fake.exit(leader, sig=signal.SIGTERM)
    pool.advance(1.0)
    assert pool.arb.lingering and pool.arb.exit_code is None
    pool.advance(2.0)
    assert pool.fake.signals[-1] == (leader, signal.SIGKILL)
    pool.step()
    assert not pool.arb.lingering and pool.arb.exit_code == 1


def test_a_crashed_workers_leftover_group_gets_the_stop_signal_then_sigkill(pools):
    pool = pools(workers=1, graceful_timeout=3.0)
    leader = pool.pid(0)
    pool.fake.lingering.add(leader)  # `sleep 300 &` of a shell worker that then crashed
    pool.fake.exit(leader, code=1)
    pool.step()
    assert (leader, signal.SIGTERM) in pool.fake.signals and leader in pool.arb.lingering
    assert pool.pid(0) != leader  # the slot is refilled meanwhile, as after any crash
    pool.advance(3.1)
    assert pool.fake.signals[-1] == (leader, signal.SIGKILL)
    pool.step()
    assert leader not in pool.arb.lingering


def test_a_group_that_empties_in_time_exits_0(pools):
    pool = pools(workers=1, graceful_timeout=3.0)
    leader = pool.pid(0)
    pool.fake.lingering.add(leader)
    pool.run(commands.Drain())
    pool.fake.exit(leader, code=0)
    pool.advance(1.0)
    assert pool.arb.exit_code is None
    pool.fake.lingering.discard(leader)
    pool.advance(0.5)
    assert pool.arb.exit_code == 0 and (leader, signal.SIGKILL) not in pool.fake.signals


def test_an_internal_error_kills_the_workers_and_exits_1(pools, monkeypatch):
    pool = pools(workers=2)
    pids = [pool.pid(0), pool.pid(1)]

    def broken(status):
        raise KeyError("bug")
    monkeypatch.setattr(pool.arb, "_on_exit", broken)
    monkeypatch.setattr(pool.arb, "start", lambda: None)  # already started by the fixture
    pool.fake.exit(pids[0], code=1)
    assert pool.arb.run() == 1
    assert (pids[1], signal.SIGKILL) in pool.fake.signals
    assert "internal error" in pool.log() and "KeyError" in pool.log()


CHILD_REPORTS = """
import os, socket, sys
if os.fork() == 0:  # a child of the worker, in the worker's process group
    socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b"busy", sys.argv[1])
    sys.stdin.read()  # stay alive until the test has looked
    os._exit(0)
os.wait()
"""


def test_a_report_from_a_workers_child_is_attributed_to_the_worker_by_process_group(pools):

    # the "worker" is a real process group leader; the fake pool gets its pid
    leader = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                              stdin=subprocess.PIPE, process_group=0)
    child = None
    try:
        pool = pools(workers=2, first_pid=leader.pid)
        # start the reporting child inside the leader's group; it sends to slot 1's
        # socket, so only its process group can say it is slot 0's
        child = subprocess.Popen([sys.executable, "-c", CHILD_REPORTS, pool.report_path(1)],
                                 stdin=subprocess.PIPE, process_group=leader.pid)

        def busy() -> bool:
            pool.step()
            return pool.state(0) is WorkerState.BUSY
        # a Python start-up and a fork first: seconds on a loaded machine
        wait_for(busy, 30, message="the child's busy report")
    finally:
        if child is not None:  # closing its stdin ends it (and its forked child), pass or fail
            child.communicate(b"", timeout=30)
        leader.communicate(b"", timeout=30)


SEND_AND_EXIT = "import socket, sys; socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(sys.argv[2].encode(), sys.argv[1])"


def sockets(pool) -> list[str]:
    return sorted(f for f in os.listdir(pool.arb.reports.directory) if f.endswith(".sock"))


def send_and_exit(path: str, line: str) -> None:
    """A sender that is gone, and reaped, before podsup reads its datagram."""
    subprocess.run([sys.executable, "-c", SEND_AND_EXIT, path, line], check=True, timeout=30)


def test_a_report_from_a_sender_already_gone_counts_for_the_worker_of_its_socket(pools):
    # a shell worker's `socat` has exited (and been reaped) before podsup reads its
    # datagram: the kernel names a pid that no longer exists, the socket names the worker
    pool = pools(workers=2, first_pid=4_000_000)
    for line in ("busy", "done 0.5"):
        send_and_exit(pool.report_path(1), line)
    wait_for(lambda: pool.step() or pool.arb.slots[1].current.requests == 1, 10,
             message="both reports placed in slot 1")
    assert pool.state(1) is WorkerState.IDLE
    assert pool.state(0) is WorkerState.STARTING and pool.arb.slots[0].current.requests == 0


def test_a_retiring_workers_late_reports_never_count_for_its_successor(pools):
    # reload: the old worker finishes its last jobs (from short-lived senders)
    # while its successor, in the same slot, has not reported anything yet
    pool = pools(workers=1, first_pid=4_000_000)
    old = pool.arb.slots[0].current
    old_path = old.report.path
    pool.run(commands.Reload())
    new = pool.arb.slots[0].current
    assert new is not old and old.retiring and new.report.path != old_path
    for _ in range(3):
        send_and_exit(old_path, "done 0.1")
    wait_for(lambda: pool.step() or old.requests == 3, 10, message="the old worker's 3 done reports")
    assert new.requests == 0 and new.state is WorkerState.STARTING  # not brought up by its predecessor


def test_a_workers_socket_lives_as_long_as_the_worker(pools):
    pool = pools(workers=2)
    leaving = pool.arb.slots[1].current
    path = leaving.report.path
    pool.run(commands.Scale(absolute=1))
    assert os.path.exists(path)  # the retiring worker may still report while it stops
    pool.arb.handle_report(None, b"done 0.1", leaving)
    assert leaving.requests == 1
    pool.fake.exit(leaving.pid, code=0)
    pool.step()
    assert not os.path.exists(path) and leaving.report is None
    pool.run(commands.Scale(absolute=2))
    assert os.path.exists(pool.report_path(1)) and pool.report_path(1) != path  # a new worker: a new socket
    pool.close()
    assert not os.path.exists(pool.arb.reports.directory)


def test_a_slot_scaled_away_while_waiting_for_its_respawn_leaves_no_socket(pools):
    pool = pools(workers=2, backoff_max=30.0)
    for _ in range(2):  # the first respawn is immediate, the second waits
        pool.fake.exit(pool.pid(1), code=1)
        pool.step()
    assert pool.arb.slots[1].current is None and pool.arb.slots[1].respawn_at is not None
    pool.run(commands.Scale(absolute=1))
    assert sockets(pool) == [os.path.basename(pool.report_path(0))]


def test_a_spawn_that_runs_out_of_descriptors_is_a_failed_start_not_a_crash_of_podsup(pools, monkeypatch):
    pool = pools(workers=1)
    real_pipe = os.pipe
    calls = []

    def pipe():  # each new worker's first pipe opens, its second finds the table full
        calls.append(1)
        if len(calls) % 2 == 0:
            raise OSError(errno.EMFILE, "Too many open files")
        return real_pipe()
    monkeypatch.setattr(os, "pipe", pipe)
    before = set(os.listdir("/proc/self/fd"))
    result = pool.run(commands.Scale(absolute=2)).result(0)
    assert result["desired"] == 2 and pool.arb.slots[1].current is None
    assert "cannot start worker" in pool.log() and "Too many open files" in pool.log()
    assert pool.arb.slots[1].respawn_at is not None  # retried with backoff, like a failed exec
    assert set(os.listdir("/proc/self/fd")) <= before  # the first pipe and the socket were closed
    assert sockets(pool) == [os.path.basename(pool.report_path(0))]
    monkeypatch.setattr(os, "pipe", real_pipe)
    pool.advance(60)
    assert pool.arb.slots[1].current is not None


def test_scale_beyond_what_the_open_files_limit_fits_is_refused(pools):
    pool = pools(workers=2)
    pool.fake.capacity = (3, 137)
    with pytest.raises(ValueError, match=r"at most 3 here \(got 4\): the open-files limit \(137\)"):
        pool.run(commands.Scale(absolute=4)).result(0)
    assert pool.arb.desired == 2
    assert pool.run(commands.Scale(absolute=3)).result(0)["desired"] == 3
    pool.arb._dispatch_signal(signal.SIGTTIN)
    assert pool.arb.desired == 3 and "SIGTTIN ignored: at the maximum" in pool.log()
    pool.fake.capacity = (1, 137)
    assert pool.run(commands.Scale(absolute=2)).result(0)["desired"] == 2  # going down is always allowed


def test_job_mode_reload_goes_on_when_a_new_worker_is_done_and_stops_its_predecessor(pools):
    pool = pools(workers=2, normal_exit_codes=frozenset({0}))
    old0, old1 = pool.pid(0), pool.pid(1)
    pool.run(commands.Reload())
    new0 = pool.pid(0)
    pool.fake.exit(new0, code=0)  # the new slot-0 worker did its job at once
    pool.step()
    assert pool.arb.slots[0].done
    assert pool.arb.workers[old0].state is WorkerState.STOPPING  # no successor left to wait for
    assert pool.arb.slots[1].current.pid != old1  # the reload moved on to slot 1
    assert pool.arb.workers[old1].retiring


def test_snapshot_measures_rss_with_psutil_unless_told_not_to(pools):
    pool = pools(workers=1, first_pid=os.getpid())  # the "worker" is this test process
    assert pool.arb.snapshot().workers[0].rss_bytes > 0
    assert pool.arb.snapshot(measure=False).workers[0].rss_bytes == 0


def test_a_workers_last_reports_are_read_before_its_exit_is_handled(pools):
    # the worker (this process) sends its last `done` and exits; the exit is reaped
    # before the loop's selector saw the datagram: it still counts for that worker
    recorder = Recording()
    pool = pools(workers=1, first_pid=os.getpid(), extensions=[recorder])
    me = pool.pid(0)
    reporter = client.Reporter(pool.report_path(0))
    assert reporter.done(0.25)
    reporter.close()
    pool.fake.alive.discard(me)
    pool.arb._on_exit(ExitStatus(pid=me, code=1))  # as the loop's reap does, without a select first
    reports = [c for c in recorder.calls if c[0] == "report"]
    assert reports == [("report", 0, "done")]
    exits = [i for i, c in enumerate(recorder.calls) if c[0] == "exit"]
    assert exits and recorder.calls.index(reports[0]) < exits[0]  # read while the worker was still ours


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
