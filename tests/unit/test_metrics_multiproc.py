"""The multiprocess directory's life cycle (the merge itself is tested with
real workers in tests/integration/test_multiproc.py)."""
from __future__ import annotations

import os
import subprocess
import sys

from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from podsup import multiproc


def test_given_dir_is_wiped_and_kept(tmp_path):
    (tmp_path / "counter_123.db").write_bytes(b"old run")
    (tmp_path / "notes.txt").write_text("not ours")
    ext = multiproc.MultiprocExtension(str(tmp_path))
    assert not (tmp_path / "counter_123.db").exists() and (tmp_path / "notes.txt").exists()
    assert ext.worker_env(0) == {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    ext.close()
    assert tmp_path.exists()


def test_private_dir_is_removed_at_close_and_sweeps_dead_owners(tmp_path, monkeypatch):
    monkeypatch.setattr(multiproc.tempfile, "tempdir", str(tmp_path))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f"{multiproc.PREFIX}{int(dead.stdout)}-abc"
    live = tmp_path / f"{multiproc.PREFIX}{os.getppid()}-def"
    stale.mkdir()
    live.mkdir()
    ext = multiproc.MultiprocExtension()
    assert not stale.exists() and live.exists()
    assert os.path.dirname(ext.path) == str(tmp_path)
    ext.close()
    assert not os.path.exists(ext.path)


def test_mark_dead_on_exit_removes_live_gauges(tmp_path):
    ext = multiproc.MultiprocExtension(str(tmp_path))
    code = ("from prometheus_client import Gauge; "
            "Gauge('alive', 'a', multiprocess_mode='livesum').set(1)")
    child = subprocess.run([sys.executable, "-c", code], env={**os.environ, **ext.worker_env(0)}, check=True)
    assert child.returncode == 0
    pid_files = [f for f in os.listdir(tmp_path) if f.startswith("gauge_livesum_")]
    assert len(pid_files) == 1
    pid = int(pid_files[0].split("_")[-1].split(".")[0])
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(tmp_path))
    assert registry.get_sample_value("alive") == 1
    ext.on_exit(0, pid, "exit 0")
    assert registry.get_sample_value("alive") is None
