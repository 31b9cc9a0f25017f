"""Rendering of ``podsup status`` (pure: plain dicts in, text out).

The input is ``PoolSnapshot.to_json()`` as it arrives over the control socket,
so the CLI needs nothing but this module and the JSON. The table follows
Workerman's ``status``: a header about the whole pool, then one row per worker.
"""
from __future__ import annotations

import json
import time
from typing import Any, Iterable

#: Columns of the worker table: (title, key in the row dict, alignment).
COLUMNS = (
    ("slot", "slot", ">"),
    ("pid", "pid", ">"),
    ("state", "state", "<"),
    ("uptime", "uptime", ">"),
    ("rss", "rss", ">"),
    ("cpu%", "cpu", ">"),
    ("requests", "requests", ">"),
    ("qps", "qps", ">"),
    ("restarts", "restarts", ">"),
    ("last exit", "last_exit", "<"),
)


def format_bytes(size: int | float | None) -> str:
    """Binary units, like ``ps``/``top``: 0B, 512K, 12.5M, 1.2G."""
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "K", "M", "G", "T"):
        if value < 1024 or unit == "T":
            if unit == "B":
                return f"{int(value)}B"
            return f"{value:.1f}{unit}" if value < 100 else f"{value:.0f}{unit}"
        value /= 1024
    raise AssertionError("unreachable")


def format_duration(seconds: float | None) -> str:
    """Compact uptime: 45s, 12m03s, 5h02m, 3d04h."""
    if seconds is None:
        return "-"
    total = int(max(0, seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def format_exits(exits: dict[str, int]) -> str:
    """``exit 1: 3, signal SIGKILL: 1`` sorted by count, or ``none``."""
    if not exits:
        return "none"
    items = sorted(exits.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{name}: {count}" for name, count in items)


def worker_row(worker: dict[str, Any]) -> dict[str, str]:
    """The printable cells of one worker (a slot waiting for respawn shows dashes)."""
    has_process = worker.get("pid") is not None
    return {
        "slot": str(worker.get("id", "?")),
        "pid": str(worker["pid"]) if has_process else "-",
        "state": worker.get("state") or "down",
        "uptime": format_duration(worker.get("uptime")) if has_process else "-",
        "rss": format_bytes(worker.get("rss_bytes")) if has_process else "-",
        "cpu": f"{float(worker.get('cpu_percent') or 0):.1f}" if has_process else "-",
        "requests": str(worker.get("requests", 0)),
        "qps": f"{float(worker.get('qps') or 0):.1f}",
        "restarts": str(worker.get("restarts", 0)),
        "last_exit": worker.get("last_exit") or "-",
    }


def _table(rows: Iterable[dict[str, str]]) -> list[str]:
    rows = list(rows)
    widths = {key: max([len(title)] + [len(r[key]) for r in rows]) for title, key, _ in COLUMNS}
    def line(cells: dict[str, str]) -> str:
        return "  ".join(f"{cells[key]:{align}{widths[key]}}" for _, key, align in COLUMNS).rstrip()
    header = line({key: title for title, key, _ in COLUMNS})
    return [header] + [line(r) for r in rows]


def render_table(status: dict[str, Any]) -> str:
    """The whole ``podsup status`` screen as text."""
    started = status.get("started_at")
    start_text = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(started)) if started else "-"
    load = status.get("loadavg") or (0.0, 0.0, 0.0)
    queues = status.get("queues") or {}
    header = [
        f"podsup {status.get('version', '?')}    state: {status.get('state', '?')}",
        f"start time: {start_text}    uptime: {format_duration(status.get('uptime'))}",
        f"load average: {', '.join(f'{x:.2f}' for x in load)}",
        f"workers: {status.get('running', 0)} running / {status.get('desired', 0)} desired"
        + (f" (dynamic {status.get('min_workers')}..{status.get('max_workers')})" if status.get("dynamic") else "")
        + f"    ready: {'yes' if status.get('ready') else 'no'}"
        f"    healthy: {'yes' if status.get('healthy') else 'no'}",
        f"exits: {format_exits(status.get('exits') or {})}",
    ]
    if status.get("crash_loop"):
        header.append(f"crash loop: {format_duration(status.get('crash_loop_seconds'))} (not ready; "
                      + ("liveness fails: past --crashloop-restart-after)" if status.get("crash_loop_fatal")
                         else "still live until --crashloop-restart-after)"))
    restarts = status.get("restarts") or {}
    if restarts:
        header.append(f"restarts: {format_exits(restarts)}")
    if status.get("lingering"):
        header.append(f"finishing: {status['lingering']} process group(s) of stopped workers still running")
    if queues:
        header.append("queues: " + ", ".join(f"{k}={v:g}" for k, v in sorted(queues.items())))
    rows = [worker_row(w) for w in sorted(status.get("workers") or [], key=lambda w: w.get("id", 0))]
    body = _table(rows)
    rule = "-" * max(len(line) for line in header + body)
    return "\n".join([rule, *header, rule, *body, rule]) + "\n"


def render_json(status: dict[str, Any]) -> str:
    """One JSON object per call (``--json``; with ``--watch`` one per line)."""
    return json.dumps(status, sort_keys=True, separators=(",", ":")) + "\n"
