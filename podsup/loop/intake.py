"""Report intake: a worker's datagrams (``PODSUP_REPORT``) into the worker table.

Owns the per-worker report sockets' reading and closing, the pool's
worker-reported queue depths and the count of malformed reports. A report
moves a worker between idle and busy (through the loop's one
``_transition``), counts a finished request, refreshes a heartbeat, and is
then offered to every plug-in's ``on_report``. Loop thread only.
"""
from __future__ import annotations

import os
from typing import Any

from podsup.core.protocol import MalformedReport, parse_report
from podsup.core.states import WorkerState
from podsup.host.output import Log
from podsup.host.system import System
from podsup.loop.table import Worker

#: Distinct queue names workers may report (each is one podsup_queue_depth series).
MAX_REPORTED_QUEUES = 64
#: A worker-reported queue depth expires this long after its last report.
QUEUE_REPORT_TTL = 60.0


class ReportIntake:
    """Mixed into the Arbiter; what it uses of the loop is annotated below."""

    workers: dict[int, Worker]
    extensions: list[Any]
    system: System
    log: Log
    _selector: Any

    def _init_intake(self) -> None:
        #: queue name -> (depth, monotonic time of the report) from workers' `queue` reports
        self.queues: dict[str, tuple[float, float]] = {}
        self.malformed_reports = 0
        self._queue_cap_logged = False

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
