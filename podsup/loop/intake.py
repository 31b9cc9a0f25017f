"""Report intake: a worker's datagrams (``PODSUP_REPORT``) into the worker table.

Owns the per-worker report sockets' reading and closing, the pool's
worker-reported queue depths and the count of malformed reports. A report
moves a worker between idle and busy (through the loop's one
``_transition``), counts a finished request, refreshes a heartbeat, and is
then offered to every plug-in's ``on_report``. Loop thread only.

Reports are read in batches. The report sockets sit in a selector of their
own, itself one descriptor of the loop's: when it is readable the loop reads
every ready socket until EAGAIN, then stops watching them for a pause of at
most :data:`REPORT_BATCH` seconds. A pool sending thousands of datagrams a
second then costs the loop one wake-up per batch instead of one per datagram
(issue 13's profile: the per-wake-up work, not the parsing, was most of the
intake's CPU). The kernel queues only ~11 datagrams per socket
(net.unix.max_dgram_qlen + 1) before a sender's ``sendto`` fails, so the
pause is sized by :func:`batch_pause` from the fastest socket's last batch:
it may fill a quarter of its queue meanwhile, and a worker sending fast is
read at once, as before. Only reports wait; signals, commands, worker output
and exits wake the loop as before, and a worker's last reports are still read
before its exit is handled.
"""
from __future__ import annotations

import os
import selectors
import time
from typing import Any

from podsup.core.plugin import Extension
from podsup.core.protocol import MalformedReport, parse_report
from podsup.core.states import WorkerState
from podsup.host.reports import datagram_queue_limit
from podsup.loop.state import LoopState
from podsup.loop.table import Worker

#: Distinct queue names workers may report (each is one podsup_queue_depth series).
MAX_REPORTED_QUEUES = 64
#: A worker-reported queue depth expires this long after its last report.
QUEUE_REPORT_TTL = 60.0
#: The longest pause (seconds) of the report sockets after a batch was read.
REPORT_BATCH = 0.025


def batch_pause(most: int, since: float, limit: int, longest: float = REPORT_BATCH) -> float:
    """Seconds the report sockets may go unread after a batch in which the
    fastest socket gave ``most`` datagrams, ``since`` seconds after the batch
    before: at that rate it fills at most a quarter of its kernel queue
    (``limit`` datagrams) meanwhile. 0 (read at once) when it already came
    near half of it."""
    if most * 2 >= limit:
        return 0.0
    if most <= 0 or since <= 0:
        return longest
    return min(longest, limit / 4 * since / most)


class ReportIntake(LoopState):
    """Mixed into the Arbiter; the loop state it shares is declared in podsup.loop.state."""

    def _init_intake(self) -> None:
        #: queue name -> (depth, monotonic time of the report) from workers' `queue` reports
        self.queues: dict[str, tuple[float, float]] = {}
        self.malformed_reports = 0
        self._queue_cap_logged = False
        #: the report sockets (data: their worker); its own descriptor is in the loop's selector
        self._report_selector = selectors.DefaultSelector()
        self._reports_watched = False
        #: time.monotonic() when the report sockets are watched again (pacing
        #: real I/O, like the selector's timeout: not the System's clock)
        self._reports_resume_at = 0.0
        self._last_batch_at = time.monotonic()
        self._queue_limit = datagram_queue_limit()

    def _watch_reports(self) -> None:
        """(Again) wake the loop when a report socket is readable."""
        if not self._reports_watched:
            self._selector.register(self._report_selector.fileno(), selectors.EVENT_READ, self._read_ready_reports)
            self._reports_watched = True

    def _resume_reports(self) -> None:
        """Once the batch pause is over (loop thread, under the loop's lock):
        read what the sockets gathered meanwhile as the next batch (it pauses
        again), or, if nothing came, watch them again. One wake-up per batch."""
        if self._reports_watched or time.monotonic() < self._reports_resume_at:
            return
        ready = self._report_selector.select(0)
        if ready:
            self._read_batch(ready)
        else:
            self._watch_reports()

    def _reports_pause_left(self) -> float | None:
        """Seconds left of the batch pause (0 once over), None while the sockets are watched."""
        if self._reports_watched:
            return None
        return max(0.0, self._reports_resume_at - time.monotonic())

    def _add_report_socket(self, worker: Worker) -> None:
        assert worker.report is not None
        self._report_selector.register(worker.report.fileno(), selectors.EVENT_READ, worker)

    def _read_ready_reports(self) -> None:
        """The selector's callback: a report socket is readable."""
        self._read_batch(self._report_selector.select(0))

    def _read_batch(self, ready: list[Any]) -> None:
        """One batch: every ready report socket read until EAGAIN, then a pause
        (the sockets unwatched) unless one of them is filling fast."""
        hooks = self._report_hooks()
        most = 0
        for key, _mask in ready:
            most = max(most, self._read_reports(key.data, hooks))
        self._after_reports(hooks)
        now = time.monotonic()
        pause = batch_pause(most, now - self._last_batch_at, self._queue_limit)
        self._last_batch_at = now
        if pause <= 0:
            self._watch_reports()
            return
        if self._reports_watched:
            self._selector.unregister(self._report_selector.fileno())
            self._reports_watched = False
        self._reports_resume_at = now + pause

    def _after_reports(self, hooks: list[Any]) -> None:
        """The batch is over: plug-ins fold their per-report tallies (once per batch)."""
        for ext in hooks:
            self._hook(ext, "after_reports")

    def _report_hooks(self) -> list[Any]:
        """The extensions with an ``on_report`` of their own (the base one does nothing)."""
        return [ext for ext in self.extensions
                if getattr(type(ext), "on_report", None) is not Extension.on_report and hasattr(ext, "on_report")]

    def _close_report(self, worker: Worker) -> None:
        """A reaped worker's socket goes with it (its successor has its own)."""
        if worker.report is None:
            return
        try:
            self._report_selector.unregister(worker.report.fileno())
        except (KeyError, ValueError):
            pass
        worker.report.close()
        worker.report = None

    def _read_reports(self, worker: Worker, hooks: list[Any] | None = None) -> int:
        """Apply every datagram queued on ``worker``'s socket; returns how many."""
        if worker.report is None:
            return 0
        alone = hooks is None  # not part of a batch: it is a batch of its own
        if hooks is None:
            hooks = self._report_hooks()
        received = worker.report.receive()
        for pid, data in received:
            self.handle_report(pid, data, worker, hooks)
        if alone and received:
            self._after_reports(hooks)
        return len(received)

    def handle_report(self, pid: int | None, data: bytes, via: Worker | None = None,
                      hooks: list[Any] | None = None) -> None:
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
        self._heard(report.kind)
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
        for ext in self.extensions if hooks is None else hooks:
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
