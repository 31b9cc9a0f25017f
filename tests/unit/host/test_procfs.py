"""podsup.host.procfs: a worker's family, its RSS and CPU, read from /proc (real processes)."""
from __future__ import annotations

import itertools
import os
import subprocess
import sys

import psutil
import pytest

from podsup.host import procfs
from tests.waiting import wait_for

#: a child that starts a grandchild, then spins a little CPU and sleeps
FAMILY = r"""
import subprocess, sys, time
grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
print(grandchild.pid, flush=True)
end = time.process_time() + 0.3
while time.process_time() < end:
    pass
time.sleep(60)
"""


@pytest.fixture
def family():
    proc = subprocess.Popen([sys.executable, "-c", FAMILY], stdout=subprocess.PIPE, text=True)
    grandchild = int(proc.stdout.readline())
    try:
        yield proc.pid, grandchild
    finally:
        for pid in (grandchild, proc.pid):
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        proc.wait(10)


def test_read_stat_matches_psutil_for_this_process():
    start, cpu, rss, threads = procfs.read_stat(os.getpid())
    assert threads == psutil.Process().num_threads()
    me = psutil.Process()
    times = me.cpu_times()
    assert abs(cpu - (times.user + times.system)) < 0.5
    assert rss > 0 and abs(rss - me.memory_info().rss) < 8 * 2**20  # allocations between the two reads


def test_read_stat_of_a_process_with_parentheses_and_spaces_in_its_name(tmp_path):
    program = tmp_path / "a) b (c"
    os.symlink(sys.executable, program)
    proc = subprocess.Popen([str(program), "-c", "import time; time.sleep(60)"])
    try:
        wait_for(lambda: procfs.read_stat(proc.pid)[2] > 0, message="the odd-named process's stat")
    finally:
        proc.kill()
        proc.wait(10)


@pytest.mark.parametrize("children_lists", [True, False], ids=["children-lists", "proc-scan"])
def test_a_family_is_the_worker_and_its_descendants_summed(family, children_lists):
    if children_lists and not procfs.has_children_lists():
        pytest.skip("this kernel has no /proc/PID/task/TID/children")
    worker, grandchild = family
    meter = procfs.UsageMeter(children_lists=children_lists)
    rss, cpu = meter.measure([worker])[worker]
    alone = procfs.read_stat(worker)[2]
    assert rss >= alone + procfs.read_stat(grandchild)[2] - 2**20  # both counted (pages may move a bit)
    assert cpu == 0.0  # the first sight of a process: no interval yet (as psutil's cpu_percent)


def test_cpu_percent_is_measured_between_two_readings(family):
    worker, _ = family
    ticks = itertools.count(100.0, 0.1)
    meter = procfs.UsageMeter(clock=lambda: next(ticks))
    meter.measure([worker])
    before = procfs.read_stat(worker)[1]
    # the worker spins 0.3 s of CPU at start: wait until some was used since the first reading
    wait_for(lambda: procfs.read_stat(worker)[1] > before, message="CPU used by the worker")
    assert meter.measure([worker])[worker][1] > 0


def test_a_gone_family_is_left_out_and_a_reused_pid_starts_again():
    meter = procfs.UsageMeter()
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(10)
    assert meter.measure([proc.pid]) == {}
    meter._last[os.getpid()] = (-1, 0.0, 0.0)  # "seen before" under another start time
    assert meter.measure([os.getpid()])[os.getpid()][1] == 0.0


def test_start_time_is_psutils_create_time():
    assert abs(procfs.start_time(os.getpid()) - psutil.Process().create_time()) < 0.02
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(10)
    assert procfs.start_time(proc.pid) is None


def test_pid_exists_as_psutil_says():
    assert procfs.pid_exists(os.getpid()) and procfs.pid_exists(1) and procfs.pid_exists(0)
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(10)
    assert procfs.pid_exists(proc.pid) is psutil.pid_exists(proc.pid) is False
    assert not procfs.pid_exists(-1)


def test_podsup_run_imports_no_psutil_without_max_rss(tmp_path):
    # --max-rss (the watchdog) is the one option that needs psutil in the master
    script = ("import sys; from podsup.cli.assemble import build_extensions; from podsup.cli import options; "
              "from podsup.loop.arbiter import Arbiter; "
              f"cfg = options.load(['--http', '127.0.0.1:0', '--control', {str(tmp_path / 'c.sock')!r}, '--', 'true']); "
              "exts = build_extensions(cfg); [e.close() for e in exts]; "
              "print('psutil' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


def test_a_measurement_younger_than_max_age_is_answered_again_for_the_same_pids(monkeypatch):
    clock = {"t": 100.0}
    meter = procfs.UsageMeter(clock=lambda: clock["t"])
    me = os.getpid()
    first = meter.measure([me], max_age=1.0)
    reads = []
    monkeypatch.setattr(procfs, "read_stat", lambda pid: reads.append(pid) or (1, 2.0, 4096, 1))
    clock["t"] = 100.5
    assert meter.measure([me], max_age=1.0) == first and reads == []    # reused
    meter.measure([me, 1], max_age=1.0)                                   # other pids: measured
    assert me in reads
    reads.clear()
    meter.measure([me, 1])                                                # no max_age: measured
    assert reads
    reads.clear()
    clock["t"] = 102.0
    meter.measure([me, 1], max_age=1.0)                                   # too old: measured
    assert reads
