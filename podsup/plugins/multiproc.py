"""Python workers' own prometheus-client metrics, merged into podsup's /metrics.

prometheus-client does this job (its multiprocess files' format and merge are
its own), so it stays the tool here; but it is imported only once a worker
has written a file, because importing it costs the supervisor ~10 MB of RSS
in every pod (podsup.plugins.exposition renders podsup's own metrics).

prometheus-client's multiprocess mode needs a directory shared by all
processes (``PROMETHEUS_MULTIPROC_DIR``), wiped before the processes start,
and ``mark_process_dead(pid)`` when one exits (so its live gauges vanish) —
the dance gunicorn users do by hand. podsup does it: it creates and wipes the
directory at start, hands it to every worker in its environment, marks each
worker dead when it exits, and /metrics merges the directory with
MultiProcessCollector. Counters of dead workers stay in the directory, so
counts survive respawns.

Which directory: by default a private one (podsup.host.rundir: removed at exit,
swept at the next start if podsup was SIGKILLed). A ``PROMETHEUS_MULTIPROC_DIR``
already set in podsup's environment is respected, as gunicorn users expect
(e.g. a memory-backed emptyDir): podsup creates it if missing, removes its
``*.db`` files at start (stale counts would be merged in) and keeps the
directory at exit; a path that is not a writable directory stops
``podsup run`` with one line.

podsup's own metrics are not prometheus-client objects, so it writes no file
there itself; files named after its pid, if any, are skipped all the same
(:class:`WorkersCollector`).

Every worker life leaves a counter and a histogram file, and a scrape reads
them all: with --max-requests recycling 64 workers, thousands pile up in a
day (2,000 lives cost ~85 ms per scrape, growing). So when a worker exits its
counter/histogram/summary files are added into one ``<type>_0.db`` per type
and removed (:func:`compact`) — those values are plain sums per key, so the
merged exposition is unchanged. It runs under the lock scrapes take, so a
scrape never sees a life counted twice or not at all.

Gauges: mark_process_dead removes the exited worker's ``gauge_live*`` files.
A gauge in prometheus-client's default mode ("all") exports one series per
process, labelled ``pid``, from a ``gauge_all_<pid>.db`` file that
mark_process_dead keeps: under respawns and recycling that is one more file
and one more series with every life, describing a process that is gone. So
that file is removed too (:func:`drop_dead_gauges`, under the same lock). The
other modes (min, max, sum, mostrecent) merge without the pid label, into one
value over all files, dead processes' included, as those modes define: still one
file per life to read. So :func:`compact` folds them into ``gauge_<mode>_0.db``
too, combining as the merge does (add, keep the larger, the smaller, the one
with the later timestamp): the exposition is unchanged, the file count bounded.

A worker's own children (a multiprocessing pool, a forked helper) that use
prometheus-client write files under their own pids, and podsup never reaps
them as workers. So every :data:`SWEEP_INTERVAL` seconds the loop's tick
retires the files of any pid that no longer exists (:func:`dead_pids`) the
way a worker's exit does: their live gauges vanish, their counts are kept.
"""
from __future__ import annotations

import glob
import logging
import os
import threading
from typing import Any, Callable, Iterable

from podsup.core.config import ConfigError
from podsup.core.plugin import Extension
from podsup.host import rundir
from podsup.host.procfs import pid_exists

log = logging.getLogger("podsup.multiproc")

ENV_MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
#: prometheus-client's deprecated lower-case spelling, still honoured by it.
ENV_MULTIPROC_DIR_OLD = "prometheus_multiproc_dir"


class MultiprocDirError(ConfigError):
    """A preset PROMETHEUS_MULTIPROC_DIR podsup cannot use (one line)."""


def preset_dir(environ: dict[str, str] | None = None) -> str | None:
    """The multiprocess directory set in podsup's environment, if any."""
    environ = os.environ if environ is None else environ
    return environ.get(ENV_MULTIPROC_DIR) or environ.get(ENV_MULTIPROC_DIR_OLD) or None


def prepare_dir(path: str | None = None) -> str:
    """Create ``path`` (or a private, marked temporary directory) and empty it."""
    if path is None:
        rundir.sweep_stale()
        return rundir.make_dir("metrics")
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        if not os.access(path, os.W_OK | os.X_OK):
            raise PermissionError(13, "not writable")
        for entry in os.scandir(path):
            if entry.is_file() and entry.name.endswith(".db"):
                os.unlink(entry.path)  # leftovers of a previous run would be merged in
    except FileExistsError:
        raise MultiprocDirError(f"podsup run: invalid {ENV_MULTIPROC_DIR}={path}: not a directory") from None
    except OSError as exc:
        raise MultiprocDirError(
            f"podsup run: invalid {ENV_MULTIPROC_DIR}={path}: {exc.strerror or exc} "
            "(must be a writable directory, or unset it for a private one)") from None
    return path


