"""Zero-loss figure: a Redis-queue pool under rolling reloads, scaling,
--max-requests recycling and ``drain --wait`` + TERM (issue 11, part 1).

One podsup run (``--workers 5``) of bench/queue_worker.py, a worker that boots
for ``--boot`` seconds (default 2: a framework loading) before it can take
jobs, against a real redis-server on a free loopback port. A producer pushes
job ids at ``--rate`` per second the whole time; the phases are:

1. all 5 workers able; a rolling reload (HUP) at 5 workers;
2. ``scale 7``, then ``scale 4``; a second reload at 4;
3. ``--recycle-seconds`` of load with ``--max-requests`` recycling;
4. the producer stops; ``podsup drain --wait`` with a SIGTERM 0.5 s later
   (preStop, then the kubelet), until podsup exits.

A sampler reads the set of workers able to take jobs (booted, not told to
stop, alive) every few milliseconds. Printed: jobs pushed / done / left in
the queue, **lost** (popped and never finished), **interrupted** (started,
never finished), **repeated** (finished twice), and the **minimum number of
able workers** during each reload and during recycling, against the desired
count. Asserts nothing.

    python3 bench/zero_loss.py [--boot 2] [--rate 40] [--recycle-seconds 15]
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
import redis  # noqa: E402

WORKER = str(Path(__file__).resolve().parent / "queue_worker.py")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    raise SystemExit(f"zero_loss: timed out after {timeout:g}s waiting for {what}")


class Redis:
    """A private redis-server (no persistence) on a free loopback port."""

    def __init__(self, directory: str) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            raise SystemExit("zero_loss: redis-server is not installed (scripts/install-deps.sh installs it)")
        self.port = free_port()
        self.proc = subprocess.Popen([exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", directory],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.client = redis.Redis(port=self.port, socket_timeout=5)
        wait(self._ping, 30, "redis-server")

    def _ping(self) -> bool:
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class Podsup:
    def __init__(self, args: list[str], env: dict[str, str], directory: str) -> None:
        self.control = os.path.join(directory, "control.sock")
        self.log_path = os.path.join(directory, "podsup.log")
        self.env = dict(os.environ, PYTHONPATH=str(ROOT), **env)
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "podsup", "run", "--http", "off", "--control", self.control, *args,
             "--", sys.executable, WORKER], env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True)

    def cli(self, *args: str) -> str:
        return subprocess.run([sys.executable, "-m", "podsup", *args, "--control", self.control],
                              env=self.env, capture_output=True, text=True, timeout=120).stdout

    def log(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as handle:
            return handle.read()

    def workers(self) -> set[int]:
        try:
            return {c.pid for c in psutil.Process(self.proc.pid).children()}
        except psutil.NoSuchProcess:
            return set()

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self._log.close()


class Sampler(threading.Thread):
    """Able workers over time: (monotonic, count) every few milliseconds."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.client = redis.Redis(port=port, socket_timeout=5)
        self.samples: list[tuple[float, int]] = []
        self.stop = threading.Event()

    def able(self) -> int:
        count = 0
        for member in self.client.smembers("able"):
            try:
                if psutil.Process(int(member)).status() != psutil.STATUS_ZOMBIE:
                    count += 1
            except psutil.NoSuchProcess:
                pass
        return count

    def run(self) -> None:
        while not self.stop.is_set():
            self.samples.append((time.monotonic(), self.able()))
            time.sleep(0.005)

    def minimum(self, start: float, end: float) -> int | None:
        values = [n for t, n in self.samples if start <= t <= end]
        return min(values) if values else None


class Producer(threading.Thread):
    def __init__(self, port: int, rate: float) -> None:
        super().__init__(daemon=True)
        self.client = redis.Redis(port=port, socket_timeout=5)
        self.rate = rate
        self.pushed = 0
        self.stop = threading.Event()

    def run(self) -> None:
        start = time.monotonic()
        while not self.stop.is_set():
            due = int((time.monotonic() - start) * self.rate)
            while self.pushed < due:
                self.pushed += 1
                self.client.lpush("jobs", str(self.pushed))
            time.sleep(0.01)


