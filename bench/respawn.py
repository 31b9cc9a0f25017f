"""Crash-to-replacement latency and idle supervisor cost: podsup vs gunicorn, supervisord, circus, uWSGI.

Prints figures side by side, asserts nothing. In one run:

* **respawn latency** — with a small pool (default 8 workers) the oldest live
  worker is SIGKILLed, and the time from just before ``os.kill`` until a new
  child pid of the supervisor's master appears is measured (p50/p99/max over
  ``--kills``, default 300; a peer gets at most ``--latency-seconds`` of
  wall time, so a slow one reports fewer kills). Killing the oldest worker
  each time goes round-robin over the pool. After each replacement the
  script pauses ``--gap`` (0.1 s) plus a random 0 .. 2x the peer's slowest
  respawn so far (at most 1 s), so kills land at random phases of a peer's
  periodic timer instead of locking onto one. The master's children are read from
  ``/proc/PID/task/*/children`` every ~0.25 ms, so the figure is "the
  supervisor has forked/spawned the replacement" (the worker program's own
  start-up is not included);
* **idle cost** — with 64 workers (``--workers``) all up and ``--settle``
  seconds passed, the master process's CPU (user + system over
  ``--idle-seconds``, all its threads, % of one core) and its RSS. Only the
  master is counted, never the workers.

Peers: podsup runs from this repository (``sys.executable -m podsup`` with
PYTHONPATH = the repository root); gunicorn (sync workers), supervisord
(``numprocs``), circus and uWSGI (``--master``) are installed from PyPI with pip into a throwaway
venv made from the same interpreter (``--venv DIR`` keeps/reuses one).
podsup, supervisord and circus supervise the same worker, ``sleep 3600``;
gunicorn's and uWSGI's workers are their own forks serving a trivial WSGI app. Each
peer is configured not to throttle respawns (printed with the figures). A
peer that fails to install or start is shown as ``n/a (reason)``.

    python3 bench/respawn.py [--kills 300] [--workers 64] [--latency-workers 8]
                             [--idle-seconds 10] [--quick] [--venv DIR]

Targets (printed, not asserted): p99 respawn within 10 ms; idle CPU well under
1 % of a core; RSS under 30 MB.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

import podsup  # noqa: E402

PEERS = ("podsup", "gunicorn", "supervisord", "circus", "uwsgi")
DISTRIBUTIONS = {"gunicorn": "gunicorn", "supervisord": "supervisor", "circus": "circus", "uwsgi": "uwsgi"}
#: podsup's own run-time dependencies, installed into the venv too, so podsup can
#: run there from this repository (a clean site-packages, like a pod's image).
PODSUP_DEPS = ("psutil", "prometheus-client", "PyYAML")
SLEEP = shutil.which("sleep") or "/bin/sleep"
WORKER = [SLEEP, "3600"]
MARKER = "PODSUP_BENCH_RESPAWN_RUN"

WSGI_APP = '''\
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok\\n"]
'''


class Unavailable(Exception):
    """A peer cannot be measured: the message is the reason shown in the table."""


# --------------------------------------------------------------- processes
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _children_proc(pid: int) -> set[int]:
    """Child pids of every thread of ``pid`` (Linux CONFIG_PROC_CHILDREN)."""
    found: set[int] = set()
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as fh:
                found.update(int(p) for p in fh.read().split())
        except FileNotFoundError:  # the thread just ended
            continue
    return found


def _children_psutil(pid: int) -> set[int]:
    return {p.pid for p in psutil.Process(pid).children()}


def _pick_children_reader() -> Callable[[int], set[int]]:
    try:
        _children_proc(os.getpid())
        return _children_proc
    except OSError:
        return _children_psutil


children = _pick_children_reader()


def live_children(pid: int) -> set[int]:
    """Children that are not zombies (a killed worker stays one until reaped)."""
    alive = set()
    for child in children(pid):
        try:
            if psutil.Process(child).status() != psutil.STATUS_ZOMBIE:
                alive.add(child)
        except psutil.NoSuchProcess:
            continue
    return alive


def master_pid(proc: subprocess.Popen, via_launcher: bool = False) -> int:
    """The process whose children are the workers: ``proc`` itself, or with
    ``via_launcher`` (a PyInstaller one-file executable: a bootloader that
    starts the real program as its only child) that child, once it exists."""
    if not via_launcher:
        return proc.pid
    kids = sorted(children(proc.pid))
    if not kids:
        raise FileNotFoundError(f"the launcher {proc.pid} has no child yet")
    return kids[0]


def wait_for_workers(proc: subprocess.Popen, count: int, timeout: float, log: Path,
                     via_launcher: bool = False) -> set[int]:
    """Poll until the master has ``count`` live children (bounded by ``timeout``)."""
    deadline = time.monotonic() + timeout
    seen: set[int] = set()
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise Unavailable(f"exited with {proc.returncode} at start-up{tail(log)}")
        try:
            seen = live_children(master_pid(proc, via_launcher))
        except (FileNotFoundError, psutil.NoSuchProcess):
            seen = set()
        if len(seen) >= count:
            return seen
        time.sleep(0.05)  # start-up poll, bounded by the deadline
    raise Unavailable(f"only {len(seen)} of {count} workers after {timeout:g} s{tail(log)}")


def tail(log: Path, lines: int = 3) -> str:
    try:
        text = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return ("; log: " + " | ".join(line.strip()[:160] for line in text[-lines:])) if text else ""


def stop(proc: subprocess.Popen, marker: str) -> None:
    """SIGTERM the master (each drains/stops gracefully), then SIGKILL leftovers.

    Workers may sit in sessions of their own (circus setsid()s them) and may be
    started while the master is stopping, so leftovers are found by ``marker``
    (NAME=VALUE in the environment of everything this run started).
    """
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            pass
    name, _, value = marker.partition("=")
    for other in psutil.process_iter():
        try:
            if other.pid != os.getpid() and other.environ().get(name) == value:
                other.kill()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError):
            continue
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # started with start_new_session: pgid = pid
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        pass


# -------------------------------------------------------------------- peers
class Peer:
    """How to start one supervisor with N workers of the benchmark worker."""

    name = ""
    config = ""
    #: the started process is a launcher whose only child is the real master
    via_launcher = False

    def __init__(self, venv: Path | None, tmp: Path, args: argparse.Namespace) -> None:
        self.venv = venv
        self.tmp = tmp
        self.args = args
        #: in the environment of every supervisor and worker of this run (clean-up)
        self.marker = f"{MARKER}={tmp}"

    def command(self, workers: int, run: Path) -> tuple[list[str], dict[str, str]]:
        raise NotImplementedError

    def start(self, workers: int, label: str) -> tuple[subprocess.Popen, Path]:
        run = self.tmp / f"{self.name}-{label}"
        run.mkdir()
        argv, env = self.command(workers, run)
        env[MARKER] = str(self.tmp)
        log = run / "output.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(argv, env=env, cwd=run, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        return proc, log

    def bin(self, name: str) -> str:
        assert self.venv is not None
        path = self.venv / "bin" / name
        if not path.exists():
            raise Unavailable(f"{path.name} not installed")
        return str(path)


class Podsup(Peer):
    name = "podsup"
    #: the interpreter that runs ``-m podsup`` (None: this script's)
    python: str | None = None

    @property
    def config(self) -> str:  # type: ignore[override]
        where = "the bench venv's python" if self.python else "this python"
        return (f"{where} -m podsup run (this repository) --workers N --backoff-max 0 "
                "--crashloop-threshold 0 --http 127.0.0.1:<free> --control <tmp>/podsup.sock -- sleep 3600")

    def prefix(self) -> list[str]:
        return [self.python or sys.executable, "-m", "podsup"]

    def command(self, workers: int, run: Path) -> tuple[list[str], dict[str, str]]:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        argv = [*self.prefix(), "run", "--workers", str(workers),
                "--backoff-max", "0", "--crashloop-threshold", "0",
                "--http", f"127.0.0.1:{free_port()}", "--control", str(run / "podsup.sock"),
                "--", *WORKER]
        return argv, env


class PodsupBinary(Podsup):
    """The standalone executable (PyInstaller one-file): a bootloader process
    whose only child is podsup itself; both are counted in its RSS."""

    name = "podsup-binary"
    via_launcher = True
    binary = ""

    @property
    def config(self) -> str:  # type: ignore[override]
        return (f"{self.binary or 'dist/podsup'} run, same options as podsup; RSS = bootloader + podsup, "
                "thr = podsup's")

    def prefix(self) -> list[str]:
        if not self.binary:
            raise Unavailable("no binary (build it with scripts/build-binary.sh, or pass --binary)")
        return [self.binary]


class Uwsgi(Peer):
    name = "uwsgi"
    config = ("uwsgi --master --workers N --die-on-term --http-socket 127.0.0.1:<free> --wsgi-file app.py "
              "(trivial WSGI app; its workers are its own forks; --reload-mercy 0 --worker-reload-mercy 1 "
              "--min-worker-lifetime 0: no respawn throttle)")

    def command(self, workers: int, run: Path) -> tuple[list[str], dict[str, str]]:
        (run / "app.py").write_text(WSGI_APP)
        argv = [self.bin("uwsgi"), "--master", "--workers", str(workers), "--die-on-term",
                "--http-socket", f"127.0.0.1:{free_port()}", "--wsgi-file", str(run / "app.py"),
                "--callable", "app", "--min-worker-lifetime", "0", "--reload-mercy", "0",
                "--worker-reload-mercy", "1", "--disable-logging", "--logto", str(run / "uwsgi.log")]
        return argv, {**os.environ, "PYTHONPATH": ""}


class Gunicorn(Peer):
    name = "gunicorn"
    config = ("gunicorn -w N -k sync --bind 127.0.0.1:<free> --control-socket <tmp>/gunicorn.ctl "
              "app:app (trivial WSGI app; its workers are gunicorn's own Python processes)")

    def command(self, workers: int, run: Path) -> tuple[list[str], dict[str, str]]:
        (run / "app.py").write_text(WSGI_APP)
        argv = [self.bin("gunicorn"), "-w", str(workers), "-k", "sync",
                "--bind", f"127.0.0.1:{free_port()}", "--chdir", str(run),
                "--control-socket", str(run / "gunicorn.ctl"), "app:app"]
        return argv, {**os.environ, "PYTHONPATH": ""}


class Supervisord(Peer):
    name = "supervisord"
    config = ("supervisord -n, [program:w] command=sleep 3600 numprocs=N autorestart=true startsecs=0 "
              "startretries=1000000 stdout/stderr_logfile=NONE, unix_http_server in <tmp>")

    def command(self, workers: int, run: Path) -> tuple[list[str], dict[str, str]]:
        conf = run / "supervisord.conf"
        conf.write_text(f"""\
