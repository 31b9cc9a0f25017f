"""The master loop: one thread owns the worker table, forks and kills.

Like gunicorn's arbiter, signal handlers only record the signal (the
interpreter also writes it to the self-pipe registered with
``signal.set_wakeup_fd``), other threads only queue commands
(:meth:`Arbiter.submit`) and write the same pipe; the loop wakes from its
selector, then dispatches, reaps, and advances its timers (respawns, stop
deadlines, drain, rolling reload). Decisions (backoff, crash storm, job mode)
come from :mod:`podsup.core.policy`; processes and clocks from a
:class:`podsup.host.system.System`, so the loop runs against a fake in unit tests.

Worker states (:class:`podsup.core.states.WorkerState`) change only in
:meth:`Arbiter._transition`.

This module is the loop itself: the worker table, the seam plug-ins call
(submit, add_reader, remove_reader; see podsup.core.plugin.LoopHandle), one
iteration (:meth:`Arbiter.step`), stopping, and the timers. Each other
concern is a mixin in its own module of podsup.loop, over the same state:
spawning (fork a slot's worker), exits (reap, crash, backoff), intake
(worker reports), signals (what a signal means), execute (the commands),
elastic (start gate and dynamic sizing), observe (snapshot and health for
other threads).
"""
from __future__ import annotations

import collections
import concurrent.futures
import os
import selectors
import signal
import threading
import traceback
from typing import Any, Callable, Iterable

import podsup
from podsup.core import commands, policy
from podsup.core.config import EXIT_USAGE, Config
from podsup.core.states import WorkerState
from podsup.host.cgroup import OomCounter
from podsup.host.output import LinePump, Log
from podsup.host.reports import ReportSocketError, ReportSockets
from podsup.host.system import System
from podsup.loop.elastic import Elasticity
from podsup.loop.execute import CommandExecution
from podsup.loop.exits import Exits
from podsup.loop.intake import ReportIntake
from podsup.loop.observe import PoolView
from podsup.loop.signals import SignalDispatch
from podsup.loop.spawning import Spawning
from podsup.loop.table import Slot, Worker

#: Loop wake-up period when no timer is due (extensions' tick, crash window).
TICK = 1.0

EXIT_OK = 0
EXIT_KILLED = 1


