"""The multiprocess directory's life cycle (the merge itself is tested with
real workers in tests/integration/test_multiproc.py)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from prometheus_client import CollectorRegistry, generate_latest, multiprocess, values
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from podsup.core.config import ConfigError
from podsup.host import rundir
from podsup.plugins import multiproc


def test_given_dir_is_wiped_and_kept(tmp_path):
    (tmp_path / "counter_123.db").write_bytes(b"old run")
    (tmp_path / "notes.txt").write_text("not ours")
    ext = multiproc.MultiprocExtension(str(tmp_path))
    assert not (tmp_path / "counter_123.db").exists() and (tmp_path / "notes.txt").exists()
    assert ext.worker_env(0) == {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    ext.close()
    assert tmp_path.exists()


def dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def test_private_dir_is_removed_at_close_and_sweeps_dead_owners(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    stale = tmp_path / f"podsup-metrics-{dead_pid()}-abc"
    stale.mkdir()
    (stale / rundir.OWNER_FILE).write_text(rundir.owner_line(os.getpid()).replace(str(os.getpid()), str(dead_pid()), 1))
    (stale / "counter_1.db").write_bytes(b"x")
    live = tmp_path / f"podsup-metrics-{os.getppid()}-def"
    live.mkdir()
    (live / rundir.OWNER_FILE).write_text(rundir.owner_line(os.getppid()))
    ext = multiproc.MultiprocExtension()
    assert not stale.exists() and live.exists()
    assert os.path.dirname(ext.path) == str(tmp_path)
    assert os.path.exists(os.path.join(ext.path, rundir.OWNER_FILE))
    ext.close()
    assert not os.path.exists(ext.path)


def test_sweep_removes_only_marked_dirs_of_gone_owners(tmp_path):
    def marked(name: str, line: str):
        path = tmp_path / name
        path.mkdir()
        (path / rundir.OWNER_FILE).write_text(line)
        return path
    ns = rundir.pid_namespace()
    gone = marked("podsup-report-1-a", f"podsup {dead_pid()} 12345.00 {ns}\n")
    # PID 1 again after a container restart: same pid, another start time
    reused = marked("podsup-report-2-b", f"podsup {os.getpid()} 12345.00 {ns}\n")
    # another container's podsup sharing /tmp: its pids are not ours to judge
    foreign = marked("podsup-report-5-g", f"podsup {dead_pid()} 12345.00 pid:[1]\n")
    mine = marked("podsup-metrics-3-c", rundir.owner_line())
    garbage = marked("podsup-metrics-4-d", "hello\n")
    unmarked = tmp_path / "podsup-test-e"
    unmarked.mkdir()
    other = marked("notpodsup-f", f"podsup {dead_pid()} 12345.00 {ns}\n")
    target = marked("elsewhere", f"podsup {dead_pid()} 12345.00 {ns}\n")
    (tmp_path / "podsup-link").symlink_to(target)
    removed = rundir.sweep_stale(str(tmp_path))
    assert sorted(removed) == sorted([str(gone), str(reused)])
    for kept in (mine, garbage, foreign, unmarked, other, target, tmp_path / "podsup-link"):
        assert kept.exists(), kept


def test_a_preset_dir_is_respected_and_kept(tmp_path, monkeypatch):
    preset = tmp_path / "preset"
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(preset))
    ext = multiproc.MultiprocExtension()
    assert ext.path == str(preset) and preset.is_dir()
    assert ext.worker_env(0) == {"PROMETHEUS_MULTIPROC_DIR": str(preset)}
    ext.close()
    assert preset.is_dir()


def test_an_unusable_preset_dir_is_one_line(tmp_path, monkeypatch):
    afile = tmp_path / "file"
    afile.write_text("x")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(afile))
    with pytest.raises(ConfigError) as err:
        multiproc.MultiprocExtension()
    assert str(err.value) == f"podsup run: invalid PROMETHEUS_MULTIPROC_DIR={afile}: not a directory"


def test_the_merge_skips_podsups_own_files(tmp_path):
    code = "from prometheus_client import Counter; Counter('jobs', 'j').inc(3)"
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    (own,) = os.listdir(tmp_path)
    shutil.copy(tmp_path / own, tmp_path / f"counter_{os.getpid()}.db")  # as if podsup counted too
    registry = CollectorRegistry()
    registry.register(multiproc.WorkersCollector(str(tmp_path)))
    assert registry.get_sample_value("jobs_total") == 3


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


def test_exited_workers_files_are_compacted_without_changing_the_exposition(tmp_path):
    ext = multiproc.MultiprocExtension(str(tmp_path))
    code = ("import os, sys; from prometheus_client import Counter, Histogram, Gauge; "
            "n = int(sys.argv[1]); c = Counter('jobs', 'j', ['kind']); c.labels('a').inc(n); "
            "c.labels(sys.argv[2]).inc(); "
            "h = Histogram('secs', 's', buckets=(0.1, 1.0)); [h.observe(0.05 * n) for _ in range(n)]; "
            "Gauge('peak', 'p', multiprocess_mode='max').set(n); print(os.getpid())")
    env = {**os.environ, **ext.worker_env(0)}
    pids = [int(subprocess.run([sys.executable, "-c", code, str(n), kind], env=env, check=True,
                               capture_output=True, text=True).stdout)
            for n, kind in ((1, "b"), (3, "c"), (5, "b"))]
    registry = CollectorRegistry()
    registry.register(multiproc.WorkersCollector(str(tmp_path)))
    def samples():
        text = generate_latest(registry).decode()
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text) for s in family.samples}
    before = samples()
    for pid in pids:
        ext.on_exit(0, pid, "exit 0")
    names = sorted(os.listdir(tmp_path))
    assert [n for n in names if not n.startswith("gauge_")] == ["counter_0.db", "histogram_0.db"]
    assert samples() == pytest.approx(before)
    assert registry.get_sample_value("jobs_total", {"kind": "a"}) == 9
    assert registry.get_sample_value("secs_count") == 9
    assert registry.get_sample_value("peak") == 5


def test_an_exited_workers_default_mode_gauge_file_and_series_are_removed(tmp_path):
    """Gauge's default mode ("all") keeps one pid-labelled series per process in
    gauge_all_<pid>.db, which mark_process_dead leaves: on exit podsup removes
    it; the other non-live modes are folded into their pid-0 file, unchanged."""
    ext = multiproc.MultiprocExtension(str(tmp_path))
    code = ("import os; from prometheus_client import Gauge; "
            "Gauge('last_seen', 'l').set(7); Gauge('peak', 'p', multiprocess_mode='max').set(3); "
            "Gauge('alive', 'a', multiprocess_mode='livesum').set(1); print(os.getpid())")
    env = {**os.environ, **ext.worker_env(0)}
    pids = [int(subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True,
                               text=True).stdout) for _ in range(2)]
    registry = CollectorRegistry()
    registry.register(multiproc.WorkersCollector(str(tmp_path)))
    assert {registry.get_sample_value("last_seen", {"pid": str(pid)}) for pid in pids} == {7.0}
    ext.on_exit(0, pids[0], "exit 0")
    assert not (tmp_path / f"gauge_all_{pids[0]}.db").exists()
    assert registry.get_sample_value("last_seen", {"pid": str(pids[0])}) is None
    assert registry.get_sample_value("last_seen", {"pid": str(pids[1])}) == 7.0  # another pid's: untouched
    assert not (tmp_path / f"gauge_max_{pids[0]}.db").exists() and registry.get_sample_value("peak") == 3
    ext.on_exit(0, pids[1], "exit 0")
    assert sorted(f for f in os.listdir(tmp_path) if f.startswith("gauge_")) == ["gauge_max_0.db"]
    assert registry.get_sample_value("peak") == 3
    assert "last_seen" not in {m.name for m in registry.collect()}
    assert multiproc.drop_dead_gauges(str(tmp_path), pids[1]) == 0  # already gone: nothing to do


def write_gauges(directory, pid: int, mode: str, samples: dict) -> None:
    """What a worker ``pid`` writes for ``Gauge("app_g", ..., ["k"], multiprocess_mode=mode)``,
    with prometheus-client's own value class: ``{k: (value, timestamp)}``; a value
    of None is a child created and never set (prometheus-client writes (0.0, 0.0))."""
    value_class = values.MultiProcessValue(lambda: pid)  # one class per pid: a pid change resets all values
    for k, entry in samples.items():
        child = value_class("gauge", "app_g", "app_g", ("k",), (k,), "A gauge.", multiprocess_mode=mode)
        if entry is not None:
            child.set(*entry)


def exposition(directory) -> dict:
    """MultiProcessCollector's merge, exactly (values compared with ==), order aside."""
    return {(m.name, m.type, m.documentation): sorted(
                (s.name, tuple(sorted(s.labels.items())), s.value, s.timestamp) for s in m.samples)
            for m in MultiProcessCollector(None, path=str(directory)).collect()}