#: Metric types whose per-process files are sums per key (safe to add up).
ADDITIVE_TYPES = ("counter", "histogram", "summary")
#: The "pid" of the file that holds the compacted values of exited workers.
COMPACTED_PID = 0
#: Held by a scrape while it reads the directory and by :func:`compact`.
merge_lock = threading.Lock()

#: A file's entry for one key: (value, timestamp), as MmapedDict stores it.
Entry = tuple[float, float]


def _add(kept: Entry | None, dead: Entry) -> Entry:
    """Counters, histograms, summaries, ``sum`` gauges: the merge adds the
    files' values (their timestamps are not used: 0, as prometheus-client writes)."""
    return (dead[0] if kept is None else kept[0] + dead[0]), 0.0


def _larger(kept: Entry | None, dead: Entry) -> Entry:
    """``max`` gauges: the merge keeps the larger value (the first seen on a tie)."""
    return dead if kept is None or dead[0] > kept[0] else kept


def _smaller(kept: Entry | None, dead: Entry) -> Entry:
    """``min`` gauges: the merge keeps the smaller value (the first seen on a tie)."""
    return dead if kept is None or dead[0] < kept[0] else kept


def _later(kept: Entry | None, dead: Entry) -> Entry:
    """``mostrecent`` gauges: the merge keeps the value with the later timestamp
    (one whose timestamp is not after 0 is never exported), so the timestamp is
    kept with it: a live worker's later value must still win over the fold."""
    return dead if kept is None or dead[1] > kept[1] else kept


#: How an exited worker's file, by name prefix, folds into ``<prefix>_0.db``:
#: the additive types, and the gauge modes whose merge drops the pid label
#: (one value over every file, combined as MultiProcessCollector does).
FOLDS: dict[str, Callable[[Entry | None, Entry], Entry]] = {
    **{typ: _add for typ in ADDITIVE_TYPES},
    "gauge_sum": _add, "gauge_max": _larger, "gauge_min": _smaller, "gauge_mostrecent": _later,
}


def _fold_file(dead: str, target: str, fold: Callable[[Entry | None, Entry], Entry]) -> None:
    """Write ``fold(kept, entry)`` into ``target`` for every key of ``dead``.
    ``kept`` is None for a key ``target`` does not hold yet: prometheus-client's
    read_value would create it as 0.0, a value that would win a min or a max."""
    from prometheus_client.mmap_dict import MmapedDict

    entries = [(key, (value, timestamp)) for key, value, timestamp, _ in MmapedDict.read_all_values_from_file(dead)]
    total = MmapedDict(target)
    try:
        kept: dict[str, Entry] = {key: (value, timestamp) for key, value, timestamp in total.read_all_values()}
        for key, entry in entries:
            kept[key] = fold(kept.get(key), entry)
            total.write_value(key, *kept[key])
    finally:
        total.close()


def compact(path: str, pid: int) -> int:
    """Fold the exited ``pid``'s counter/histogram/summary files and its
    min/max/sum/mostrecent gauge files into ``<prefix>_0.db`` (:data:`FOLDS`)
    and remove them; returns how many files were folded in. A file that cannot
    be read or written is left where it is (merged as before, just not compacted)."""
    if pid == COMPACTED_PID:
        return 0
    folded = 0
    with merge_lock:
        for prefix, fold in FOLDS.items():
            dead = os.path.join(path, f"{prefix}_{pid}.db")
            if not os.path.exists(dead):
                continue
            try:
                _fold_file(dead, os.path.join(path, f"{prefix}_{COMPACTED_PID}.db"), fold)
            except Exception as exc:  # noqa: BLE001 - prometheus-client internals: keep the file
                log.debug("compacting %s: %s", dead, exc)
                continue
            os.unlink(dead)
            folded += 1
    return folded


#: Gauge modes whose exited workers' files are removed (besides the live*
#: modes, which mark_process_dead removes): per-pid series of a dead process.
DEAD_GAUGE_MODES = ("all",)


def drop_dead_gauges(path: str, pid: int) -> int:
    """Remove the exited ``pid``'s ``gauge_all`` file (its series are labelled
    with that pid); returns how many files were removed. Under :data:`merge_lock`:
    prometheus-client's merge fails on a non-live gauge file that vanishes
    between its listing and its reading."""
    removed = 0
    with merge_lock:
        for mode in DEAD_GAUGE_MODES:
            try:
                os.unlink(os.path.join(path, f"gauge_{mode}_{pid}.db"))
            except FileNotFoundError:
                continue
            except OSError as exc:  # left where it is: exported as before
                log.debug("removing gauge_%s_%d.db: %s", mode, pid, exc)
                continue
            removed += 1
    return removed


#: How often (seconds) files of processes that are gone are retired.
SWEEP_INTERVAL = 30.0


