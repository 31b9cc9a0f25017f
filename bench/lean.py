"""Every row of issue 13's table in one run: podsup's own cost beside its peers'.

Prints figures side by side, asserts nothing. In one run:

* **supervisor RSS, 64 idle workers** (and the master's threads and idle CPU):
  podsup as a Python package (run by the bench venv's interpreter: a clean
  site-packages, like a pod's image; and by this script's interpreter), the
  standalone binary (bootloader + podsup), gunicorn, supervisord, circus and
  uWSGI (pip-installed into the venv in the same run). For podsup also the RSS
  after three ``/metrics`` scrapes, the figure a scraped pod really pays;
* **CPU absorbing 1,000 ``done`` reports/s from 64 workers** (CPU seconds of
  every podsup thread from /proc schedstat over the window, % of one core),
  and **/metrics scrape p50/p99 under that load** and with the pool silent
  (bench/scrape.py);
* **crash → replacement pid p50/p99** (8 workers, SIGKILL, time until the
  master has a new child: bench/respawn.py);
* **start-up, binary vs package**: ``podsup --version`` (wall p50 and CPU
  seconds of the process, from its rusage) and ``podsup run --workers 1`` until
  its first worker exists (wall p50).

    python3 bench/lean.py [--quick] [--venv DIR] [--binary PATH | --no-binary]
                          [--peers podsup,gunicorn,...] [--kills 100] [--seconds 10]

The binary is built with scripts/build-binary.sh into the run's temporary
directory unless ``--binary`` names one (PyInstaller must be installed for
this interpreter; otherwise its column is n/a). The machine is shared: wall
times (latencies, start-up) move with the load, so the CPU seconds and RSS are
the figures to compare across runs; the load average is printed with them.
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import psutil  # noqa: E402

import respawn  # noqa: E402
import scrape  # noqa: E402

ROOT = respawn.ROOT
#: issue 13's goals, printed beside the figures
GOALS = {
    "rss": "<= 18 MB (package), <= 25 MB (binary)",
    "cpu": "<= 3 %",
    "scrape": "<= 2 / <= 5 ms",
    "respawn": "<= 1.0 / <= 2.5 ms",
    "startup": "binary <= 80 ms",
}


class ScrapedPodsup(respawn.Podsup):
    """podsup whose RSS is also read after a few /metrics scrapes."""

    def command(self, workers: int, run: Path) -> tuple[list[str], dict[str, str]]:
        argv, env = super().command(workers, run)
        at = argv.index("--http") + 1
        self.http_port = int(argv[at].rpartition(":")[2])
        return argv, env

    def after_idle(self, proc: subprocess.Popen, pid: int, log: Path) -> dict:
        for _ in range(3):
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/metrics", timeout=30) as resp:
                resp.read()
        rss = psutil.Process(pid).memory_info().rss
        if pid != proc.pid:
            rss += psutil.Process(proc.pid).memory_info().rss
        return {"rss_scraped": rss, "threads_scraped": psutil.Process(pid).num_threads()}


class VenvPodsup(ScrapedPodsup):
    name = "podsup"


class HostPodsup(ScrapedPodsup):
    name = "podsup (host py)"


class BinaryPodsup(respawn.PodsupBinary, ScrapedPodsup):
    name = "podsup-binary"


# ------------------------------------------------------------- start-up
def startup_version(argv: list[str], runs: int) -> dict:
    """``argv --version``: wall p50 and CPU seconds (user+system of the process tree, rusage)."""
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        out = subprocess.run([*argv, "--version"], capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if out.returncode != 0:
            raise respawn.Unavailable(f"--version exited {out.returncode}")
        cpus.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    return {"wall": statistics.median(walls), "cpu": statistics.median(cpus)}


def startup_first_worker(argv: list[str], runs: int, via_launcher: bool, tmp: Path) -> float:
    """``argv run --workers 1 -- sleep 3600`` until the master has its worker: wall p50."""
    times = []
    for i in range(runs):
        control = tmp / f"startup-{i}.sock"
        started = time.perf_counter()
        proc = subprocess.Popen([*argv, "run", "--workers", "1", "--http", "127.0.0.1:0", "--control", str(control),
                                 "--", *respawn.WORKER], env={**os.environ, "PYTHONPATH": str(ROOT)},
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            deadline = started + 60
            while time.perf_counter() < deadline:
                try:
                    if respawn.children(respawn.master_pid(proc, via_launcher)):
                        break
                except (FileNotFoundError, ProcessLookupError):
                    pass
                if proc.poll() is not None:
                    raise respawn.Unavailable(f"run exited {proc.returncode} at start-up")
                time.sleep(0.0005)
            times.append(time.perf_counter() - started)
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
    return statistics.median(times)


# ----------------------------------------------------------------- set-up
def build_binary(tmp: Path) -> tuple[str, str]:
    """(path, "") of a freshly built binary, or ("", why not)."""
    dist = tmp / "dist"
    out = subprocess.run(["bash", str(ROOT / "scripts" / "build-binary.sh"), "--dist", str(dist)],
                         capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        lines = (out.stderr.strip() or out.stdout.strip() or "build failed").splitlines()
        return "", f"build: {lines[-1][:100]}"
    return str(dist / "podsup"), ""


def venv_python_has_deps(venv: Path) -> bool:
    python = venv / "bin" / "python"
    if not python.exists():
        return False
    probe = subprocess.run([str(python), "-c", "import psutil, prometheus_client, yaml"], capture_output=True)
    return probe.returncode == 0


# ----------------------------------------------------------------- output
def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def latency_cell(result: dict | str) -> str:
    if isinstance(result, str):
        return result
    ordered = sorted(result["latencies"])
    return f"{ms(statistics.median(ordered))} / {ms(respawn.percentile(ordered, 0.99))} ({len(ordered)})"


def print_table(columns: list[str], rows: list[tuple[str, list[str], str]]) -> None:
    header = ["measure", *columns, "goal"]
    body = [[label, *cells, goal] for label, cells, goal in rows]
    notes: list[str] = []
    for r in body:  # a long n/a reason goes under the table instead of stretching its column
        for i, cell in enumerate(r[1:-1], start=1):
            if len(cell) > 28:
                notes.append(f"  {r[0]} / {header[i]}: {cell}")
                r[i] = "n/a*"
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    print("  ".join(c.ljust(w) for c, w in zip(header, widths)))
    print("  ".join("-" * w for w in widths))
    for r in body:
        print("  ".join(c.ljust(w) if i in (0, len(r) - 1) else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
    for note in notes:
        print(note)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=64, help="pool size of the RSS and load rows")
    parser.add_argument("--latency-workers", type=int, default=8)
    parser.add_argument("--kills", type=int, default=100, help="SIGKILLs timed per supervisor")
    parser.add_argument("--latency-seconds", type=float, default=30.0)
    parser.add_argument("--idle-seconds", type=float, default=5.0)
    parser.add_argument("--settle", type=float, default=2.0)
    parser.add_argument("--rate", type=float, default=1000.0, help="done reports per second under load")
    parser.add_argument("--seconds", type=float, default=10.0, help="load measuring window")
    parser.add_argument("--scrapes", type=int, default=100)
    parser.add_argument("--startup-runs", type=int, default=10)
    parser.add_argument("--peers", default="gunicorn,supervisord,circus,uwsgi",
                        help="peers beside podsup, from " + ",".join(respawn.DISTRIBUTIONS))
    parser.add_argument("--venv", type=Path, help="use (create if missing, keep) this venv")
    parser.add_argument("--binary", help="use this podsup executable instead of building one")
    parser.add_argument("--no-binary", action="store_true", help="skip the standalone binary")
    parser.add_argument("--quick", action="store_true",
                        help="40 kills, 3 s idle window, 5 s load window, 50 scrapes, 5 start-ups")
    if parser.parse_known_args()[0].quick:
        parser.set_defaults(kills=40, idle_seconds=3.0, seconds=5.0, scrapes=50, startup_runs=5,
                            latency_seconds=15.0)
    args = parser.parse_args()
    args.gap, args.kill_timeout, args.start_timeout, args.circus_check_delay = 0.1, 5.0, 60.0, 1.0
    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    unknown = [p for p in peers if p not in respawn.DISTRIBUTIONS]
    if unknown:
        parser.error(f"unknown peer(s): {', '.join(unknown)}")

    tmp = Path(tempfile.mkdtemp(prefix="podsup-bench-lean-"))
    venv = args.venv.resolve() if args.venv else tmp / "venv"
    load0 = os.getloadavg()
    try:
        print("setting up the venv (peers from PyPI) ...", file=sys.stderr, flush=True)
        failures, note = respawn.make_venv(venv, reuse=args.venv is not None)
        if note:
            print(note, file=sys.stderr)
        binary, binary_why = (args.binary or "", "") if (args.binary or args.no_binary) else ("", "")
        if not args.binary and not args.no_binary:
            print("building the standalone binary ...", file=sys.stderr, flush=True)
            binary, binary_why = build_binary(tmp)
        if args.no_binary:
            binary_why = "skipped (--no-binary)"

        # the podsup columns: (label, peer instance)
        columns: list[tuple[str, respawn.Peer]] = []
        venv_ok = venv_python_has_deps(venv)
        if venv_ok:
            pkg = VenvPodsup(venv, tmp, args)
            pkg.python = str(venv / "bin" / "python")
            columns.append(("podsup", pkg))
        columns.append(("podsup (host py)" if venv_ok else "podsup", HostPodsup(venv, tmp, args)))
        binp = BinaryPodsup(venv, tmp, args)
        binp.binary = binary
        columns.append(("podsup-binary", binp))
        kinds = {"gunicorn": respawn.Gunicorn, "supervisord": respawn.Supervisord, "circus": respawn.Circus,
                 "uwsgi": respawn.Uwsgi}
        for name in peers:
            columns.append((name, kinds[name](venv, tmp, args)))

        idle: dict[str, dict | str] = {}
        latency: dict[str, dict | str] = {}
        for label, peer in columns:
            if peer.name in failures:
                idle[label] = latency[label] = f"n/a ({failures[peer.name]})"
                continue
            if isinstance(peer, respawn.PodsupBinary) and not binary:
                idle[label] = latency[label] = f"n/a ({binary_why})"
                continue
            for what, func, size, into in (("idle", respawn.measure_idle, args.workers, idle),
                                           ("latency", respawn.measure_latency, args.latency_workers, latency)):
                print(f"{label}: {what} with {size} workers ...", file=sys.stderr, flush=True)
                try:
                    into[label] = func(peer, size, args)
                except respawn.Unavailable as exc:
                    into[label] = f"n/a ({exc})"
                except (OSError, psutil.Error) as exc:
                    into[label] = f"n/a ({type(exc).__name__}: {exc})"

        # load and start-up: podsup only (package, and start-up of the binary)
        podsup_labels = [label for label, peer in columns if isinstance(peer, respawn.Podsup)]
        loads: dict[str, dict | str] = {}
        starts: dict[str, tuple[dict, float] | str] = {}
        for label, peer in columns:
            if not isinstance(peer, respawn.Podsup):
                continue
            if isinstance(peer, respawn.PodsupBinary) and not binary:
                loads[label] = starts[label] = f"n/a ({binary_why})"
                continue
            prefix = peer.prefix()
            print(f"{label}: {args.rate:g} done/s from {args.workers} workers ...", file=sys.stderr, flush=True)
            try:
                loads[label] = scrape.measure(prefix, args.workers, args.rate, args.seconds, args.scrapes,
                                              python=sys.executable, via_launcher=peer.via_launcher)
            except (RuntimeError, OSError, psutil.Error) as exc:
                loads[label] = f"n/a ({exc})"
            print(f"{label}: start-up x{args.startup_runs} ...", file=sys.stderr, flush=True)
            try:
                starts[label] = (startup_version(prefix, args.startup_runs),
                                 startup_first_worker(prefix, args.startup_runs, peer.via_launcher, tmp))
            except (respawn.Unavailable, OSError) as exc:
                starts[label] = f"n/a ({exc})"

        labels = [label for label, _ in columns]

        def cell(table: dict, label: str, render) -> str:
            value = table.get(label, "-")
            return value if isinstance(value, str) else render(value)

        rows = [
            (f"RSS MB, {args.workers} idle workers", [cell(idle, l, lambda v: f"{v['rss'] / 1e6:.1f}") for l in labels],
             GOALS["rss"]),
            ("  after 3 /metrics scrapes", [cell(idle, l, lambda v: f"{v['rss_scraped'] / 1e6:.1f}"
                                                 if "rss_scraped" in v else "-") for l in labels], ""),
            ("  master threads", [cell(idle, l, lambda v: str(v["threads"])) for l in labels], ""),
            ("  idle CPU % of a core", [cell(idle, l, lambda v: f"{v['cpu']:.2f}") for l in labels], ""),
            (f"CPU % absorbing {args.rate:g} done/s", [cell(loads, l, lambda v: f"{v['cpu']:.1f}")
                                                       if l in podsup_labels else "-" for l in labels], GOALS["cpu"]),
            ("  done/s absorbed", [cell(loads, l, lambda v: f"{v['absorbed']:.0f}") if l in podsup_labels else "-"
                                   for l in labels], ""),
            ("/metrics p50 / p99 ms, loaded", [cell(loads, l, lambda v: "{} / {}".format(
                *(ms(x) for x in scrape.percentiles(v["loaded"])[:2]))) if l in podsup_labels else "-"
                for l in labels], GOALS["scrape"]),
            ("  pool silent", [cell(loads, l, lambda v: "{} / {}".format(
                *(ms(x) for x in scrape.percentiles(v["silent"])[:2]))) if l in podsup_labels else "-"
                for l in labels], ""),
            ("  body KiB, threads", [cell(loads, l, lambda v: f"{v['size'] / 1024:.1f}, {v['threads']}")
                                     if l in podsup_labels else "-" for l in labels], ""),
            ("crash->new pid p50 / p99 ms (n)", [cell(latency, l, latency_cell) for l in labels], GOALS["respawn"]),
            ("start-up: --version ms (CPU ms)", [cell(starts, l, lambda v: f"{ms(v[0]['wall'])} ({ms(v[0]['cpu'])})")
                                                if l in podsup_labels else "-" for l in labels], GOALS["startup"]),
            ("  run -> first worker ms", [cell(starts, l, lambda v: ms(v[1])) if l in podsup_labels else "-"
                                          for l in labels], ""),
        ]
        load1 = os.getloadavg()
        print(f"podsup lean bench: {os.cpu_count()} CPUs (shared: load average {load0[0]:.2f} at the start, "
              f"{load1[0]:.2f} at the end), Python {sys.version.split()[0]}; RSS and CPU seconds are the "
              "repeatable figures, wall times move with the load")
        print()
        print_table(labels, rows)
        print()
        found = respawn.versions(venv) if venv.exists() else {}
        print("versions: " + ", ".join(f"{k} {v}" for k, v in found.items()))
        print("configured as:")
        for label, peer in columns:
            print(f"  {label:<17} {peer.config}")
        print(f"  load: {args.workers} workers of `python -c <bench/scrape.py WORKER>` sending busy + done "
              f"every {args.workers / args.rate:g} s each; {args.scrapes} sequential scrapes")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
