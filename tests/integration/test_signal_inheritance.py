"""A parent's ignored and blocked signals never leak into podsup's children.

``nohup make test &`` starts everything with SIGINT (and SIGQUIT) ignored;
runners and shell scripts may also block signals. Dispositions set to
SIG_IGN and the blocked mask survive exec, so without care a worker would
ignore the stop signal and a ``status --watch`` would ignore Ctrl-C. These
tests start podsup through a launcher that ignores and blocks signals, then
read what the kernel says each child has (``/proc/PID/status``).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys

from tests.integration.podsup_process import PodsupProcess, REPO
from tests.integration.servers import podsup_cli
from tests.waiting import wait_for

#: Ignored by the launcher (what nohup, `&` in sh and careless runners do).
IGNORED = (signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGPIPE, signal.SIGUSR2)
#: Blocked by the launcher (the mask is inherited across exec too).
BLOCKED = (signal.SIGTERM, signal.SIGCHLD, signal.SIGUSR1)

#: python -c LAUNCHER ARGV...: ignore IGNORED, block BLOCKED, exec ARGV.
LAUNCHER = (
    "import os, signal, sys\n"
    f"for s in {[int(s) for s in IGNORED]}: signal.signal(s, signal.SIG_IGN)\n"
    f"signal.pthread_sigmask(signal.SIG_BLOCK, {[int(s) for s in BLOCKED]})\n"
    "os.execvp(sys.argv[1], sys.argv[1:])\n"
)
PREFIX = (sys.executable, "-c", LAUNCHER)


#: glibc's own signals (32: thread cancellation, 33: setxid), below SIGRTMIN: no
#: program may use them, its libc installs its handlers when it needs them, and
#: glibc's posix_spawn leaves them ignored in every child it starts.
LIBC_INTERNAL = sum(1 << (n - 1) for n in range(32, signal.SIGRTMIN))


def mask_of(pid: int, field: str) -> int:
    """SigIgn / SigBlk / SigCgt of ``pid``'s main thread, as a bit mask of
    the signals a program may use (libc-internal ones left out)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1], 16) & ~LIBC_INTERNAL
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def bits(*signals: int) -> int:
    return sum(1 << (int(s) - 1) for s in signals)


def names(mask: int) -> list[str]:
    return [signal.Signals(n).name if n in signal.Signals._value2member_map_ else str(n)
            for n in range(1, 65) if mask & (1 << (n - 1))]


def test_the_launcher_really_ignores_and_blocks():
    proc = subprocess.Popen([*PREFIX, "sleep", "30"])
    try:
        wait_for(lambda: os.path.exists(f"/proc/{proc.pid}/exe")
                 and os.readlink(f"/proc/{proc.pid}/exe").endswith("sleep"), 30, message="sleep to exec")
        assert mask_of(proc.pid, "SigIgn") & bits(*IGNORED) == bits(*IGNORED)
        assert mask_of(proc.pid, "SigBlk") & bits(*BLOCKED) == bits(*BLOCKED)
    finally:
        proc.kill()
        proc.wait(10)


def _workers(p: PodsupProcess, count: int) -> list[int]:
    return wait_for(lambda: [c.pid for c in p.children()] if len(p.children()) >= count else None, 60,
                    message=f"{count} worker(s)")


def test_command_workers_get_default_dispositions_and_an_empty_mask():
    with PodsupProcess(["run", "--workers", "2", "--", "sleep", "300"], prefix=PREFIX) as p:
        p.wait_for_line(r"worker started slot=1")
        for pid in _workers(p, 2):
            assert names(mask_of(pid, "SigIgn")) == [], pid
            assert names(mask_of(pid, "SigBlk")) == [], pid
        # podsup itself hears what the launcher blocked: TERM still stops it gracefully
        assert mask_of(p.pid, "SigBlk") & bits(signal.SIGTERM, signal.SIGCHLD) == 0
        p.signal(signal.SIGTERM)
        assert p.wait_exit(60) == 0


def test_preloaded_workers_get_default_dispositions_and_an_empty_mask(tmp_path):
    (tmp_path / "sleeper.py").write_text("import time\ndef main():\n    time.sleep(300)\n")
    with PodsupProcess(["run", "--workers", "1", "--preload", "sleeper:main"], prefix=PREFIX,
                       cwd=str(tmp_path)) as p:
        p.wait_for_line(r"worker started slot=0")
        (pid,) = _workers(p, 1)
        # Python itself ignores SIGPIPE and SIGXFSZ at start; a worker gets the defaults back
        assert names(mask_of(pid, "SigIgn")) == []
        assert names(mask_of(pid, "SigBlk")) == []
        assert mask_of(p.pid, "SigBlk") & bits(signal.SIGTERM) == 0
        p.signal(signal.SIGTERM)
        assert p.wait_exit(60) == 0


def test_status_watch_started_with_sigint_ignored_still_ends_on_ctrl_c():
    with PodsupProcess(["run", "--workers", "1", "--", "sleep", "300"]) as p:
        p.wait_for_line(r"worker started slot=0")
        assert podsup_cli("status", "--control", p.control_path).returncode == 0
        env = {**os.environ, "PYTHONPATH": REPO}
        watch = subprocess.Popen([*PREFIX, sys.executable, "-m", "podsup", "status", "--watch", "--interval", "0.2",
                                  "--control", p.control_path], stdout=subprocess.PIPE, text=True, env=env)
        try:
            assert watch.stdout.readline()  # refreshing
            assert mask_of(watch.pid, "SigIgn") & bits(signal.SIGINT) == 0
            assert mask_of(watch.pid, "SigCgt") & bits(signal.SIGINT)  # KeyboardInterrupt, as from a terminal
            assert mask_of(watch.pid, "SigBlk") & bits(signal.SIGINT, signal.SIGTERM) == 0
            watch.send_signal(signal.SIGINT)
            assert watch.wait(timeout=30) == 130
        finally:
            if watch.poll() is None:  # never leave a refreshing client behind the test
                watch.kill()
                watch.wait(10)
            watch.stdout.close()