[unix_http_server]
file = {run}/supervisor.sock

[supervisord]
nodaemon = true
logfile = {run}/supervisord.log
pidfile = {run}/supervisord.pid
childlogdir = {run}

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[program:w]
command = {" ".join(WORKER)}
process_name = %(program_name)s_%(process_num)02d
numprocs = {workers}
autostart = true
autorestart = true
startsecs = 0
startretries = 1000000
stdout_logfile = NONE
stderr_logfile = NONE
""")
        return [self.bin("supervisord"), "-n", "-c", str(conf)], {**os.environ, "PYTHONPATH": ""}


class Circus(Peer):
    name = "circus"

    @property
    def config(self) -> str:  # type: ignore[override]
        return (f"circusd, [circus] check_delay={self.args.circus_check_delay:g} (its default 1) ipc "
                "endpoints in <tmp>, statsd off; [watcher:w] cmd=sleep 3600 numprocesses=N respawn=true "
                "max_retry=-1 warmup_delay=0; only the arbiter process (circusd) is measured")

    def command(self, workers: int, run: Path) -> tuple[list[str], dict[str, str]]:
        conf = run / "circus.ini"
        conf.write_text(f"""\
[circus]
check_delay = {self.args.circus_check_delay}
endpoint = ipc://{run}/circus-ctl.sock
pubsub_endpoint = ipc://{run}/circus-pub.sock
statsd = false