def dead_pids(path: str, keep: Iterable[int] = (), alive: Callable[[int], bool] = pid_exists) -> set[int]:
    """Pids named by ``*_<pid>.db`` files in ``path`` that no longer exist,
    besides the compacted pid 0 and ``keep`` (podsup's own)."""
    pids: set[int] = set()
    for name in os.listdir(path):
        stem, _, tail = name.rpartition("_")
        if not stem or not tail.endswith(".db") or not tail[:-3].isdigit():
            continue
        pids.add(int(tail[:-3]))
    pids.discard(COMPACTED_PID)
    pids.difference_update(keep)
    return {pid for pid in pids if not alive(pid)}


class WorkersCollector:
    """MultiProcessCollector over the workers' files only (a prometheus-client
    collector): files named after podsup's own pid, if any, are not the workers'."""

    def __init__(self, path: str, own_pid: int | None = None):
        self.path = path
        self.own_pid = os.getpid() if own_pid is None else own_pid

    def _files(self) -> list[str]:
        own = f"_{self.own_pid}.db"
        return [f for f in glob.glob(os.path.join(self.path, "*.db")) if not f.endswith(own)]

    def collect(self) -> Iterable[Any]:
        from prometheus_client import multiprocess
        with merge_lock:
            return multiprocess.MultiProcessCollector.merge(self._files(), accumulate=True)

    def describe(self) -> Iterable[Any]:
        return []

    def exposition(self, openmetrics: bool, wanted: frozenset[str] | None = None) -> str:
        """The workers' families as text (OpenMetrics without its ``# EOF``),
        appended to podsup's own on /metrics; ``wanted``: ``?name[]=``.
        prometheus-client is imported only once a worker has written a file
        (a pool of non-Python workers never pays its ~10 MB)."""
        if not self._files():
            return ""
        from prometheus_client import exposition
        from prometheus_client.openmetrics import exposition as om
        metrics = list(self.collect())
        if wanted is not None:
            metrics = _keep_named(metrics, wanted)
        source = _Collected(metrics)
        if openmetrics:
            return om.generate_latest(source).decode().removesuffix("# EOF\n")  # type: ignore[arg-type]
        return exposition.generate_latest(source).decode()  # type: ignore[arg-type]


class _Collected:
    """Already collected metrics, as the registry the encoders read."""

    def __init__(self, metrics: list[Any]):
        self.metrics = metrics

    def collect(self) -> list[Any]:
        return self.metrics


def _keep_named(metrics: list[Any], wanted: frozenset[str]) -> list[Any]:
    """``?name[]=`` over prometheus-client metrics, as podsup.plugins.exposition.keep_named."""
    import copy
    kept = []
    for metric in metrics:
        if metric.name in wanted:
            kept.append(metric)
            continue
        samples = [s for s in metric.samples if s.name in wanted]
        if samples:
            metric = copy.copy(metric)
            metric.samples = samples
            kept.append(metric)
    return kept


class MultiprocExtension(Extension):
    """Owns the multiprocess directory for the pool's lifetime."""

    def __init__(self, path: str | None = None, sweep_interval: float = SWEEP_INTERVAL):
        path = path or preset_dir()
        self._given = path
        self.path = prepare_dir(path)
        self.collector = WorkersCollector(self.path)
        self.sweep_interval = sweep_interval
        self._next_sweep: float | None = None

    def worker_env(self, slot: int) -> dict[str, str]:
        return {ENV_MULTIPROC_DIR: self.path}

    def on_exit(self, slot: int, pid: int, description: Any) -> None:
        self.retire(pid)

    def retire(self, pid: int) -> None:
        """What an exited process leaves: live gauges removed, per-pid gauge
        series dropped, counts folded into the pid-0 files. One directory
        listing first: a worker that wrote no metrics (not Python, or no
        prometheus-client) costs its respawn nothing more."""
        if not self._has_files(pid):
            return
        from prometheus_client import multiprocess  # only once a worker wrote metrics
        try:
            multiprocess.mark_process_dead(pid, self.path)
        except OSError as exc:
            log.debug("mark_process_dead(%d): %s", pid, exc)
        drop_dead_gauges(self.path, pid)
        compact(self.path, pid)

    def _has_files(self, pid: int) -> bool:
        suffix = f"_{pid}.db"
        try:
            with os.scandir(self.path) as entries:
                return any(entry.name.endswith(suffix) for entry in entries)
        except OSError:  # let the full path meet (and log) it
            return True

    def tick(self, now: float) -> None:
        if self._next_sweep is None:
            self._next_sweep = now + self.sweep_interval
        if now < self._next_sweep:
            return
        self._next_sweep = now + self.sweep_interval
        self.sweep()

    def sweep(self) -> set[int]:
        """Retire the files of every process that is gone (workers' children
        included); returns their pids."""
        try:
            gone = dead_pids(self.path, keep=(os.getpid(),))
        except OSError as exc:  # the directory vanished under us: nothing to merge either
            log.debug("sweeping %s: %s", self.path, exc)
            return set()
        for pid in gone:
            self.retire(pid)
        return gone

    def close(self) -> None:
        if self._given is None:
            rundir.rmtree(self.path)
