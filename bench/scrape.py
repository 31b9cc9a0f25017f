"""/metrics scrape latency and podsup's CPU while workers report at a high rate.

Prints figures, asserts nothing. A real ``podsup run`` supervises N workers
(default 64) that together send R ``done`` reports per second (default 1,000;
each job is a ``busy`` then a ``done <seconds>`` datagram, so 2·R datagrams/s).
Then, with the pool at that rate:

* podsup's CPU (user + system of the podsup process, % of one core) and RSS
  over a measuring window, and the ``done`` rate /metrics saw (podsup_requests_total);
* the latency of sequential ``GET /metrics`` (p50/p99/max) and the body size,
  with the load and, for comparison, with the same pool silent.

    python3 bench/scrape.py [--workers 64] [--rate 1000] [--seconds 10] [--scrapes 50]
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

#: One worker: a job every N/R seconds (PODSUP_BENCH_PERIOD), reported as
#: busy + done over the raw datagram socket (what a PHP or Go worker does).
#: SIGUSR1 (forwarded by podsup) toggles the load, so the silent baseline
#: uses the same pool.
WORKER = r"""
import os, signal, socket, time
path = os.environ["PODSUP_REPORT"]
period = float(os.environ["PODSUP_BENCH_PERIOD"])
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
on = [True]
signal.signal(signal.SIGUSR1, lambda *_: on.__setitem__(0, not on[0]))
next_at = time.monotonic() + period * (int(os.environ["PODSUP_WORKER_ID"]) % 16) / 16
while True:
    now = time.monotonic()
    if now < next_at:
        time.sleep(next_at - now)
    next_at += period
    if on[0]:
        try:
            s.sendto(b"busy", path)
            s.sendto(b"done 0.004", path)
        except OSError:
            pass
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(port: int, path: str) -> tuple[float, bytes]:
    started = time.perf_counter()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as resp:
        body = resp.read()
    return time.perf_counter() - started, body


def sample(body: bytes, name: str) -> float:
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def status(control: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "podsup", "status", "--json", "--control", control],
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    return json.loads(out.stdout) if out.returncode == 0 else {}


def cpu_seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system


def scrapes(port: int, count: int) -> tuple[list[float], int]:
    latencies, size = [], 0
    for _ in range(count):
        elapsed, body = get(port, "/metrics")
        latencies.append(elapsed)
        size = len(body)
    return latencies, size


def describe(latencies: list[float]) -> str:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (f"p50 {statistics.median(ordered) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
            f"max {ordered[-1] * 1000:.1f} ms")


def _schedstat_seconds(pid: int) -> float:
    """CPU seconds of every live thread of ``pid`` (nanosecond counters)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as fh:
                total += int(fh.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total / 1e9


def cpu_seconds_of(proc: psutil.Process) -> float:
    """CPU seconds of ``proc``: schedstat (ns) when it has a fixed set of threads, else clock ticks."""
    try:
        return _schedstat_seconds(proc.pid)
    except OSError:
        return cpu_seconds(proc)


def measure(podsup_argv: list[str], workers: int = 64, rate: float = 1000.0, seconds: float = 10.0,
            count: int = 50, python: str = sys.executable, env: dict[str, str] | None = None,
            via_launcher: bool = False) -> dict:
    """Run ``podsup_argv run ...`` (e.g. [python, "-m", "podsup"] or [binary]) with ``workers``
    reporting ``rate`` done/s in total; return the figures (see the module docstring).
    ``via_launcher``: the started process is a launcher (the PyInstaller
    one-file bootloader) whose only child is podsup: that child is measured."""
    tmp = tempfile.mkdtemp(prefix="podsup-bench-")
    port, control = free_port(), os.path.join(tmp, "control.sock")
    env = {**(os.environ if env is None else env), "PYTHONPATH": str(ROOT),
           "PODSUP_BENCH_PERIOD": str(workers / rate)}
    podsup = subprocess.Popen([*podsup_argv, "run", "--workers", str(workers),
                               "--http", f"127.0.0.1:{port}", "--control", control,
                               "--", python, "-c", WORKER],
                              env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proc = psutil.Process(podsup.pid)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            st = status(control)
            if st.get("ready"):
                break
            time.sleep(0.5)  # bench start-up poll, bounded by the deadline
        else:
            raise RuntimeError("podsup did not become ready within 120 s")
        if via_launcher:
            proc = psutil.Process(min(c.pid for c in proc.children()))
        time.sleep(3)  # let the report rate settle

        _, body = get(port, "/metrics")
        cpu0, done0, t0 = cpu_seconds_of(proc), sample(body, "podsup_requests_total"), time.monotonic()
        time.sleep(seconds)  # the measuring window, nothing else running in this process
        _, body = get(port, "/metrics")
        cpu1, done1, t1 = cpu_seconds_of(proc), sample(body, "podsup_requests_total"), time.monotonic()
        loaded, size = scrapes(port, count)
        rss = proc.memory_info().rss
        threads = proc.num_threads()

        podsup.send_signal(signal.SIGUSR1)  # forwarded: the workers stop reporting
        time.sleep(2)
        cpu2, t2 = cpu_seconds_of(proc), time.monotonic()
        time.sleep(seconds / 2)
        idle_cpu = (cpu_seconds_of(proc) - cpu2) / (time.monotonic() - t2) * 100
        silent, _ = scrapes(port, count)
        return {"absorbed": (done1 - done0) / (t1 - t0), "cpu": (cpu1 - cpu0) / (t1 - t0) * 100,
                "idle_cpu": idle_cpu, "rss": rss, "threads": threads, "size": size,
                "loaded": loaded, "silent": silent}
    finally:
        podsup.send_signal(signal.SIGINT)
        try:
            podsup.wait(60)
        except subprocess.TimeoutExpired:
            podsup.kill()
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)


def percentiles(latencies: list[float]) -> tuple[float, float, float]:
    """(p50, p99, max) in seconds."""
    ordered = sorted(latencies)
    return (statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], ordered[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=64)
    parser.add_argument("--rate", type=float, default=1000.0, help="done reports per second, all workers together")
    parser.add_argument("--seconds", type=float, default=10.0, help="measuring window")
    parser.add_argument("--scrapes", type=int, default=50)
    args = parser.parse_args()
    try:
        got = measure([sys.executable, "-m", "podsup"], args.workers, args.rate, args.seconds, args.scrapes)
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"podsup with {args.workers} workers, target {args.rate:g} done/s "
          f"({2 * args.rate:g} datagrams/s), {os.cpu_count()} CPUs")
    print(f"  done reports absorbed:   {got['absorbed']:.0f}/s")
    print(f"  podsup CPU under load:   {got['cpu']:.1f}% of one core")
    print(f"  podsup CPU, pool silent: {got['idle_cpu']:.1f}% of one core")
    print(f"  podsup RSS:              {got['rss'] / 2**20:.1f} MiB ({got['threads']} threads)")
    print(f"  /metrics body:           {got['size'] / 1024:.1f} KiB")
    print(f"  /metrics under load:     {describe(got['loaded'])} ({args.scrapes} sequential scrapes)")
    print(f"  /metrics, pool silent:   {describe(got['silent'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