[watcher:w]
cmd = {WORKER[0]}
args = {" ".join(WORKER[1:])}
numprocesses = {workers}
respawn = true
max_retry = -1
warmup_delay = 0

[env:w]
{MARKER} = {self.tmp}
""")
        return [self.bin("circusd"), str(conf)], {**os.environ, "PYTHONPATH": ""}


# ------------------------------------------------------------- measuring
def measure_latency(peer: Peer, workers: int, args: argparse.Namespace) -> dict:
    proc, log = peer.start(workers, "latency")
    try:
        pool = wait_for_workers(proc, workers, args.start_timeout, log, peer.via_launcher)
        master = master_pid(proc, peer.via_launcher)
        time.sleep(args.settle)
        order = sorted(pool, key=lambda pid: psutil.Process(pid).create_time())  # oldest first
        latencies: list[float] = []
        misses = 0
        deadline = time.monotonic() + args.latency_seconds
        while len(latencies) < args.kills and time.monotonic() < deadline and misses < 3:
            if proc.poll() is not None:
                raise Unavailable(f"exited with {proc.returncode} during the kills{tail(log)}")
            before = children(master)
            while order and order[0] not in before:
                order.pop(0)  # gone by itself: not ours to time
            if not order:
                order = sorted(live_children(master))
                continue
            victim = order.pop(0)
            give_up = time.perf_counter() + args.kill_timeout
            started = time.perf_counter()
            os.kill(victim, signal.SIGKILL)
            new: set[int] = set()
            while True:
                new = children(master) - before
                now = time.perf_counter()
                if new or now > give_up:
                    break
                time.sleep(0.0002)
            if new:
                latencies.append(now - started)
                order.extend(sorted(new))
            else:
                misses += 1
            # a random part, as long as this peer's slowest respawn (<= 1 s), so
            # kills do not phase-lock to a supervisor's periodic timer
            time.sleep(args.gap + random.uniform(0, min(1.0, 2 * max(latencies, default=0.0))))
        if not latencies:
            raise Unavailable(f"no replacement seen within {args.kill_timeout:g} s{tail(log)}")
        return {"latencies": latencies, "misses": misses}
    finally:
        stop(proc, peer.marker)


def _schedstat(pid: int) -> dict[int, float]:
    """Seconds on CPU of each thread of ``pid`` (nanosecond counters)."""
    used = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/schedstat") as fh:
            used[int(tid)] = int(fh.read().split()[0]) / 1e9
    return used


def cpu_window(pid: int, seconds: float) -> float:
    """CPU seconds per second of ``pid`` (all threads) over ``seconds``.

    From the threads' nanosecond schedstat counters when the set of threads
    did not change (clock-tick utime/stime would only resolve 0.1 % over
    10 s), else from psutil's cpu_times (which also keeps ended threads).
    """
    proc = psutil.Process(pid)
    times0, t0 = proc.cpu_times(), time.monotonic()
    try:
        sched0 = _schedstat(pid)
    except OSError:
        sched0 = None
    time.sleep(seconds)  # the measuring window: this script does nothing else
    try:
        sched1 = _schedstat(pid) if sched0 is not None else None
    except OSError:
        sched1 = None
    times1, t1 = proc.cpu_times(), time.monotonic()
    if sched0 is not None and sched1 is not None and sched0.keys() == sched1.keys():
        used = sum(sched1.values()) - sum(sched0.values())
    else:
        used = (times1.user + times1.system) - (times0.user + times0.system)
    return used / (t1 - t0)


def measure_idle(peer: Peer, workers: int, args: argparse.Namespace) -> dict:
    proc, log = peer.start(workers, "idle")
    try:
        pool = wait_for_workers(proc, workers, args.start_timeout, log, peer.via_launcher)
        pid = master_pid(proc, peer.via_launcher)
        time.sleep(args.settle)
        master = psutil.Process(pid)
        cpu = cpu_window(pid, args.idle_seconds)
        now = live_children(pid)
        rss = master.memory_info().rss
        if pid != proc.pid:  # the launcher's memory is the supervisor's too
            rss += psutil.Process(proc.pid).memory_info().rss
        result = {"cpu": cpu * 100, "rss": rss, "threads": master.num_threads(), "workers": len(now),
                  "extra": len(now) - workers, "replaced": len(pool - now)}
        after = getattr(peer, "after_idle", None)
        if after is not None:
            result.update(after(proc, pid, log))
        return result
    finally:
        stop(proc, peer.marker)


# ---------------------------------------------------------------- set-up
def make_venv(path: Path, reuse: bool) -> tuple[dict[str, str], str]:
    """Create the venv and pip install the peers; returns failures by peer and a note."""
    failures: dict[str, str] = {}
    started = time.monotonic()
    python = path / "bin" / "python"
    if not (reuse and python.exists()):
        out = subprocess.run([sys.executable, "-m", "venv", str(path)], capture_output=True, text=True)
        if out.returncode != 0:
            reason = (out.stderr.strip().splitlines() or ["venv failed"])[-1]
            return {peer: f"venv: {reason}" for peer in DISTRIBUTIONS}, ""
    wanted = [*DISTRIBUTIONS.values(), *PODSUP_DEPS]
    out = subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *wanted],
                         capture_output=True, text=True)
    if out.returncode != 0:  # one at a time, so one broken peer does not sink the others
        for peer, dist in DISTRIBUTIONS.items():
            one = subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                                  dist], capture_output=True, text=True)
            if one.returncode != 0:
                errors = [line for line in one.stderr.splitlines() if "ERROR" in line] or ["pip failed"]
                failures[peer] = f"pip install {dist}: {errors[-1].strip()[:120]}"
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *PODSUP_DEPS],
                       capture_output=True, text=True)  # else podsup runs with this script's python
    return failures, f"venv {path} ready in {time.monotonic() - started:.0f} s"


def versions(venv: Path) -> dict[str, str]:
    script = ("import importlib.metadata as m\n"
              f"for d in {list(DISTRIBUTIONS.values())!r}:\n"
              "    try: print(d, m.version(d))\n"
              "    except m.PackageNotFoundError: print(d, '-')\n")
    out = subprocess.run([str(venv / "bin" / "python"), "-c", script], capture_output=True, text=True)
    found = dict(line.split(" ", 1) for line in out.stdout.splitlines() if " " in line)
    result = {"podsup": f"{podsup.__version__} (this repository)"}
    for peer, dist in DISTRIBUTIONS.items():
        result[peer] = found.get(dist, "-")
    return result


# ----------------------------------------------------------------- output
def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def row(name: str, latency: dict | str, idle: dict | str, args: argparse.Namespace) -> list[str]:
    if isinstance(latency, str):
        cells = [latency, "", "", ""]
    else:
        ordered = sorted(latency["latencies"])
        kills = f"{len(ordered)}" + (f" ({latency['misses']} missed)" if latency["misses"] else "")
        cells = [f"{statistics.median(ordered) * 1000:.2f}", f"{percentile(ordered, 0.99) * 1000:.2f}",
                 f"{ordered[-1] * 1000:.2f}", kills]
    if isinstance(idle, str):
        cells += [idle, "", "", ""]
    else:
        cells += [f"{idle['cpu']:.2f}", f"{idle['rss'] / 1e6:.1f}", str(idle["threads"]), str(idle["workers"])]
    return [name, *cells]


def table(rows: list[list[str]]) -> str:
    header = ["supervisor", "p50 ms", "p99 ms", "max ms", "kills", "idle CPU %", "RSS MB", "thr", "workers"]
    # a long n/a reason goes on its own line instead of stretching its column
    short = [r if all(len(c) <= 24 for c in r) else [r[0]] + ["n/a" if len(c) > 24 else c for c in r[1:]]
             for r in rows]
    widths = [max(len(r[i]) for r in [header, *short]) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(header, widths)))]
    lines.append("  ".join("-" * w for w in widths))
    for full, r in zip(rows, short):
        lines.append("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))))
        lines += [f"    {full[0]}: {c}" for c in full[1:] if len(c) > 24]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=300, help="SIGKILLs timed per supervisor")
    parser.add_argument("--workers", type=int, default=64, help="pool size of the idle measurement")
    parser.add_argument("--latency-workers", type=int, default=8, help="pool size of the latency measurement")
    parser.add_argument("--idle-seconds", type=float, default=10.0, help="idle measuring window")
    parser.add_argument("--latency-seconds", type=float, default=60.0,
                        help="wall-time cap of one supervisor's kills (a slow one reports fewer)")
    parser.add_argument("--gap", type=float, default=0.1,
                        help="pause after each replacement (gunicorn sleeps up to 0.1 s after a spawn)")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds after all workers are up")
    parser.add_argument("--kill-timeout", type=float, default=5.0, help="a replacement later than this is a miss")
    parser.add_argument("--start-timeout", type=float, default=60.0)
    parser.add_argument("--circus-check-delay", type=float, default=1.0,
                        help="circus's [circus] check_delay (its default 1 s; it respawns only then)")
    parser.add_argument("--peers", default=",".join(PEERS), help="comma-separated subset of " + ",".join(PEERS))
    parser.add_argument("--venv", type=Path, help="use (create if missing, keep) this venv instead of a throwaway one")
    parser.add_argument("--quick", action="store_true",
                        help="defaults of 50 kills, 3 s idle window, 15 s latency cap, 2 s settle")
    if parser.parse_known_args()[0].quick:  # explicit flags still win
        parser.set_defaults(kills=50, idle_seconds=3.0, latency_seconds=15.0, settle=2.0)
    args = parser.parse_args()
    wanted = [p.strip() for p in args.peers.split(",") if p.strip()]
    unknown = [p for p in wanted if p not in PEERS]
    if unknown:
        parser.error(f"unknown peer(s): {', '.join(unknown)}")

    tmp = Path(tempfile.mkdtemp(prefix="podsup-bench-respawn-"))
    venv = args.venv.resolve() if args.venv else tmp / "venv"
    try:
        failures, note = ({}, "") if wanted == ["podsup"] else make_venv(venv, reuse=args.venv is not None)
        if note:
            print(note, file=sys.stderr)
        found = versions(venv) if venv.exists() else {"podsup": f"{podsup.__version__} (this repository)"}
        kinds = {"podsup": Podsup, "gunicorn": Gunicorn, "supervisord": Supervisord, "circus": Circus,
                 "uwsgi": Uwsgi}
        results: dict[str, tuple[dict | str, dict | str]] = {}
        configs: dict[str, str] = {}
        for name in wanted:
            peer = kinds[name](venv, tmp, args)
            configs[name] = peer.config
            if name in failures:
                results[name] = (f"n/a ({failures[name]})", "n/a")
                continue
            outcome: list[dict | str] = []
            for what, func, size in (("latency", measure_latency, args.latency_workers),
                                     ("idle", measure_idle, args.workers)):
                print(f"{name}: {what} with {size} workers ...", file=sys.stderr, flush=True)
                try:
                    outcome.append(func(peer, size, args))
                except Unavailable as exc:
                    outcome.append(f"n/a ({exc})")
                except (OSError, psutil.Error) as exc:
                    outcome.append(f"n/a ({type(exc).__name__}: {exc})")
            results[name] = (outcome[0], outcome[1])

        print(f"Respawn latency ({args.latency_workers} workers; SIGKILL the oldest worker, time until the "
              f"master has a new child; {args.kills} kills or {args.latency_seconds:g} s per supervisor, "
              f"pause {args.gap * 1000:g} ms + random 0..2x slowest so far, <= 1 s) and idle master cost ({args.workers} workers, "
              f"{args.idle_seconds:g} s window after {args.settle:g} s settle); "
              f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, worker: {' '.join(WORKER)} "
              "(gunicorn: its sync workers)")
        print()
        print(table([row(name, *results[name], args) for name in wanted]))
        print()
        print("targets: p99 respawn <= 10 ms; idle CPU well under 1 % of a core; RSS < 30 MB "
              "(idle CPU = user+system of the master process, all threads, % of one core; "
              "RSS = master only; thr = master's threads)")
        for name in wanted:
            idle = results[name][1]
            if isinstance(idle, dict) and (idle["extra"] or idle["replaced"]):
                print(f"note: {name}: {idle['extra']} non-worker children, "
                      f"{idle['replaced']} workers replaced during the idle window")
        print()
        print("versions:")
        for name in wanted:
            print(f"  {name:<12} {found.get(name, '-')}")
        print("configured as:")
        for name in wanted:
            print(f"  {name:<12} {configs[name]}")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