def reload(pod: Podsup, sampler: Sampler, desired: int) -> tuple[int | None, float]:
    """HUP; the window lasts until every old worker is gone and ``desired`` are able."""
    old = pod.workers()
    start = time.monotonic()
    pod.proc.send_signal(signal.SIGHUP)
    wait(lambda: not (pod.workers() & old) and sampler.able() == desired, 120, "the reload to finish")
    end = time.monotonic()
    return sampler.minimum(start, end), end - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--boot", type=float, default=2.0, help="seconds a worker needs before it can take jobs")
    parser.add_argument("--job", type=float, default=0.05, help="seconds per job")
    parser.add_argument("--rate", type=float, default=40.0, help="jobs pushed per second")
    parser.add_argument("--max-requests", type=int, default=60)
    parser.add_argument("--recycle-seconds", type=float, default=15.0)
    opts = parser.parse_args()

    directory = tempfile.mkdtemp(prefix="podsup-zero-loss-")
    server = Redis(directory)
    pod = Podsup(["--workers", "5", "--graceful-timeout", "30", "--max-requests", str(opts.max_requests),
                  "--max-requests-jitter", str(opts.max_requests // 2)],
                 {"BENCH_REDIS_PORT": str(server.port), "BOOT_SECONDS": str(opts.boot),
                  "JOB_SECONDS": str(opts.job)}, directory)
    sampler, producer = Sampler(server.port), Producer(server.port, opts.rate)
    rows: list[tuple[str, str]] = []
    try:
        sampler.start()
        wait(lambda: sampler.able() == 5, 60, "5 able workers")
        producer.start()
        time.sleep(1.0)
        low, took = reload(pod, sampler, 5)
        rows.append(("reload at 5 workers: min able", f"{low} of 5 ({took:.1f}s)"))
        pod.cli("scale", "7")
        wait(lambda: sampler.able() == 7, 60, "7 able workers")
        start = time.monotonic()
        pod.cli("scale", "4")
        wait(lambda: sampler.able() == 4 and len(pod.workers()) == 4, 60, "4 workers after scale 4")
        rows.append(("scale 7 -> 4: min able", f"{sampler.minimum(start, time.monotonic())} of 4"))
        low, took = reload(pod, sampler, 4)
        rows.append(("reload at 4 workers: min able", f"{low} of 4 ({took:.1f}s)"))
        before = len(re.findall(r"(?<!watchdog: )recycling worker .*reason=requests", pod.log()))
        start = time.monotonic()
        time.sleep(opts.recycle_seconds)
        # a recycle still under way at the end of the window is waited for
        wait(lambda: sampler.able() == 4 and len(pod.workers()) == 4, 60, "recycles to settle")
        recycles = len(re.findall(r"(?<!watchdog: )recycling worker .*reason=requests", pod.log())) - before
        rows.append((f"{recycles} --max-requests recycles at 4: min able",
                     f"{sampler.minimum(start, time.monotonic())} of 4"))
        producer.stop.set()
        producer.join()
        drain = threading.Thread(target=pod.cli, args=("drain", "--wait"), daemon=True)
        drain.start()
        time.sleep(0.5)
        pod.proc.send_signal(signal.SIGTERM)
        code = pod.proc.wait(120)
        drain.join(60)
        rows.append(("drain --wait + TERM: podsup exit code", str(code)))
    finally:
        sampler.stop.set()
        producer.stop.set()
        pod.close()

    client = server.client
    done = [int(x) for x in client.lrange("done", 0, -1)]
    started = {int(x) for x in client.lrange("started", 0, -1)}
    left = client.llen("jobs")
    unique = set(done)
    lost = producer.pushed - len(unique) - left
    server.stop()
    shutil.rmtree(directory, ignore_errors=True)

    rows = [("jobs pushed / done / left in queue", f"{producer.pushed} / {len(unique)} / {left}"),
            ("lost (popped, never finished)", str(lost)),
            ("interrupted (started, never finished)", str(len(started - unique))),
            ("repeated (finished twice)", str(len(done) - len(unique))), *rows]
    print(f"zero-loss bench: 5 workers booting {opts.boot:g}s, jobs {opts.job:g}s at {opts.rate:g}/s, "
          f"--max-requests {opts.max_requests}")
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")


if __name__ == "__main__":
    main()
