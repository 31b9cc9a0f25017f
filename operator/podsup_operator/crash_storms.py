"""Crash storms across a pool (pure): the ``WorkersCrashLooping`` condition.

Each pod's podsup knows when its workers crash faster than
``--crashloop-threshold`` allows (a *crash storm*): its ``/readyz`` fails at
once, its ``/healthz`` once the storm has lasted ``--crashloop-restart-after``,
and its ``/metrics`` say so (``podsup_crash_loop``, ``podsup_crash_loop_seconds``,
``podsup_crash_loop_unhealthy``). Such a pod is not Ready, so the poller reads
the Running pods that are not Ready too, and this module turns what it read
into one pool-wide condition — which pods, since when, whether the kubelet is
restarting them — written by the poller only when it changes.

Why the pieces:

- *since* is taken once per pod and storm (the scrape's wall clock minus
  ``podsup_crash_loop_seconds``) and remembered, so the message does not
  change at every poll (a changed message is a status write).
- A pod whose container sits in the kubelet's ``CrashLoopBackOff`` (podsup
  restarted after liveness failed, or podsup itself failing) cannot be
  scraped, but is crash-looping all the same: counted from the pod status.
- A pod in a storm whose ``/metrics`` cannot be read now stays counted: an
  unknown is no recovery.
- A pod leaves only after :data:`CALM_HOLD` seconds of reporting no storm: a
  pod restarted by the kubelet starts calm and storms again within about a
  minute, and the condition (and its Events) should not flap with it.
"""
from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Iterable

from podsup import names

from .conditions import FALSE, TRUE
from .metrics_api.sources.figures import PodFigures

CONDITION_TYPE = "WorkersCrashLooping"
REASON_STORM, REASON_CALM = "CrashStorm", "NoCrashStorm"
EVENT_STARTED, EVENT_ENDED = "WorkersCrashLooping", "WorkersCrashLoopEnded"
#: Seconds a pod must report no storm before it no longer counts.
CALM_HOLD = 120.0
#: Pods named in the message (the count covers all of them).
MAX_NAMED = 5
CALM_MESSAGE = "no pod's podsup is in a crash storm"


@dataclass(frozen=True)
class PodReading:
    """One pod at one poll. ``storm`` None: its podsup could not be read."""
    name: str
    storm: bool | None
    seconds: float = 0.0
    liveness_failing: bool = False
    #: the kubelet's CrashLoopBackOff on podsup's container
    backoff: bool = False


@dataclass
class Storm:
    since: str  #: RFC 3339, when the pod's storm began
    liveness_failing: bool = False
    backoff: bool = False
    calm_since: float | None = None  #: monotonic, first poll that read no storm


def rfc3339(wall: float) -> str:
    return datetime.datetime.fromtimestamp(wall, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _podsup_container(pod: dict) -> str | None:
    """The container with podsup's metrics port: podsup's own."""
    for container in (pod.get("spec") or {}).get("containers") or ():
        if any(port.get("name") == names.METRICS_PORT_NAME for port in container.get("ports") or ()):
            return container.get("name")
    return None


def backoff(pod: dict) -> bool:
    """Is the pod's podsup container waiting in the kubelet's CrashLoopBackOff?"""
    container = _podsup_container(pod)
    for cs in (pod.get("status") or {}).get("containerStatuses") or ():
        if cs.get("name") == container and ((cs.get("state") or {}).get("waiting") or {}).get("reason") \
                == "CrashLoopBackOff":
            return True
    return False


def readings(pods: Iterable[dict], figures: dict[str, PodFigures | None]) -> list[PodReading]:
    """One reading per pod not being deleted, from the pod list and the
    figures of each pod's scrape (None or absent: not read)."""
    out = []
    for pod in pods:
        meta = pod.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            continue  # going away: its storm ends with it
        f = figures.get(meta.get("name", ""))
        out.append(PodReading(meta.get("name", ""), None if f is None else f.crash_loop,
                              f.crash_loop_seconds if f else 0.0, bool(f and f.crash_loop_unhealthy), backoff(pod)))
    return out


class CrashWatch:
    """The pool's crash-looping pods, carried from poll to poll."""

    def __init__(self, hold: float = CALM_HOLD):
        self.hold = hold
        self.storms: dict[str, Storm] = {}
        #: any pod read (or seen in backoff) since the watch began: before
        #: that the pool's state is unknown and no condition is written
        self.known = False

    def observe(self, readings: Iterable[PodReading], mono: float, wall: float) -> dict[str, Storm]:
        readings = list(readings)
        names = {r.name for r in readings}
        self.storms = {pod: s for pod, s in self.storms.items() if pod in names}  # gone pods
        if not readings:
            self.known = True  # no pods: certainly no storm
        for r in readings:
            old = self.storms.get(r.name)
            if r.backoff or r.storm:
                self.known = True
                since = old.since if old else rfc3339(wall - (r.seconds if r.storm else 0.0))
                self.storms[r.name] = Storm(since, r.liveness_failing if r.storm else bool(old and old.liveness_failing),
                                            r.backoff)
            elif r.storm is False:
                self.known = True
                if old is not None:
                    if old.calm_since is None:
                        old.calm_since = mono
                    if mono - old.calm_since >= self.hold:
                        del self.storms[r.name]
            # r.storm None (unread): as it was
        return self.storms

    def condition(self) -> tuple[str, str, str] | None:
        """(status, reason, message) of ``WorkersCrashLooping``; None: unknown (leave it)."""
        if self.storms:
            return TRUE, REASON_STORM, message(self.storms)
        if not self.known:
            return None
        return FALSE, REASON_CALM, CALM_MESSAGE


def message(storms: dict[str, Storm]) -> str:
    """Which pods, since when, what happens to them — stable while nothing changes."""
    parts = []
    for pod, s in sorted(storms.items(), key=lambda kv: (kv[1].since, kv[0]))[:MAX_NAMED]:
        what = ["not ready"]
        if s.liveness_failing:
            what.append("liveness failing: the kubelet restarts it")
        if s.backoff:
            what.append("in CrashLoopBackOff")
        parts.append(f"{pod} since {s.since} ({', '.join(what)})")
    more = len(storms) - MAX_NAMED
    listed = "; ".join(parts) + (f"; and {more} more" if more > 0 else "")
    n = len(storms)
    return (f"{n} pod{'s' if n != 1 else ''} in a crash storm (workers exit faster than "
            f"--crashloop-threshold allows): {listed}")
