"""Python workers' own prometheus-client metrics, merged into podsup's /metrics.

prometheus-client's multiprocess mode needs a directory shared by all
processes (``PROMETHEUS_MULTIPROC_DIR``), wiped before the processes start,
and ``mark_process_dead(pid)`` when one exits (so its live gauges vanish) —
the dance gunicorn users do by hand. podsup does it: it creates and wipes the
directory at start, hands it to every worker in its environment, marks each
worker dead when it exits, and /metrics merges the directory with
MultiProcessCollector. Counters of dead workers stay in the directory, so
counts survive respawns.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
from typing import Any

from prometheus_client import multiprocess

from podsup.extensions import Extension

log = logging.getLogger("podsup.multiproc")

ENV_MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"


PREFIX = "podsup-metrics-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale(root: str | None = None) -> list[str]:
    """Remove private directories left by podsup processes that were SIGKILLed
    (their names carry the owner's pid); returns what was removed."""
    root = root or tempfile.gettempdir()
    removed = []
    try:
        entries = list(os.scandir(root))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(PREFIX) or not entry.is_dir(follow_symlinks=False):
            continue
        owner = entry.name[len(PREFIX):].split("-", 1)[0]
        if owner.isdigit() and int(owner) != os.getpid() and not _pid_alive(int(owner)):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.path)
    return removed


def prepare_dir(path: str | None = None) -> str:
    """Create ``path`` (or a private temporary directory) and empty it."""
    if path is None:
        sweep_stale()
        return tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-")
    os.makedirs(path, mode=0o700, exist_ok=True)
    for entry in os.scandir(path):
        if entry.is_file() and entry.name.endswith(".db"):
            os.unlink(entry.path)  # leftovers of a previous run would be merged in
    return path


class MultiprocExtension(Extension):
    """Owns the multiprocess directory for the pool's lifetime."""

    def __init__(self, path: str | None = None):
        self._given = path
        self.path = prepare_dir(path)

    def worker_env(self, slot: int) -> dict[str, str]:
        return {ENV_MULTIPROC_DIR: self.path}

    def on_exit(self, slot: int, pid: int, description: Any) -> None:
        try:
            multiprocess.mark_process_dead(pid, self.path)
        except OSError as exc:
            log.debug("mark_process_dead(%d): %s", pid, exc)

    def close(self) -> None:
        if self._given is None:
            shutil.rmtree(self.path, ignore_errors=True)
