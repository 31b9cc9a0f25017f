"""cgroup readers against a directory of fake cgroup files."""
from __future__ import annotations

from podsup.host import cgroup


def make_cgroup(root, path, cpu_max=None):
    directory = root.joinpath(*[p for p in path.split("/") if p]) if path != "/" else root
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "cgroup.controllers").write_text("cpu memory\n")
    if cpu_max is not None:
        (directory / "cpu.max").write_text(cpu_max + "\n")
    return directory


def test_parse_cpu_max():
    assert cgroup.parse_cpu_max("max 100000") is None
    assert cgroup.parse_cpu_max("200000 100000") == 2.0
    assert cgroup.parse_cpu_max("150000 100000") == 1.5
    assert cgroup.parse_cpu_max("garbage") is None


def test_cpu_limit_takes_the_tightest_ancestor(tmp_path):
    make_cgroup(tmp_path, "/", None)
    make_cgroup(tmp_path, "/kubepods", "300000 100000")
    leaf = make_cgroup(tmp_path, "/kubepods/pod1", "max 100000")
    assert cgroup.cpu_limit(str(leaf)) == 3.0
    make_cgroup(tmp_path, "/kubepods/pod1", "50000 100000")
    assert cgroup.cpu_limit(str(leaf)) == 0.5


def test_v2_dir_from_proc_self_cgroup(tmp_path):
    root = tmp_path / "fs"
    make_cgroup(root, "/", None)
    leaf = make_cgroup(root, "/app.slice/x", "100000 100000")
    proc = tmp_path / "cgroup"
    proc.write_text("0::/app.slice/x\n")
    assert cgroup.v2_dir((str(root),), str(proc)) == str(leaf)
    proc.write_text("4:memory:/foo\n")
    assert cgroup.v2_dir((str(root),), str(proc)) is None


def test_cpu_count_is_at_least_one():
    assert cgroup.cpu_count() >= 1


def test_oom_counter_sees_a_rise_once(tmp_path):
    events = tmp_path / "memory.events"
    events.write_text("low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n")
    counter = cgroup.OomCounter(str(events))
    assert not counter.rose()
    events.write_text("low 0\nhigh 0\nmax 1\noom 1\noom_kill 1\n")
    assert counter.rose()
    assert not counter.rose()  # the same kill is not reported twice
    events.write_text("oom 3\noom_kill 3\n")
    assert counter.rose() and counter.rose()  # two workers killed at once: both are OOM
    assert not counter.rose()
    assert not cgroup.OomCounter(str(tmp_path / "absent")).rose()
    assert cgroup.parse_memory_events("oom 2\noom_kill 3\n") == {"oom": 2, "oom_kill": 3}


def test_oom_events_path_prefers_v2_memory_events_then_v1_oom_control(tmp_path):
    root = tmp_path / "fs"
    make_cgroup(root, "/", None)
    leaf = make_cgroup(root, "/pod/c", None)
    proc = tmp_path / "cgroup"
    v1 = tmp_path / "v1"
    (v1 / "pod" / "c").mkdir(parents=True)
    (v1 / "pod" / "c" / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 4\n")
    proc.write_text("4:memory:/pod/c\n0::/pod/c\n")
    found = cgroup.default_oom_events_path((str(root),), str(v1), str(proc))
    assert found == str(v1 / "pod" / "c" / "memory.oom_control")  # no v2 memory.events here
    assert cgroup.OomCounter(found).last == 4
    (leaf / "memory.events").write_text("oom 0\noom_kill 1\n")
    assert cgroup.default_oom_events_path((str(root),), str(v1), str(proc)) == str(leaf / "memory.events")
