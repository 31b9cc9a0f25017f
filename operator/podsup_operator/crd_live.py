"""The schema of ``status.live`` (:mod:`.live_status` writes it), kept apart
from :mod:`.crd` to keep that module one screenful of concerns."""
from __future__ import annotations

from .schema import integer, number, obj

LIVE_STATUS = obj(
    "Live figures of the pool, summed over its ready pods from the operator's scrape of their podsup "
    "/metrics (every pool). Rewritten only when a figure moved beyond a small "
    "hysteresis, at most every 10 s.",
    {
        "pods": integer("Ready pods whose podsup was read."),
        "workers": obj("Worker processes of the ready pods.", {
            "desired": integer("Workers podsup aims for (its desired count)."),
            "running": integer("Workers starting, idle or busy."),
            "busy": integer("Workers inside a job or request."),
            "idle": integer("Workers ready for one."),
        }),
        "requestsPerSecond": number("Requests or jobs finished per second, summed (30 s window)."),
        "busyRatio": number("busy / running, 0..1."),
        "queueDepth": integer("Queue depth the pods' podsup report (absent when none does)."),
        "restarts": integer("Worker restarts in the last 10 minutes."),
        "crashLoopingPods": integer("Pods whose podsup is in a crash storm (ready or not; see the "
                                    "WorkersCrashLooping condition)."),
    })
