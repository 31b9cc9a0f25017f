"""The standalone podsup executable (PyInstaller one-file) supervising real
workers: no Python of ours on the path, workers that are not Python at all.
Start, crash -> respawn, TERM -> graceful stop, and `status --json`."""
from __future__ import annotations

import re
import signal
import subprocess
import sys

import psutil
import pytest

import podsup
from tests.packaging.conftest import FIGURES, ROOT, clean_env, median_ms, startup_times
from tests.waiting import wait_for

# The first test to ask for the binary builds it (session fixture, counted in
# that test's time): scripts/build-binary.sh may take up to 540 s on a loaded
# machine, far past the suite's default of 120 s.
pytestmark = pytest.mark.timeout(900)

# A worker with no Python: a shell loop that dies on TERM (default action).
SHELL_WORKER = ["sh", "-c", "echo worker $PODSUP_WORKER_ID of $PODSUP_WORKERS up; while :; do sleep 1; done"]


def test_binary_runs_without_the_source_tree_and_reports_start_up_time(podsup_binary, tmp_path):
    proc = subprocess.run([str(podsup_binary), "--version"], capture_output=True, text=True,
                          env=clean_env(), cwd=tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"podsup {podsup.__version__}"
    FIGURES["binary start-up (podsup --version)"] = median_ms(
        startup_times([str(podsup_binary), "--version"], env=clean_env(), cwd=tmp_path))
    FIGURES["python -m podsup --version (for comparison)"] = median_ms(
        startup_times([sys.executable, "-m", "podsup", "--version"], cwd=ROOT))


def test_binary_knows_every_subcommand(podsup_binary, tmp_path):
    from podsup.cli import SUBCOMMANDS

    for name in SUBCOMMANDS:
        proc = subprocess.run([str(podsup_binary), name, "--help"], capture_output=True, text=True,
                              env=clean_env(), cwd=tmp_path, timeout=60)
        assert proc.returncode == 0, f"{name}: {proc.stderr}"
        assert "usage:" in proc.stdout, name


def test_binary_leaves_the_operator_out(podsup_binary):
    from PyInstaller.archive.readers import CArchiveReader

    archive = CArchiveReader(str(podsup_binary))
    pyz_name = next(name for name in archive.toc if name.endswith(".pyz"))
    # Python modules live in the embedded PYZ archive; read its table of contents.
    modules = set(archive.open_embedded_archive(pyz_name).toc)
    assert "podsup.cli" in modules and "podsup.cli.control" in modules
    assert not {m for m in modules if m.split(".")[0] in {"kopf", "kubernetes", "podsup_operator"}}
    FIGURES["binary modules"] = str(len(modules))


def test_start_status_json_crash_respawn_and_graceful_term(run_binary):
    run = run_binary(["--workers", "2", "--graceful-timeout", "20"], SHELL_WORKER)
    run.wait_for_line(r"worker started slot=1")
    run.wait_for_line(r"worker 1 of 2 up")

    # ready once both are up (a worker is "starting" for its first second, not ready yet)
    status = wait_for(lambda: (lambda s: s if s["running"] == 2 and s["ready"] and all(w["pid"] for w in s["workers"])
                               else None)(run.status()), 30, message="status --json with 2 ready workers")
    assert status["desired"] == 2 and status["ready"] is True and status["healthy"] is True
    pids = {w["id"]: w["pid"] for w in status["workers"]}
    assert sorted(pids) == [0, 1]
    for pid in pids.values():
        assert psutil.Process(pid).ppid() == run_binary_child(run).pid

    # crash -> respawn: SIGKILL slot 0's worker; podsup starts a new one in slot 0.
    psutil.Process(pids[0]).kill()
    respawned = wait_for(lambda: (lambda s: s if s["workers"][0]["pid"] not in (None, pids[0]) else None)(
        run.status()), 30, message="slot 0 respawned")
    assert respawned["workers"][0]["restarts"] == 1
    assert respawned["workers"][1]["pid"] == pids[1]
    assert sum(respawned["restarts"].values()) == 1
    # podsup's log lines go out through a writer thread: the status can show the
    # respawn before the exit's line reaches the file
    run.wait_for_line(rf'worker exited slot=0 pid={pids[0]} status="signal SIGKILL"')
    new_pid = respawned["workers"][0]["pid"]

    # TERM -> graceful stop: every worker gets TERM, podsup exits 0.
    run.proc.send_signal(signal.SIGTERM)
    assert run.wait_exit(60) == 0, run.output()
    out = run.output()
    assert re.search(r"graceful stop", out)
    for pid in (new_pid, pids[1]):
        assert re.search(rf"worker stopped slot=\d pid={pid} status=\"signal SIGTERM\"", out), out
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def run_binary_child(run):
    """The supervising process: a one-file executable's bootloader runs
    podsup as its only child (and forwards signals to it)."""
    children = psutil.Process(run.proc.pid).children()
    podsup_procs = [c for c in children if c.exe() == str(run.binary)]
    assert len(podsup_procs) == 1, children
    return podsup_procs[0]


def test_crashing_worker_is_respawned_with_backoff(run_binary):
    run = run_binary(["--workers", "1", "--backoff-max", "1"], ["sh", "-c", "echo boom; exit 3"])
    run.wait_for_line(r'worker exited slot=0 .*status="exit 3"', count=3)
    status = run.status()
    assert status["exits"].get("exit 3", 0) >= 3, status["exits"]
    assert status["workers"][0]["restarts"] >= 2
    run.proc.send_signal(signal.SIGTERM)
    assert run.wait_exit(60) == 0, run.output()


def test_orphans_of_workers_are_adopted_by_podsup_not_the_bootloader(run_binary):
    """The one-file bootloader is the parent (PID 1 in a container); podsup,
    its child, is the child sub-reaper, so a worker's orphan is re-parented
    to podsup, which reaps it."""
    worker = ["sh", "-c", "(sleep 300 &); echo orphan left; while :; do sleep 1; done"]
    run = run_binary(["--workers", "1"], worker)
    run.wait_for_line(r"orphan left")
    supervisor = run_binary_child(run)

    def orphan():
        return [p for p in supervisor.children() if p.cmdline()[:2] == ["sleep", "300"]]

    (adopted,) = wait_for(orphan, 30, message="the orphaned `sleep 300` re-parented to podsup")
    adopted.kill()
    wait_for(lambda: not psutil.pid_exists(adopted.pid), 30, message="podsup reaps the killed orphan")
    run.proc.send_signal(signal.SIGTERM)
    assert run.wait_exit(60) == 0, run.output()


def test_binary_unpacks_into_tmpdir_while_it_runs(podsup_binary, tmp_path):
    """A one-file executable unpacks itself into $TMPDIR on every start and
    removes that copy at exit (docs/standalone-binary.md: on a read-only root filesystem, give
    it a writable /tmp or TMPDIR)."""
    unpack = tmp_path / "unpack"
    unpack.mkdir()
    proc = subprocess.Popen([str(podsup_binary), "run", "--workers", "1", "--http", "127.0.0.1:0",
                             "--control", str(tmp_path / "c.sock"), "--", "sh", "-c", "sleep 300"],
                            env=clean_env(TMPDIR=str(unpack)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        (copy,) = wait_for(lambda: list(unpack.glob("_MEI*")), 30, message="the unpacked copy in $TMPDIR")
        assert any(copy.iterdir())
        wait_for(lambda: (tmp_path / "c.sock").exists(), 30, message="podsup up (control socket)")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        assert not copy.exists(), "the unpacked copy is removed at exit"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_glibc_requirement_is_reported(podsup_binary, tmp_path):
    """The newest glibc symbol version any bundled library needs (figure);
    a binary built here must at least run here."""
    import os
    import shutil

    from PyInstaller.archive.readers import CArchiveReader

    objdump = shutil.which("objdump")
    assert objdump, "binutils' objdump is needed (scripts/install-extra.sh)"
    archive = CArchiveReader(str(podsup_binary))
    needed = set()
    for name in archive.toc:
        if name.endswith(".so") or ".so." in name:
            path = tmp_path / name.replace("/", "_")
            path.write_bytes(archive.extract(name))
            dump = subprocess.run([objdump, "-T", str(path)], capture_output=True, text=True).stdout
            needed |= {tuple(int(x) for x in v.split(".")) for v in re.findall(r"GLIBC_(\d+\.\d+(?:\.\d+)?)", dump)}
    assert needed
    newest = max(needed)
    host = tuple(int(x) for x in os.confstr("CS_GNU_LIBC_VERSION").split()[1].split("."))
    FIGURES["binary needs glibc (built on this host)"] = ".".join(map(str, newest)) + \
        f" (host {'.'.join(map(str, host))}; the Dockerfile builds on Debian 11, glibc 2.31)"
    assert newest <= host
