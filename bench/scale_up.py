"""Dynamic mode's reaction time: load step -> a new worker ready (issue 11, part 2).

A podsup in dynamic mode (``--workers 2 --min-workers 2 --max-workers 8
--spare-workers 1 --idle-timeout 0.5``) runs bench/queue_worker.py against a
real redis-server on a free loopback port. Each round starts from a pool at
rest (2 idle workers), pushes 3 jobs of ``--job`` seconds at once (a load
step: every worker busy, so podsup must start more), and measures the time
from the push until the first new worker is ready (it wrote its ``ready``
time and said ``idle``: able to take a job). That includes the worker's own
start-up (a Python interpreter importing redis, ``--boot`` on top), which a
real pool pays too. Then the jobs finish, the pool shrinks back to 2 and the
next round starts. Prints p50/p99/max over ``--rounds``; asserts nothing.

    python3 bench/scale_up.py [--rounds 20] [--job 1] [--boot 0]
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from zero_loss import Podsup, Redis, Sampler, wait  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--job", type=float, default=1.0, help="seconds per job of the load step")
    parser.add_argument("--boot", type=float, default=0.0, help="extra seconds a worker needs before it is ready")
    opts = parser.parse_args()

    help_text = subprocess.run([sys.executable, "-m", "podsup", "run", "--help"], capture_output=True, text=True,
                               cwd=str(Path(__file__).resolve().parents[1])).stdout
    if "--max-workers" not in help_text:
        print("scale-up bench: n/a (this podsup has no dynamic mode: --max-workers is unknown; the pool never grows)")
        return

    directory = tempfile.mkdtemp(prefix="podsup-scale-up-")
    server = Redis(directory)
    pod = Podsup(["--workers", "2", "--min-workers", "2", "--max-workers", "8", "--spare-workers", "1",
                  "--idle-timeout", "0.5", "--graceful-timeout", "30"],
                 {"BENCH_REDIS_PORT": str(server.port), "BOOT_SECONDS": str(opts.boot)}, directory)
    sampler = Sampler(server.port)
    client = server.client
    latencies: list[float] = []
    born: list[float] = []
    grown: list[int] = []
    try:
        wait(lambda: sampler.able() == 2, 60, "2 able workers")
        for round_ in range(opts.rounds):
            wait(lambda: sampler.able() == 2 and len(pod.workers()) == 2, 60, "the pool at rest (2 workers)")
            known = {int(pid) for pid in client.hkeys("ready")}
            done_before = client.llen("done")
            start = time.time()
            client.lpush("jobs", *[f"{round_}.{i}@{opts.job}" for i in range(3)])

            def first_new() -> tuple[float, bytes] | None:
                times = [(float(t), pid) for pid, t in client.hgetall("ready").items() if int(pid) not in known]
                return min(times) if times else None

            ready_at, pid = wait(first_new, 60, "a new worker")
            latencies.append(ready_at - start)
            born.append(float(client.hget("born", pid)) - start)
            wait(lambda: client.llen("done") == done_before + 3, 60, "the load step's jobs")
            grown.append(len({int(pid) for pid in client.hkeys("ready")} - known))
    finally:
        pod.close()
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)

    ms = [x * 1000 for x in latencies]
    print(f"scale-up bench: dynamic pool 2..8, spare 1, load step of 3 jobs x {opts.job:g}s, "
          f"worker boot {opts.boot:g}s + interpreter start, {len(ms)} rounds")
    print(f"  load step -> new worker ready  p50 {percentile(ms, 0.5):.0f} ms  p99 {percentile(ms, 0.99):.0f} ms  "
          f"max {max(ms):.0f} ms  (mean {statistics.mean(ms):.0f} ms)")
    bs = [x * 1000 for x in born]
    print(f"  load step -> its first line of Python runs  p50 {percentile(bs, 0.5):.0f} ms  "
          f"p99 {percentile(bs, 0.99):.0f} ms  (podsup's reaction + fork/exec + interpreter start)")
    print(f"  workers started per step: {min(grown)}..{max(grown)}")


if __name__ == "__main__":
    main()
