"""``podsup-operator status``'s table (pure): Workerman's ``status`` across a pool.

A header (pool, replicas, workers, busy, RPS, queue, state), one row per pod
(pod, node, phase/ready, workers running/desired, busy, RPS, RSS, worker
restarts, the podsup container's last exit) and a Summary row, from the pool
object, its pods and one scrape of each ready pod's podsup ``/metrics``
(parsed by :func:`~.metrics_api.sources.figures.parse_figures`, the
operator's own scrape logic). ``as_json`` is the same data for scripts.
Fetching is :mod:`.pool_fetch`'s.
"""
from __future__ import annotations

from dataclasses import dataclass

from .metrics_api.sources.figures import PodFigures


@dataclass(frozen=True)
class PodRow:
    pod: str
    node: str
    phase: str
    ready: bool
    figures: PodFigures | None = None
    error: str | None = None
    last_exit: str = ""


def last_exit(pod: dict) -> str:
    """The podsup container's last termination, as ``kubectl describe`` shows it."""
    for cs in (pod.get("status") or {}).get("containerStatuses") or ():
        term = (cs.get("lastState") or {}).get("terminated")
        if term:
            return f"{term.get('reason') or 'Exited'} ({term.get('exitCode', '?')})"
    return ""


def row(pod: dict, figures: PodFigures | None, error: str | None) -> PodRow:
    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or ())
    phase = "Terminating" if meta.get("deletionTimestamp") else status.get("phase") or "Unknown"
    return PodRow(meta.get("name", ""), (pod.get("spec") or {}).get("nodeName") or "", phase, ready,
                  figures, error, last_exit(pod))


def pool_state(pool: dict) -> str:
    conds = {c.get("type"): c for c in (pool.get("status") or {}).get("conditions") or ()}
    if (conds.get("ScaledToZero") or {}).get("status") == "True":
        return "ScaledToZero"
    if (conds.get("Degraded") or {}).get("status") == "True":
        return f"Degraded ({conds['Degraded'].get('reason', '')})"
    ready = conds.get("Ready")
    if ready is None:
        return "Unknown"
    return "Ready" if ready.get("status") == "True" else f"NotReady ({ready.get('reason', '')})"


def summary(rows: list[PodRow]) -> dict:
    read = [r.figures for r in rows if r.figures is not None]
    running, busy = sum(f.running for f in read), sum(f.busy for f in read)
    return {"pods": len(rows), "ready": sum(r.ready for r in rows), "read": len(read),
            "running": running, "desired": sum(f.desired for f in read), "busy": busy,
            "idle": sum(f.idle for f in read), "requestsPerSecond": round(sum(f.requests_per_second for f in read), 2),
            "busyRatio": round(busy / running, 3) if running else 0.0, "rssBytes": sum(f.rss_bytes for f in read),
            "restarts": sum(f.restarts for f in read)}


def as_json(pool: dict, rows: list[PodRow]) -> dict:
    meta, status = pool.get("metadata") or {}, pool.get("status") or {}
    total = summary(rows)
    return {
        "pool": meta.get("name"), "namespace": meta.get("namespace"), "state": pool_state(pool),
        "replicas": {"ready": status.get("readyReplicas", 0), "total": status.get("replicas", 0)},
        "queueDepth": status.get("queueDepth"),
        "summary": total,
        "pods": [{"pod": r.pod, "node": r.node, "phase": r.phase, "ready": r.ready, "error": r.error,
                  "lastExit": r.last_exit or None,
                  **({"workers": {"desired": r.figures.desired, "running": r.figures.running,
                                  "busy": r.figures.busy, "idle": r.figures.idle},
                      "requestsPerSecond": r.figures.requests_per_second, "rssBytes": r.figures.rss_bytes,
                      "restarts": r.figures.restarts, "workerExits": r.figures.exits}
                     if r.figures is not None else {})} for r in rows],
    }


def mib(n: float) -> str:
    return f"{n / 2 ** 20:.1f}Mi"


def _rps(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".") if x else "0"


def render(pool: dict, rows: list[PodRow]) -> str:
    data = as_json(pool, rows)
    s = data["summary"]
    queue = data["queueDepth"]
    lines = [
        f"Pool: {data['namespace']}/{data['pool']}   State: {data['state']}",
        f"Replicas: {data['replicas']['ready']}/{data['replicas']['total']} ready   "
        f"Workers: {s['running']}/{s['desired']}   Busy: {s['busy']} ({s['busyRatio'] * 100:.0f}%)   "
        f"RPS: {_rps(s['requestsPerSecond'])}   Queue: {'-' if queue is None else queue}",
        "",
    ]
    table = [("POD", "NODE", "PHASE", "WORKERS", "BUSY", "RPS", "RSS", "RESTARTS", "LAST EXIT")]
    for r in rows:
        phase = f"{r.phase}/{'ready' if r.ready else 'not ready'}"
        if r.figures is None:
            table.append((r.pod, r.node or "-", phase, "-", "-", "-", "-", "-", r.last_exit or "-"))
            continue
        f = r.figures
        table.append((r.pod, r.node or "-", phase, f"{f.running}/{f.desired}", str(f.busy),
                      _rps(f.requests_per_second), mib(f.rss_bytes), str(f.restarts), r.last_exit or "-"))
    table.append(("Summary", "", f"{s['ready']}/{s['pods']} ready", f"{s['running']}/{s['desired']}",
                  str(s["busy"]), _rps(s["requestsPerSecond"]), mib(s["rssBytes"]), str(s["restarts"]), ""))
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in table]
    errors = [f"  {r.pod}: {r.error}" for r in rows if r.error]
    if errors:
        lines += ["", "Not read:", *errors]
    return "\n".join(lines) + "\n"