LIVE_PID = 104
DEAD_PIDS = (101, 102, 103)
#: Per mode: {pid: {k: (value, timestamp) or None}} and the merged value per k.
GAUGE_CASES = {
    "sum": ({101: {"a": (1.5, 0), "b": (-0.5, 0)}, 102: {"a": (2.25, 0)}, 103: {"a": (4.0, 0), "b": (8.0, 0)},
             LIVE_PID: {"a": (16.0, 0), "c": (3.0, 0)}},
            {"a": 23.75, "b": 7.5, "c": 3.0}),
    # "neg"/"pos" first appear in a later dead file: a 0.0 created in gauge_max_0.db would beat -2
    "max": ({101: {"a": (3.0, 0)}, 102: {"a": (1.0, 0), "neg": (-5.0, 0)}, 103: {"neg": (-2.0, 0)},
             LIVE_PID: {"a": (2.0, 0), "neg": (-9.0, 0), "live": (-1.0, 0)}},
            {"a": 3.0, "neg": -2.0, "live": -1.0}),
    "min": ({101: {"a": (3.0, 0)}, 102: {"a": (1.0, 0), "pos": (7.0, 0)}, 103: {"pos": (4.0, 0)},
             LIVE_PID: {"a": (2.0, 0), "pos": (9.0, 0), "live": (1.0, 0)}},
            {"a": 1.0, "pos": 4.0, "live": 1.0}),
    # "a": the newest value is the first dead one's, and it beats the live worker's older one (the
    # pid-0 file must keep its timestamp); "b": the live worker's is newer; "unset": created, never set
    # in a dead worker: exported by nobody, before and after
    "mostrecent": ({101: {"a": (1.0, 300.0), "b": (5.0, 100.0)}, 102: {"a": (2.0, 100.0), "unset": None},
                    103: {"a": (3.0, 200.0), "b": (6.0, 150.0)}, LIVE_PID: {"a": (4.0, 250.0), "b": (7.0, 400.0)}},
                   {"a": 1.0, "b": 7.0}),
}


