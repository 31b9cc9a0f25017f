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
"""
from __future__ import annotations

import collections
import concurrent.futures
import ctypes
import functools
import os
import selectors
import signal
import threading
import traceback
from typing import Any, Callable, Iterable

import psutil

import podsup
from podsup import names
from podsup.host import spawn
from podsup.core import commands, policy
from podsup.core.health import HealthView, liveness, readiness
from podsup.host.cgroup import OomCounter
from podsup.config import EXIT_USAGE, MAX_WORKERS, Config
from podsup.host.output import LinePump, Log
from podsup.host.reports import MalformedReport, Report, ReportSocket, ReportSocketError, ReportSockets, RollingRate, parse_report
from podsup.core.snapshot import PoolSnapshot, WorkerSnapshot
from podsup.core.states import PoolState, WorkerState
from podsup.host.system import ExitStatus, System

PR_SET_CHILD_SUBREAPER = 36
#: Loop wake-up period when no timer is due (extensions' tick, crash window).
TICK = 1.0

#: Distinct queue names workers may report (each is one podsup_queue_depth series).
MAX_REPORTED_QUEUES = 64
#: A worker-reported queue depth expires this long after its last report.
QUEUE_REPORT_TTL = 60.0

EXIT_OK = 0
EXIT_KILLED = 1

#: Signals with a meaning; every other catchable signal whose default would
#: kill podsup is caught and logged instead (PID-1 duty: stray signals must
#: not take the pod down). USR1/USR2 are forwarded to every worker group.
HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGTTIN,
           signal.SIGTTOU, signal.SIGCHLD, signal.SIGUSR1, signal.SIGUSR2)
FORWARDED = (signal.SIGUSR1, signal.SIGUSR2)
IGNORED = tuple(s for s in (getattr(signal, n, None) for n in (
    "SIGALRM", "SIGVTALRM", "SIGPROF", "SIGPOLL", "SIGPWR", "SIGXCPU", "SIGXFSZ", "SIGSTKFLT",
    # sent by someone else, these would kill podsup and orphan its workers (a
    # real fault of podsup's own raises SIGSEGV/SIGBUS/SIGILL/SIGFPE, left as is)
    "SIGSYS", "SIGTRAP", "SIGABRT"))
    if s is not None) + tuple(range(signal.SIGRTMIN, signal.SIGRTMAX + 1))


class Worker:
    """One live worker process (the loop's private record)."""

    def __init__(self, slot: int, pid: int, now: float, wall: float) -> None:
        self.slot = slot
        self.pid = pid
        self.started = now
        self.started_wall = wall
        self.state = WorkerState.STARTING
        self.requests = 0
        self.rate = RollingRate()
        self.busy_since: float | None = None      # wall clock
        self.last_heartbeat: float | None = None  # wall clock
        self.stop_deadline: float | None = None   # monotonic: SIGKILL then
        self.killed = False     # podsup sent SIGKILL
        self.retiring = False   # replaced (reload/recycle/scale-down): stop once the successor is up
        self.report: ReportSocket | None = None  # its own PODSUP_REPORT socket


class Slot:
    """A worker id (PODSUP_WORKER_ID) and what refills it."""

    def __init__(self, slot_id: int) -> None:
        self.id = slot_id
        self.current: Worker | None = None
        self.failures = 0                    # consecutive short-lived workers (backoff)
        self.restarts = 0
        self.respawn_at: float | None = None  # monotonic
        self.restart_reason = "exit"
        self.last_exit: str | None = None
        self.done = False                    # job mode: exited with a normal code


class Arbiter:
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
        self._signals: collections.deque[int] = collections.deque()
        self._commands: collections.deque[tuple[Any, concurrent.futures.Future]] = collections.deque()
        self._calls: collections.deque[Callable[[], None]] = collections.deque()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._selector = selectors.DefaultSelector()
        self._pumps: dict[int, LinePump] = {}
        self._procs: dict[int, psutil.Process] = {}
        self._procs_lock = threading.Lock()
        self.loop_thread: threading.Thread | None = None
        self.reports: ReportSockets | None = None

        self.slots: dict[int, Slot] = {}
        self.workers: dict[int, Worker] = {}
        self.desired = config.workers
        self.draining = False
        self.stopping = False
        self.drain_signal_at: float | None = None
        self.drain_why: str | None = None
        #: SIGTERMs received: the second one makes a graceful stop fast (a
        #: drain asked for over the control socket is not a SIGTERM)
        self.sigterms = 0
        self.killed_any = False
        #: pgid -> SIGKILL deadline: groups of stopped workers whose leader has
        #: exited while other members still run (they share its grace period)
        self.lingering: dict[int, float] = {}
        self.exit_code: int | None = None
        self.closed = False
        self.crash = policy.CrashWindow(config.crashloop_threshold, config.crashloop_interval)
        self.crash_loop = False
        self.reload_queue: collections.deque[int] = collections.deque()
        self.reload_slot: int | None = None
        self.exits: collections.Counter[str] = collections.Counter()
        self.restarts: collections.Counter[str] = collections.Counter()
        self.transitions: collections.Counter[tuple[str, str]] = collections.Counter()
        #: queue name -> (depth, monotonic time of the report) from workers' `queue` reports
        self.queues: dict[str, tuple[float, float]] = {}
        self.malformed_reports = 0
        self._queue_cap_logged = False
        self.orphans_reaped = 0
        self.started = self.system.monotonic()
        self.started_wall = self.system.wall()
        self.last_loop = self.started
        self._last_tick = float("-inf")

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

    def snapshot(self, measure: bool = True) -> PoolSnapshot:
        """A consistent, immutable view of the pool (thread-safe).

        ``measure=False`` skips the psutil RSS/CPU readings (zeros instead):
        cheap enough for a health check every second.
        """
        with self._lock:
            now, wall = self.system.monotonic(), self.system.wall()
            rows = []
            for slot in sorted(self.slots.values(), key=lambda s: s.id):
                if slot.current is None:
                    rows.append((slot, None))
            for worker in self.workers.values():
                rows.append((self.slots.get(worker.slot), worker))
            raw = []
            for slot, worker in rows:
                slot_id = worker.slot if worker else slot.id
                raw.append(dict(
                    id=slot_id,
                    pid=worker.pid if worker else None,
                    state=worker.state if worker else None,
                    started_at=worker.started_wall if worker else None,
                    uptime=now - worker.started if worker else 0.0,
                    requests=worker.requests if worker else 0,
                    qps=worker.rate.rate(now, now - worker.started) if worker else 0.0,
                    restarts=slot.restarts if slot else 0,
                    last_exit=slot.last_exit if slot else None,
                    busy_since=worker.busy_since if worker else None,
                    last_heartbeat=worker.last_heartbeat if worker else None,
                ))
            raw.sort(key=lambda r: (r["id"], r["started_at"] or 0.0))
            running = sum(1 for w in self.workers.values() if w.state.running)
            # the one definition of ready/healthy, shared with /readyz and /healthz
            ready = readiness(self.health(), self.config.ready_needed(self.desired), False)[0]
            healthy = liveness(now - self.last_loop, self.crash_loop)[0] and self.exit_code is None
            pool = dict(
                version=podsup.__version__, started_at=self.started_wall, uptime=now - self.started,
                state=self.pool_state, desired=self.desired, running=running, ready=ready,
                healthy=healthy, draining=self.draining or self.stopping, crash_loop=self.crash_loop,
                exits=dict(self.exits), restarts=dict(self.restarts), queues=self._fresh_queues(now),
                malformed_reports=self.malformed_reports, lingering=len(self.lingering),
            )
        workers = []
        usage = self._usage([r["pid"] for r in raw if r["pid"]]) if measure else {}
        for r in raw:
            rss, cpu = usage.get(r["pid"], (0, 0.0))
            workers.append(WorkerSnapshot(rss_bytes=rss, cpu_percent=cpu, **r))
        try:
            load = os.getloadavg()
        except OSError:  # pragma: no cover
            load = (0.0, 0.0, 0.0)
        return PoolSnapshot(workers=tuple(workers), loadavg=load, **pool)

    def health(self) -> HealthView:
        """Read in the loop thread at each tick, and by /readyz live from an
        HTTP thread (flag reads and one copy of the worker table, no lock): a
        full ``snapshot()`` measures every worker with psutil, far too costly
        for that."""
        workers = list(self.workers.values())
        return HealthView(desired=int(self.desired),
                          up=sum(1 for w in workers if w.state in (WorkerState.IDLE, WorkerState.BUSY)),
                          draining=bool(self.draining or self.stopping),
                          crash_loop=bool(self.crash_loop),
                          exiting=self.exit_code is not None)

    @property
    def pool_state(self) -> PoolState:
        if self.stopping:
            return PoolState.STOPPING
        if self.draining:
            return PoolState.DRAINING
        if self.crash_loop:
            return PoolState.CRASH_LOOP
        return PoolState.RUNNING

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
        with self._lock:
            now = self.system.monotonic()
            self.last_loop = now
            for key, _mask in events:
                try:
                    key.data()
                except Exception as exc:  # noqa: BLE001 - an extension reader must not kill the loop
                    self.log.error("reader callback failed", error=repr(exc))
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

    def next_timeout(self) -> float:
        """Seconds until the earliest timer (at most TICK)."""
        now = self.system.monotonic()
        due = [self._last_tick + TICK]
        due += [s.respawn_at for s in self.slots.values() if s.respawn_at is not None]
        for worker in self.workers.values():
            if worker.stop_deadline is not None and not worker.killed:
                due.append(worker.stop_deadline)
            if worker.state is WorkerState.STARTING:
                due.append(worker.started + policy.STARTUP_PERIOD)
        if self.drain_signal_at is not None:
            due.append(self.drain_signal_at)
        if self.lingering:  # members' ends arrive as SIGCHLD (we reap them); poll too
            due.append(min(min(self.lingering.values()), now + 0.2))
        if self.crash_loop and self.crash.clears_at() is not None:
            due.append(self.crash.clears_at())
        return max(0.0, min(min(due) - now, TICK))

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
        self.transitions[(old.value, new.value)] += 1
        if new is WorkerState.BUSY:
            worker.busy_since = self.system.wall()
        elif old is WorkerState.BUSY:
            worker.busy_since = None
        if {old, new} != {WorkerState.IDLE, WorkerState.BUSY}:
            self.log.info(f"worker {new.value}", slot=worker.slot, pid=worker.pid,
                          previous=old.value, why=why or None)

    # ------------------------------------------------------------- spawning
    def _worker_env(self, slot: Slot, report_path: str | None = None) -> dict[str, str]:
        env = dict(os.environ)
        env[names.ENV_WORKER_ID] = str(slot.id)
        env[names.ENV_WORKERS] = str(self.desired)
        if report_path is not None:
            env[names.ENV_REPORT] = report_path
        for ext in self.extensions:
            extra = self._hook(ext, "worker_env", slot.id)
            if extra:
                env.update({str(k): str(v) for k, v in extra.items()})
        return env

    def _spawn(self, slot: Slot) -> Worker | None:
        slot.respawn_at = None
        opened: list[int] = []
        report: ReportSocket | None = None
        try:  # what the worker gets: its report socket and two pipes (EMFILE is a failed start)
            report = self.reports.open() if self.reports is not None else None
            env = self._worker_env(slot, report.path if report else None)
            for _ in range(2):
                opened.extend(os.pipe())
        except OSError as exc:
            self._cannot_start(slot, exc, opened, report)
            return None
        out_r, out_w, err_r, err_w = opened
        try:
            if self.preload is not None:
                with self.log.exclusive():
                    pid = self.system.fork_call(self.preload, env, out_w, err_w, self.keep_fds)
            else:
                pid = self.system.spawn(list(self.config.command), env, out_w, err_w)
        except OSError as exc:
            self._cannot_start(slot, exc, [out_r, err_r], report)
            return None
        finally:
            os.close(out_w)
            os.close(err_w)
        now, wall = self.system.monotonic(), self.system.wall()
        worker = Worker(slot.id, pid, now, wall)
        self.workers[pid] = worker
        slot.current = worker
        if report is not None:
            worker.report = report
            self._selector.register(report.fileno(), selectors.EVENT_READ,
                                    functools.partial(self._read_reports, worker))
        for fd, stream in ((out_r, "stdout"), (err_r, "stderr")):
            self._add_pump(fd, slot.id, pid, stream)
        self.log.info("worker started", slot=slot.id, pid=pid)
        for ext in self.extensions:
            self._hook(ext, "on_spawn", slot.id, pid)
        return worker

    def _cannot_start(self, slot: Slot, exc: OSError, fds: list[int], report: ReportSocket | None) -> None:
        """A spawn failed (EMFILE, exec error): release what was opened for the
        worker, log why, and schedule a retry with backoff like a crash."""
        for fd in fds:
            os.close(fd)
        if report is not None:
            report.close()
        program = self.config.command[0] if self.config.command else self.config.preload
        hint = None
        if isinstance(exc, FileNotFoundError) and program and os.path.exists(str(program)):
            hint = "the program exists: its #! interpreter (or a library it needs) is missing"
        self._crashed(slot, uptime=0.0, description="spawn error", reason="exit",
                      fields=dict(slot=slot.id, status="spawn error"), event="cannot start worker",
                      level="error", extra=dict(command=program, error=exc.strerror or str(exc), hint=hint))

    def _respawn(self, slot: Slot, reason: str) -> Worker | None:
        slot.restarts += 1
        self.restarts[reason] += 1
        return self._spawn(slot)

    def _add_pump(self, fd: int, slot: int, pid: int, stream: str) -> None:
        pump = LinePump(fd, lambda line: self.log.worker_line(slot, pid, stream, line))
        self._pumps[fd] = pump

        def on_readable() -> None:
            if not pump.read():
                self._close_pump(fd)
        self._selector.register(fd, selectors.EVENT_READ, on_readable)

    def _close_pump(self, fd: int) -> None:
        if self._pumps.pop(fd, None) is not None:
            try:
                self._selector.unregister(fd)
            except (KeyError, ValueError):
                pass
            os.close(fd)

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

    # -------------------------------------------------------------- exits
    def _on_exit(self, status: ExitStatus) -> None:
        known = self.workers.get(status.pid)
        if known is not None:
            # everything the worker sent is queued by the time it can be reaped:
            # read it while the worker is still ours, so its last `done` counts for it
            self._read_reports(known)
            self._close_report(known)
        worker = self.workers.pop(status.pid, None)
        if worker is None:
            self.orphans_reaped += 1
            self.log.info("reaped orphan", pid=status.pid,
                          status=policy.describe_exit(status.code, status.signal))
            return
        with self._procs_lock:
            self._procs.pop(status.pid, None)
        now = self.system.monotonic()
        uptime = now - worker.started
        oom = status.signal == signal.SIGKILL and not worker.killed and self.oom.rose()
        description = policy.describe_exit(status.code, status.signal, oom)
        self.exits[description] += 1
        slot = self.slots.get(worker.slot)
        for ext in self.extensions:
            self._hook(ext, "on_exit", worker.slot, worker.pid, description)
        if slot is not None:
            slot.last_exit = description  # a replaced (recycled, reloaded) worker's end too
            if slot.current is worker:
                slot.current = None
        requested = worker.state is WorkerState.STOPPING or worker.retiring or slot is None
        fields = dict(slot=worker.slot, pid=worker.pid, status=description, uptime=f"{uptime:.2f}s")
        if requested or self.draining or self.stopping or (slot is not None and slot.current is not None):
            self.log.info("worker stopped", **fields, killed=worker.killed or None)
            if worker.state is WorkerState.STOPPING:
                if self.system.group_alive(worker.pid):
                    deadline = now if worker.killed else (worker.stop_deadline or now)
                    self.lingering[worker.pid] = deadline
                    self.log.info("worker's process group still has members: waiting for them",
                                  slot=worker.slot, pgid=worker.pid)
            else:  # it ended by itself (during a drain, or replaced): what it left is stopped too
                self._stop_leftovers(worker, now)
            return
        self._stop_leftovers(worker, now)
        if policy.is_done(status.code, self.config.normal_exit_codes):
            slot.done = True
            self.log.info("worker done", **fields)
            return
        if oom:
            self.log.warning("worker killed by the out-of-memory killer", **fields)
        self._crashed(slot, uptime, description, policy.restart_reason(status.code, status.signal), fields)

    def _crashed(self, slot: Slot, uptime: float, description: str, reason: str,
                 fields: dict[str, Any] | None = None, event: str = "worker exited", level: str = "info",
                 extra: dict[str, Any] | None = None) -> None:
        """An unrequested end of a slot's worker: schedule its replacement."""
        now = self.system.monotonic()
        slot.last_exit = description
        self.crash.record(now)
        self._update_crash_loop(now)
        plan = policy.plan_respawn(slot.failures, uptime, self.config.backoff_max, self.crash_loop)
        slot.failures = plan.failures
        slot.restart_reason = reason
        slot.respawn_at = now + plan.delay
        if fields is not None:
            self.log.event(event, level, **fields, **(extra or {}), respawn_in=f"{plan.delay:.2f}s",
                           crash_loop=self.crash_loop or None)

    def _update_crash_loop(self, now: float) -> None:
        storm = self.crash.in_crash_loop(now)
        if storm == self.crash_loop:
            return
        self.crash_loop = storm
        if storm:
            self.log.error("crash loop: too many worker exits; unhealthy, respawns slowed",
                           exits=len(self.crash.times), within=f"{self.config.crashloop_interval:g}s",
                           threshold=self.config.crashloop_threshold)
        else:
            self.log.info("crash loop over")

    # --------------------------------------------------------------- timers
    def _advance(self, now: float) -> None:
        if self.crash_loop:
            self._update_crash_loop(now)
        self._advance_lingering(now)
        for worker in list(self.workers.values()):
            if worker.state is WorkerState.STARTING and now - worker.started >= policy.STARTUP_PERIOD:
                self._transition(worker, WorkerState.IDLE, "start-up period passed")
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
        self._advance_reload()
        if self.slots and all(s.done for s in self.slots.values()) and not self.workers and not self.lingering:
            self.log.info("all workers done (normal exit codes): exiting")
            self.exit_code = EXIT_OK

    def _stop_leftovers(self, worker: Worker, now: float) -> None:
        """A worker that crashed or finished may leave members of its process
        group behind (a shell's background jobs): they belong to that worker,
        not to its replacement — stop them like a stopped worker's group
        (stop signal now, SIGKILL after the graceful timeout)."""
        if not self.system.group_alive(worker.pid):
            return
        self.system.killpg(worker.pid, self.config.stop_signal)
        self.lingering[worker.pid] = now + self.config.graceful_timeout
        self.log.info("worker's process group outlived it: stop signal sent to the rest",
                      slot=worker.slot, pgid=worker.pid, signal=signal.Signals(self.config.stop_signal).name)

    def _advance_lingering(self, now: float) -> None:
        """SIGKILL what is left of a stopped worker's group at its deadline."""
        for pgid, deadline in list(self.lingering.items()):
            if not self.system.group_alive(pgid):
                del self.lingering[pgid]
            elif now >= deadline:
                self.log.warning("process group outlived its worker's graceful timeout: SIGKILL", pgid=pgid)
                self.lingering[pgid] = float("inf")  # wait for it to be gone
                if self.draining or self.stopping:
                    self.killed_any = True
                self.system.killpg(pgid, signal.SIGKILL)

    def _advance_reload(self) -> None:
        while True:
            if self.reload_slot is not None:
                slot = self.slots.get(self.reload_slot)
                if slot is not None and not slot.done and (
                        slot.current is None or slot.current.state is WorkerState.STARTING):
                    return  # wait: the new worker is not up yet (a job worker that is done is past it)
                self.reload_slot = None
            if not self.reload_queue:
                return
            slot = self.slots.get(self.reload_queue.popleft())
            if slot is None or slot.done:
                continue
            if slot.current is not None:
                slot.current.retiring = True
                slot.current = None
            self.reload_slot = slot.id
            self._respawn(slot, "reload")
            if not self.reload_queue:
                self.log.info("reload: last worker replaced")

    # ------------------------------------------------------------- commands
    def _execute(self, command: Any, future: concurrent.futures.Future) -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            result = self._apply(command)
        except (ValueError, RuntimeError, TypeError) as exc:
            future.set_exception(exc)
        else:
            future.set_result(result)

    def _apply(self, command: Any) -> dict[str, Any]:
        if isinstance(command, commands.FastStop):
            self._fast_stop("command")
            return {"stopping": True}
        if isinstance(command, commands.Drain) and self.draining and not self.stopping:
            # a second drain (concurrent preStop calls, SIGTERM came first): the same answer
            return {"draining": True, "already": True, "drain_delay": self.config.drain_delay,
                    "graceful_timeout": self.config.graceful_timeout}
        if self.draining or self.stopping:
            raise RuntimeError("podsup is draining: only a fast stop is accepted")
        if isinstance(command, commands.Scale):
            target = command.absolute if command.absolute is not None else self.desired + command.delta
            return self._scale(target)
        if isinstance(command, commands.Reload):
            return self._reload()
        if isinstance(command, commands.Drain):
            self._drain("command")
            return {"draining": True, "drain_delay": self.config.drain_delay,
                    "graceful_timeout": self.config.graceful_timeout}
        if isinstance(command, commands.Recycle):
            return self._recycle(command.slot, command.reason, command.kill)
        raise TypeError(f"unknown command {command!r}")

    def _scale(self, target: int) -> dict[str, Any]:
        if not isinstance(target, int) or not 0 <= target <= MAX_WORKERS:
            raise ValueError(f"workers must be an integer 0..{MAX_WORKERS} (got {target})")
        previous = self.desired
        capacity, limit = self.system.worker_capacity()
        if target > previous and target > capacity:
            raise ValueError(f"workers must be at most {capacity} here (got {target}): the open-files "
                             f"limit ({limit}) fits no more, at {spawn.FDS_PER_WORKER} descriptors a worker; "
                             "raise it (ulimit -n, or the container runtime's nofile limit)")
        self.desired = target
        if target != previous:
            self.log.info("scaling", workers=target, previous=previous)
        for slot_id in range(previous, target):
            self.slots[slot_id] = Slot(slot_id)
            self._spawn(self.slots[slot_id])
        for slot_id in range(previous - 1, target - 1, -1):
            slot = self.slots.pop(slot_id, None)
            if slot is not None and slot.current is not None:
                slot.current.retiring = True
                self._stop(slot.current)
        return {"desired": target, "previous": previous}

    def _reload(self) -> dict[str, Any]:
        # every slot again, in order; a slot being replaced now is still waited
        # for first (a HUP during a reload must not start a second new worker in it)
        self.reload_queue = collections.deque(sorted(self.slots))
        self.log.info("reload: replacing workers one at a time", workers=len(self.reload_queue),
                      waiting_for_slot=self.reload_slot)
        self._advance_reload()
        return {"reloading": len(self.slots)}

    def _recycle(self, slot_id: int, reason: str, kill: bool) -> dict[str, Any]:
        slot = self.slots.get(slot_id)
        if slot is None or slot.current is None:
            raise ValueError(f"no running worker in slot {slot_id}")
        old = slot.current
        old.retiring = True
        slot.current = None
        self.log.info("recycling worker", slot=slot_id, pid=old.pid, reason=reason, kill=kill or None)
        new = self._respawn(slot, reason)
        if kill:
            self._stop(old, kill=True)
        return {"slot": slot_id, "old_pid": old.pid, "new_pid": new.pid if new else None}

    def _drain(self, why: str) -> None:
        if self.draining or self.stopping:
            return
        self.draining = True
        self.drain_why = why
        self.reload_queue.clear()
        self.reload_slot = None
        for slot in self.slots.values():
            slot.respawn_at = None
        self.drain_signal_at = self.system.monotonic() + self.config.drain_delay
        self.log.info("graceful stop: readiness off", why=why,
                      drain_delay=f"{self.config.drain_delay:g}s",
                      graceful_timeout=f"{self.config.graceful_timeout:g}s")

    def _fast_stop(self, why: str) -> None:
        if self.stopping:
            return
        self.stopping = True
        self.drain_signal_at = None
        for slot in self.slots.values():
            slot.respawn_at = None
        self.log.info("fast stop: killing every worker", why=why, workers=len(self.workers))
        for worker in list(self.workers.values()):
            self._stop(worker, kill=True)
        for pgid in self.lingering:
            self.lingering[pgid] = self.system.monotonic()

    # -------------------------------------------------------------- signals
    def _install_signals(self) -> None:
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        for sig in HANDLED + IGNORED:
            signal.signal(sig, self.record_signal)

    def record_signal(self, signum: int, _frame: Any = None) -> None:
        """Signal handler: record only; the loop acts (the fd write is done by
        the interpreter's wakeup fd). ``podsup run`` installs it for SIGTERM
        before the loop's own handlers exist too: the first iteration acts."""
        self._signals.append(signum)

    def _dispatch_signal(self, sig: int) -> None:
        name = policy.signal_name(sig)
        if sig == signal.SIGCHLD:
            return  # the loop reaps on every iteration
        if sig == signal.SIGTERM:
            if self.stopping or self.sigterms:
                self._fast_stop("second SIGTERM")
            elif self.draining:  # preStop's `podsup drain`, then the kubelet's SIGTERM: go on draining
                self.sigterms += 1
                self.log.info("SIGTERM while draining: the graceful stop goes on", why=self.drain_why)
            else:
                self.sigterms += 1
                self._drain(name)
        elif sig in (signal.SIGINT, signal.SIGQUIT):
            self._fast_stop(name)
        elif self.draining or self.stopping:
            self.log.info("signal ignored while stopping", signal=name)
        elif sig == signal.SIGHUP:
            self._reload()
        elif sig == signal.SIGTTIN:
            try:
                self._scale(self.desired + 1)
            except ValueError as exc:
                self.log.warning("SIGTTIN ignored: at the maximum", workers=self.desired, why=str(exc))
        elif sig == signal.SIGTTOU:
            if self.desired > 0:
                self._scale(self.desired - 1)
        elif sig in FORWARDED:
            for worker in self.workers.values():
                self.system.killpg(worker.pid, sig)
            self.log.info("signal forwarded to workers", signal=name, workers=len(self.workers))
        else:
            self.log.info("signal ignored", signal=name)

    def _become_subreaper(self) -> None:
        """Adopt orphans of our workers when we are not PID 1 (tini -s)."""
        if os.getpid() == 1:
            return
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
        except (OSError, AttributeError) as exc:
            self.log.warning("cannot become child sub-reaper; orphans of workers will not be reaped",
                             error=str(exc))

    # ---------------------------------------------------------------- reports
    def _close_report(self, worker: Worker) -> None:
        """A reaped worker's socket goes with it (its successor has its own)."""
        if worker.report is None:
            return
        try:
            self._selector.unregister(worker.report.fileno())
        except (KeyError, ValueError):
            pass
        worker.report.close()
        worker.report = None

    def _read_reports(self, worker: Worker) -> None:
        if worker.report is None:
            return
        for pid, data in worker.report.receive():
            self.handle_report(pid, data, worker)

    def handle_report(self, pid: int | None, data: bytes, via: Worker | None = None) -> None:
        """Apply one datagram from ``pid`` that arrived on worker ``via``'s
        socket (loop thread only). A sender that can be looked up is placed by
        its process group; one that is gone (or in no worker's group) counts
        for the worker whose socket it used."""
        try:
            report = parse_report(data)
        except MalformedReport:
            self.malformed_reports += 1
            return
        worker = self._worker_of(pid)
        if worker is None and via is not None and self.workers.get(via.pid) is via:
            worker = via
        if worker is None:
            return
        wall, now = self.system.wall(), self.system.monotonic()
        worker.last_heartbeat = wall
        if report.kind == "busy":
            self._transition(worker, WorkerState.BUSY, "report")
        elif report.kind in ("idle", "done"):
            if report.kind == "done":
                worker.requests += 1
                worker.rate.record(now)
            self._transition(worker, WorkerState.IDLE, "report")
        elif worker.state is WorkerState.STARTING:
            self._transition(worker, WorkerState.IDLE, "first report")
        if report.kind == "queue":
            self._record_queue(report.queue, report.depth, now)
        for ext in self.extensions:
            self._hook(ext, "on_report", worker.slot, worker.pid, report)

    def _fresh_queues(self, now: float) -> dict[str, float]:
        """Worker-reported depths not older than QUEUE_REPORT_TTL (a depth
        nobody refreshes any more is gone, not a stale backlog the HPA acts on)."""
        return {name: depth for name, (depth, at) in self.queues.items() if now - at <= QUEUE_REPORT_TTL}

    def _record_queue(self, name: str, depth: float, now: float) -> None:
        if name not in self.queues and len(self.queues) >= MAX_REPORTED_QUEUES:
            self.queues = {k: v for k, v in self.queues.items() if now - v[1] <= QUEUE_REPORT_TTL}
            if len(self.queues) >= MAX_REPORTED_QUEUES:
                self.malformed_reports += 1  # one series per name: the label set stays bounded
                if not self._queue_cap_logged:
                    self._queue_cap_logged = True
                    self.log.warning("queue report ignored: too many queue names", queue=name,
                                     limit=MAX_REPORTED_QUEUES)
                return
        self.queues[name] = (depth, now)

    def _worker_of(self, pid: int | None) -> Worker | None:
        if pid is None:
            return None
        worker = self.workers.get(pid)
        if worker is None:
            try:
                worker = self.workers.get(os.getpgid(pid))
            except OSError:
                return None
        return worker

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

    @staticmethod
    def _readable(fd: int) -> bool:
        import select
        poller = select.poll()  # not select(): descriptors past 1,024 are common with big pools
        poller.register(fd, select.POLLIN)
        return any(mask & (select.POLLIN | select.POLLHUP) for _fd, mask in poller.poll(0))

    def _usage(self, pids: list[int]) -> dict[int, tuple[int, float]]:
        """RSS and CPU% of each worker and its descendants (psutil).

        One scan of the process table per call (not one per worker: psutil's
        ``children()`` rescans it every time), then a cached Process per
        member so ``cpu_percent`` compares with the previous snapshot.
        """
        kids: dict[int, list[int]] = collections.defaultdict(list)
        for proc in psutil.process_iter(["ppid"]):
            ppid = proc.info.get("ppid")
            if ppid:
                kids[ppid].append(proc.pid)
        usage = {}
        seen: set[int] = set()
        with self._procs_lock:
            for pid in pids:
                family, stack = [], [pid]
                while stack:
                    member = stack.pop()
                    family.append(member)
                    stack.extend(kids.get(member, ()))
                rss, cpu, found = 0, 0.0, False
                for member in family:
                    try:
                        proc = self._procs.get(member)
                        if proc is None:
                            proc = self._procs[member] = psutil.Process(member)
                        with proc.oneshot():
                            rss += proc.memory_info().rss
                            cpu += proc.cpu_percent(None)
                        seen.add(member)
                        found = True
                    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                        continue
                if found:
                    usage[pid] = (rss, cpu)
            for member in [m for m in self._procs if m not in seen]:
                del self._procs[member]
        return usage
