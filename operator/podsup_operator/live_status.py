"""The pool's live figures in its status (pure): ``status.live``.

From the scrape of the pool's ready pods (:mod:`.metrics_api.sources.figures`)
the poller builds one object — workers ``{desired, running, busy, idle}``
summed over the pods, ``requestsPerSecond`` (sum), ``busyRatio`` (busy ÷
running), ``queueDepth`` (what the pods' podsup report; they probe the same
queue, so the largest, not the sum), ``restarts`` in the last 10 minutes and
``crashLoopingPods`` (pods in a crash storm, ready or not) —
shown by ``kubectl get wp`` (BUSY, RPS) and ``kubectl describe``.

A status write is an update every WorkerPool watcher receives, so the object
is written only when a figure moved beyond a small hysteresis (any count, the
rate by more than max(0.5/s, 10 %), the ratio by more than 0.05), and at most
every :data:`WRITE_INTERVAL` seconds per pool: a quiet pool is never written.
The figures live under their own key so the reconcile (which owns the rest of
the status) and the poller never overwrite each other's fields.
"""
from __future__ import annotations

from collections import deque
from typing import Iterable

from .metrics_api.sources.figures import PodFigures

WRITE_INTERVAL = 10.0
RESTART_WINDOW = 600.0
RPS_ABSOLUTE, RPS_RELATIVE = 0.5, 0.10
BUSY_RATIO_TOLERANCE = 0.05


def aggregate(figures: Iterable[PodFigures], restarts: int, crash_looping: int = 0) -> dict:
    """The ``status.live`` object of one scrape of the pool's pods (and the
    count of its pods in a crash storm, ready or not: :mod:`.crash_storms`)."""
    figures = list(figures)
    running = sum(f.running for f in figures)
    busy = sum(f.busy for f in figures)
    depths = [f.queue_depth for f in figures if f.queue_depth is not None]
    live = {
        "pods": len(figures),
        "workers": {"desired": sum(f.desired for f in figures), "running": running, "busy": busy,
                    "idle": sum(f.idle for f in figures)},
        "requestsPerSecond": round(sum(f.requests_per_second for f in figures), 2),
        "busyRatio": round(busy / running, 3) if running else 0.0,
        "restarts": int(restarts),
        "crashLoopingPods": int(crash_looping),
    }
    if depths:
        live["queueDepth"] = int(max(depths))
    return live


def changed(old: dict | None, new: dict) -> bool:
    """True if ``new`` differs from the written ``old`` beyond the hysteresis."""
    if not old:
        return True
    for key in ("pods", "restarts", "queueDepth", "workers", "crashLoopingPods"):
        if old.get(key) != new.get(key):
            return True
    old_rps, new_rps = float(old.get("requestsPerSecond") or 0), float(new.get("requestsPerSecond") or 0)
    if abs(new_rps - old_rps) > max(RPS_ABSOLUTE, RPS_RELATIVE * old_rps):
        return True
    return abs(float(new.get("busyRatio") or 0) - float(old.get("busyRatio") or 0)) > BUSY_RATIO_TOLERANCE


class RestartWindow:
    """Worker restarts of the pool in the last :data:`RESTART_WINDOW` seconds,
    from each pod's cumulative ``podsup_worker_restarts_total``: the growth of
    each pod's counter since its newest sample at least that old (or since
    the pod was first seen). A counter that went down (podsup restarted)
    counts from 0. Pods no longer scraped are forgotten."""

    def __init__(self, window: float = RESTART_WINDOW):
        self.window = window
        self._samples: dict[str, deque[tuple[float, int]]] = {}

    def observe(self, now: float, totals: dict[str, int]) -> int:
        for pod in list(self._samples):
            if pod not in totals:
                del self._samples[pod]
        count = 0
        for pod, total in totals.items():
            samples = self._samples.setdefault(pod, deque())
            if samples and total < samples[-1][1]:
                samples.clear()
                samples.append((now, 0))  # reset: everything it reports is new
            samples.append((now, total))
            while len(samples) > 1 and samples[1][0] <= now - self.window:
                samples.popleft()  # keep one sample at or before the window's start
            count += total - samples[0][1]
        return count


class Throttle:
    """At most one live write per pool per :data:`WRITE_INTERVAL`, and only on change."""

    def __init__(self, interval: float = WRITE_INTERVAL):
        self.interval = interval
        self.last_write: float | None = None

    def due(self, written: dict | None, new: dict | None, now: float) -> dict | None:
        if new is None or not changed(written, new):
            return None
        if self.last_write is not None and now - self.last_write < self.interval:
            return None
        return new

    def wrote(self, now: float) -> None:
        self.last_write = now