@pytest.mark.parametrize("order", [DEAD_PIDS, DEAD_PIDS[::-1]], ids=["oldest-first", "newest-first"])
@pytest.mark.parametrize("mode", sorted(GAUGE_CASES))
def test_exited_workers_gauge_files_fold_into_one_without_changing_the_exposition(tmp_path, monkeypatch,
                                                                                  mode, order):
    """min/max/sum/mostrecent gauges merge without the pid label: an exited
    worker's file folds into gauge_<mode>_0.db, combined as the merge does."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    per_pid, merged = GAUGE_CASES[mode]
    for pid, samples in per_pid.items():
        write_gauges(tmp_path, pid, mode, samples)
    before = exposition(tmp_path)
    assert {dict(labels)["k"]: value for _, labels, value, _ in before[("app_g", "gauge", "A gauge.")]} == merged
    for pid in order:
        assert multiproc.compact(str(tmp_path), pid) == 1
        assert exposition(tmp_path) == before
    assert sorted(os.listdir(tmp_path)) == [f"gauge_{mode}_0.db", f"gauge_{mode}_{LIVE_PID}.db"]
    assert multiproc.compact(str(tmp_path), order[0]) == 0  # already folded
    assert multiproc.compact(str(tmp_path), 0) == 0 and exposition(tmp_path) == before


def test_a_folded_gauge_file_keeps_its_timestamps_and_no_false_zero(tmp_path, monkeypatch):
    """The pid-0 file itself: mostrecent keeps the winning (value, timestamp)
    pair; min and max hold no 0.0 for a key only a later dead worker had."""
    from prometheus_client.mmap_dict import MmapedDict

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    write_gauges(tmp_path, 101, "mostrecent", {"a": (1.0, 300.0)})
    write_gauges(tmp_path, 102, "mostrecent", {"a": (2.0, 100.0)})
    write_gauges(tmp_path, 101, "max", {"a": (1.0, 0)})
    write_gauges(tmp_path, 102, "max", {"neg": (-3.0, 0)})
    for pid in (101, 102):
        assert multiproc.compact(str(tmp_path), pid) == 2

    def entries(mode):
        return {json.loads(key)[2]["k"]: (value, timestamp) for key, value, timestamp, _ in
                MmapedDict.read_all_values_from_file(str(tmp_path / f"gauge_{mode}_0.db"))}
    assert entries("mostrecent") == {"a": (1.0, 300.0)}
    assert entries("max") == {"a": (1.0, 0.0), "neg": (-3.0, 0.0)}


def test_a_worker_that_wrote_no_metrics_is_retired_without_touching_the_directory(tmp_path, monkeypatch):
    ext = multiproc.MultiprocExtension(str(tmp_path))
    (tmp_path / "counter_1100.db").write_bytes(b"")  # another pid's file: 1100 ends in 100, not _100
    def untouched(*_args, **_kwargs):
        raise AssertionError("nothing of pid 100 to retire")
    monkeypatch.setattr(multiprocess, "mark_process_dead", untouched)
    monkeypatch.setattr(multiproc, "compact", untouched)
    monkeypatch.setattr(multiproc, "drop_dead_gauges", untouched)
    ext.on_exit(0, 100, "signal SIGKILL")
    assert (tmp_path / "counter_1100.db").exists()