class Arbiter(Spawning, Exits, ReportIntake, SignalDispatch, CommandExecution, PoolView, Elasticity):
    """The master loop (see the module docstring); ``run()`` until the pool stops."""

    def __init__(self, config: Config, extensions: Iterable[Any] = (), system: System | None = None,
                 log: Log | None = None, preload: Callable[[], object] | None = None,
                 keep_fds: frozenset[int] = frozenset(), oom: OomCounter | None = None,
                 install_signals: bool = True) -> None:
        self.config = config
        self.extensions = list(extensions)
        self.system = system or System()
        self.log = log or Log(config.log_format, background=True)
        self.preload = preload
        self.keep_fds = keep_fds
        self.oom = oom if oom is not None else OomCounter()
        self.install_signals = install_signals

        self._lock = threading.RLock()
        self._init_signals()
        self._commands: collections.deque[tuple[Any, concurrent.futures.Future]] = collections.deque()
        self._calls: collections.deque[Callable[[], None]] = collections.deque()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._selector = selectors.DefaultSelector()
        self._pumps: dict[int, LinePump] = {}
        self._env_cache: tuple[Any, dict[str, str]] | None = None
        self._init_view()
        self.loop_thread: threading.Thread | None = None
        self.reports: ReportSockets | None = None

        self.slots: dict[int, Slot] = {}
        self.workers: dict[int, Worker] = {}
        self.desired = config.workers
        self._init_elastic(config)
        self.draining = False
        self.stopping = False
        self.drain_signal_at: float | None = None
        self.drain_why: str | None = None
        self.killed_any = False
        #: pgid -> SIGKILL deadline: groups of stopped workers whose leader has
        #: exited while other members still run (they share its grace period)
        self.lingering: dict[int, float] = {}
        self.exit_code: int | None = None
        self.closed = False
        self.crash = policy.CrashWindow(self._crash_threshold(), config.crashloop_interval)
        self.crash_loop = False
        self.crash_loop_since: float | None = None  #: monotonic start of the current storm
        self.reload_queue: collections.deque[int] = collections.deque()
        self.reload_slot: int | None = None
        self.exits: collections.Counter[str] = collections.Counter()
        self.restarts: collections.Counter[str] = collections.Counter()
        self.transitions: collections.Counter[tuple[str, str]] = collections.Counter()
        self._init_intake()
        self.orphans_reaped = 0
        self.started = self.system.monotonic()
        self.started_wall = self.system.wall()
        self.last_loop = self.started
        self._last_tick = float("-inf")
        self.generation = 0

    # ------------------------------------------------------------------ seam
    def submit(self, command: commands.Command) -> concurrent.futures.Future:
        """Queue ``command`` for the loop (thread-safe) and wake it."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        if self.closed:
            future.set_exception(RuntimeError("podsup is exiting"))
            return future
        self._commands.append((command, future))
        self._wake()
        return future

    def add_reader(self, fd: int, callback: Callable[[], None]) -> None:
        """Watch ``fd`` in the loop's selector; ``callback()`` runs in the loop."""
        self._call_in_loop(lambda: self._selector.register(fd, selectors.EVENT_READ, callback))

    def remove_reader(self, fd: int) -> None:
        def remove() -> None:
            try:
                self._selector.unregister(fd)
            except (KeyError, ValueError):
                pass
        self._call_in_loop(remove)

    # ------------------------------------------------------------- the loop
    def run(self) -> int:
        """Start the pool and run until it stops; returns podsup's exit code."""
        try:
            self.start()
            while self.exit_code is None:
                self.step(self.next_timeout())
        except ReportSocketError as exc:  # nothing started yet: a one-line reason
            self.log.error(str(exc))
            self.exit_code = EXIT_USAGE
        except Exception:  # noqa: BLE001 - a bug must not leave workers orphaned
            self.log.error("internal error: killing every worker and exiting",
                           error=traceback.format_exc())
            for worker in list(self.workers.values()):
                self.system.killpg(worker.pid, signal.SIGKILL)
            self.exit_code = EXIT_KILLED
        finally:
            self.close()
        return self.exit_code if self.exit_code is not None else EXIT_KILLED

    def start(self) -> None:
        self.loop_thread = threading.current_thread()
        self.reports = ReportSockets()
        self._selector.register(self._wake_r, selectors.EVENT_READ, self._drain_wake_pipe)
        self._watch_reports()
        if self.install_signals:
            self._install_signals()
            self._become_subreaper()
        with self._lock:
            for ext in self.extensions:
                self._hook(ext, "attach", self)
            self.log.info("podsup started", version=podsup.__version__, pid=os.getpid(),
                          workers=self.desired, command=" ".join(self.config.command) or None,
                          preload=self.config.preload)
            for slot_id in range(self.desired):
                self.slots[slot_id] = Slot(slot_id)
                self._spawn(self.slots[slot_id])

    def step(self, timeout: float) -> None:
        """One iteration: wait for I/O or a timer, then act on everything due."""
        events = self._selector.select(timeout)
        with self._lock, self.log.held():  # log lines go to the writer once the iteration is done
            now = self.system.monotonic()
            self.last_loop = now
            for key, _mask in events:
                try:
                    key.data()
                except Exception as exc:  # noqa: BLE001 - an extension reader must not kill the loop
                    self.log.error("reader callback failed", error=repr(exc))
            self._resume_reports()  # the reports gathered during a batch pause
            while self._calls:
                self._calls.popleft()()
            while self._signals:
                self._dispatch_signal(self._signals.popleft())
            for status in self.system.reap():
                self._on_exit(status)
            while self._commands:
                command, future = self._commands.popleft()
                self._execute(command, future)
            self._advance(self.system.monotonic())
            if now - self._last_tick >= TICK * 0.9:
                self._last_tick = now
                for ext in self.extensions:
                    self._hook(ext, "tick", now)
            self.generation += 1

    def next_timeout(self) -> float:
        """Seconds until the earliest timer (at most TICK)."""
        now = self.system.monotonic()
        due = [self._last_tick + TICK]
        due += [s.respawn_at for s in self.slots.values() if s.respawn_at is not None]
        for worker in self.workers.values():
            if worker.stop_deadline is not None and not worker.killed:
                due.append(worker.stop_deadline)
        if self.drain_signal_at is not None:
            due.append(self.drain_signal_at)
        if self.lingering:  # members' ends arrive as SIGCHLD (we reap them); poll too
            due.append(min(min(self.lingering.values()), now + 0.2))
        if self.crash_loop and self.crash.clears_at() is not None:
            due.append(self.crash.clears_at())
        if self.crash_loop and self.crash_loop_since is not None and self.config.crashloop_restart_after > 0:
            due.append(self.crash_loop_since + self.config.crashloop_restart_after)
        due += self._elastic_due()
        wait = max(0.0, min(min(due) - now, TICK))
        paused = self._reports_pause_left()  # the report sockets' batch pause (real time)
        return wait if paused is None else min(wait, paused)

    def close(self) -> None:
        """Flush worker output, tell extensions, remove the report socket."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            for pump in list(self._pumps.values()):
                for _ in range(64):  # bounded: a leftover writer must not hold us
                    if not self._readable(pump.fd) or not pump.read():
                        break
                pump.flush()
                self._close_pump(pump.fd)
            while self._commands:
                _command, future = self._commands.popleft()
                if future.set_running_or_notify_cancel():
                    future.set_exception(RuntimeError("podsup is exiting"))
            for ext in self.extensions:
                self._hook(ext, "close")
            for worker in list(self.workers.values()):
                self._close_report(worker)
            if self.reports is not None:
                self.reports.close()
            self._report_selector.close()
            if self.install_signals:
                signal.set_wakeup_fd(-1)
            self.log.info("podsup exiting", code=self.exit_code)
            self.log.close()

    # ----------------------------------------------------- state transitions
    def _transition(self, worker: Worker, new: WorkerState, why: str = "") -> None:
        """The one place a worker's state changes (counted; logged unless it is
        the per-request idle<->busy flip)."""
        old = worker.state
        if old is new or old is WorkerState.STOPPING:
            return
        worker.state = new
        # the per-request path (two reports a job): identity tests and _value_, not
        # enum hashing or the .value descriptor (issue 13: most of a report's cost)
        self.transitions[(old._value_, new._value_)] += 1
        if new is WorkerState.BUSY:
            worker.busy_since = self.system.wall()
        elif old is WorkerState.BUSY:
            worker.busy_since = None
        worker.idle_since = self.system.monotonic() if new is WorkerState.IDLE else None
        flip = (old is WorkerState.IDLE and new is WorkerState.BUSY) or (
            old is WorkerState.BUSY and new is WorkerState.IDLE)
        if not flip:
            self.log.info(f"worker {new.value}", slot=worker.slot, pid=worker.pid,
                          previous=old.value, why=why or None)

    # ----------------------------------------------------------- stopping
    def _stop(self, worker: Worker, kill: bool = False) -> None:
        """Ask a worker's process group to stop (or SIGKILL it at once)."""
        now = self.system.monotonic()
        if kill:
            self._transition(worker, WorkerState.STOPPING, "kill")
            self._kill(worker)
            return
        if worker.state is WorkerState.STOPPING:
            return
        self._transition(worker, WorkerState.STOPPING, "stop")
        worker.stop_deadline = now + self.config.graceful_timeout
        self.system.killpg(worker.pid, self.config.stop_signal)

    def _kill(self, worker: Worker) -> None:
        if worker.killed:
            return
        worker.killed = True
        if self.draining or self.stopping:
            self.killed_any = True
        self.system.killpg(worker.pid, signal.SIGKILL)

    # --------------------------------------------------------------- timers
    def _advance(self, now: float) -> None:
        if self.crash_loop:
            self._update_crash_loop(now)
        self._advance_lingering(now)
        for worker in list(self.workers.values()):
            if worker.state is WorkerState.STARTING:
                self._gate(worker, now)
            if worker.stop_deadline is not None and now >= worker.stop_deadline and not worker.killed:
                self.log.warning("worker did not stop within the graceful timeout: SIGKILL",
                                 slot=worker.slot, pid=worker.pid,
                                 graceful_timeout=f"{self.config.graceful_timeout:g}s")
                self._kill(worker)
        if self.draining or self.stopping:
            if self.drain_signal_at is not None and now >= self.drain_signal_at:
                self.drain_signal_at = None
                self.log.info("stopping workers", signal=policy.signal_name(self.config.stop_signal),
                              workers=len(self.workers))
                for worker in list(self.workers.values()):
                    self._stop(worker)
            if self.drain_signal_at is None and not self.workers and not self.lingering:
                self.exit_code = EXIT_KILLED if self.killed_any else EXIT_OK
            return
        for worker in list(self.workers.values()):
            if worker.retiring and worker.state is not WorkerState.STOPPING:
                slot = self.slots.get(worker.slot)
                successor = slot.current if slot else None
                if slot is None or slot.done or (
                        successor is not None and successor.state is not WorkerState.STARTING):
                    self._stop(worker)  # its successor is up, or already did the slot's job
        for slot in list(self.slots.values()):
            if slot.respawn_at is not None and now >= slot.respawn_at and slot.current is None:
                self._respawn(slot, slot.restart_reason)
        self._size(now)
        self._advance_reload()
        if self.slots and all(s.done for s in self.slots.values()) and not self.workers and not self.lingering:
            self.log.info("all workers done (normal exit codes): exiting")
            self.exit_code = EXIT_OK

    # ---------------------------------------------------------------- helpers
    def _hook(self, ext: Any, name: str, *args: Any) -> Any:
        method = getattr(ext, name, None)
        if method is None:
            return None
        try:
            return method(*args)
        except Exception as exc:  # noqa: BLE001 - an extension never kills the loop
            self.log.error("extension hook failed", extension=type(ext).__name__, hook=name, error=repr(exc))
            return None

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"\0")
        except (BlockingIOError, OSError):
            pass  # the pipe is full: the loop is awake anyway

    def _drain_wake_pipe(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass

    def _call_in_loop(self, func: Callable[[], None]) -> None:
        if self.loop_thread is None or threading.current_thread() is self.loop_thread:
            func()
        else:
            self._calls.append(func)
            self._wake()


