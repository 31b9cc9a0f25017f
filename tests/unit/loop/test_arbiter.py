"""podsup.loop.arbiter: the loop itself (stopping, timers, the plug-in hooks, snapshots it serves).

All against FakeSystem: no processes, no real waiting. Tests are named after
the transitions they check.
"""
from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys

import pytest

from podsup import client
from podsup.core import commands
from podsup.core.plugin import Extension
from podsup.core.states import PoolState, WorkerState
from podsup.host.system import ExitStatus
from tests.waiting import wait_for


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
    """Workers' sockets in the report directory (not the next worker's, opened ahead)."""
    spare = pool.arb.reports.spare
    ahead = os.path.basename(spare.path) if spare is not None else None
    return sorted(f for f in os.listdir(pool.arb.reports.directory) if f.endswith(".sock") and f != ahead)


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


def test_snapshot_measures_rss_unless_told_not_to(pools):
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


def test_the_arbiter_is_the_loop_handle_plugins_are_given(pools):
    """Plug-ins know the loop only as podsup.core.plugin.LoopHandle: every
    member of it must exist on the real loop."""
    from podsup.core.plugin import LoopHandle
    pool = pools()
    assert isinstance(pool.arb, LoopHandle)
    for name in ("submit", "snapshot", "health", "add_reader", "remove_reader", "log", "config"):
        assert hasattr(pool.arb, name), name

