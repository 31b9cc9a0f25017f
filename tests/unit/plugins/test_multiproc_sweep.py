"""Files of a worker's own children (not workers, never reaped as such) are
retired by the periodic sweep once those processes are gone."""
from __future__ import annotations

import os
import subprocess
import sys

from prometheus_client import CollectorRegistry

from podsup.plugins import multiproc

#: A "worker" that forks a child using prometheus-client, waits for it, then
#: reports both pids and stays alive until its stdin closes.
WORKER = r"""
import os, sys
from prometheus_client import Counter, Gauge
child = os.fork()
if child == 0:
    Counter('child_jobs', 'j').inc(4)
    Gauge('child_alive', 'a', multiprocess_mode='livesum').set(1)
    Gauge('child_seen', 's').set(9)
    os._exit(0)
os.waitpid(child, 0)
Gauge('worker_alive', 'a', multiprocess_mode='livesum').set(1)
print(os.getpid(), child, flush=True)
sys.stdin.read()
"""


def test_dead_pids_lists_gone_processes_but_not_pid_0_or_kept_ones(tmp_path):
    for name in ("counter_0.db", "counter_11.db", "gauge_livesum_12.db", "gauge_all_13.db",
                 "histogram_14.db", "notes.txt", "counter_x.db"):
        (tmp_path / name).write_bytes(b"")
    alive = {12}
    assert multiproc.dead_pids(str(tmp_path), keep=(14,), alive=lambda pid: pid in alive) == {11, 13}


def test_sweep_retires_a_workers_exited_child_and_keeps_its_counts(tmp_path):
    ext = multiproc.MultiprocExtension(str(tmp_path), sweep_interval=10)
    worker = subprocess.Popen([sys.executable, "-c", WORKER], env={**os.environ, **ext.worker_env(0)},
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        worker_pid, child_pid = map(int, worker.stdout.readline().split())
        registry = CollectorRegistry()
        registry.register(multiproc.WorkersCollector(str(tmp_path)))
        assert registry.get_sample_value("child_alive") == 1  # the child is gone, its gauge is not
        ext.tick(100.0)                                      # the first tick only schedules
        assert (tmp_path / f"gauge_livesum_{child_pid}.db").exists()
        ext.tick(109.0)
        assert (tmp_path / f"gauge_livesum_{child_pid}.db").exists()  # not due yet
        ext.tick(110.0)
        assert registry.get_sample_value("child_alive") is None
        assert registry.get_sample_value("child_seen", {"pid": str(child_pid)}) is None
        assert registry.get_sample_value("child_jobs_total") == 4          # folded, not lost
        assert registry.get_sample_value("worker_alive") == 1              # a live process: untouched
        assert not any(name.endswith(f"_{child_pid}.db") for name in os.listdir(tmp_path))
        assert (tmp_path / f"gauge_livesum_{worker_pid}.db").exists()
    finally:
        worker.stdin.close()
        worker.wait(30)
