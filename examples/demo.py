"""`make demo`: podsup supervising a small pool of example workers.

Starts ``podsup run`` with 4 workers of examples/workers/reporter.py (they
take random-length "jobs", report busy/done and a queue depth, and now and
then crash so you can watch a respawn), prints podsup's and the workers'
output as it happens, and tells you where to look while it runs. Ctrl-C (or
``--seconds N``) drains the pool gracefully, like Kubernetes stopping the pod.

    python3 examples/demo.py [--workers 4] [--seconds N] [--log-format text|json]
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from podsup import names  # noqa: E402


def free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise RuntimeError("no free port")


STATUS_EVERY = 10.0


def show_status(control: str, env: dict[str, str]) -> None:
    """Print ``podsup status`` (what the control socket says) now and then."""
    result = subprocess.run([sys.executable, "-m", "podsup", "status", "--control", control],
                            capture_output=True, text=True, env=env, cwd=REPO, timeout=10)
    text = result.stdout.strip() or result.stderr.strip()
    print(f"[demo] podsup status:\n{text}", flush=True)


def banner(port: int, control: str, workers: int) -> str:
    podsup = f"{sys.executable} -m podsup"
    return f"""
==============================================================================
 podsup demo: {workers} workers of examples/workers/reporter.py
 - each worker is started with PODSUP_WORKER_ID=0..{workers - 1}; its output below is
   prefixed with its slot, podsup's own events with [podsup]
 - workers report busy/done to podsup; now and then one crashes (exit 3) and
   podsup refills its slot (watch "worker exited ... respawn_in=")
 where to look, in another terminal:
   curl http://127.0.0.1:{port}{names.METRICS_PATH}     Prometheus metrics
   curl http://127.0.0.1:{port}{names.HEALTHZ_PATH}     liveness   ({names.READYZ_PATH}: readiness)
   {podsup} status --control {control}          the pool, like Workerman's status
   {podsup} scale +1 --control {control}        one worker more (or: kill -TTIN <podsup pid>)
   {podsup} reload --control {control}          rolling restart (or: kill -HUP <podsup pid>)
 Ctrl-C stops the demo with a graceful drain.
==============================================================================
"""


def _interrupt(_sig, _frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=None, help="stop (gracefully) after this long")
    parser.add_argument("--log-format", choices=("text", "json"), default="text")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be >= 1")

    tmp = tempfile.mkdtemp(prefix="podsup-demo-")
    control = os.path.join(tmp, "podsup.sock")
    port = free_port(names.DEFAULT_HTTP_PORT)
    command = [sys.executable, "-m", "podsup", "run", "--workers", str(args.workers),
               "--http", f"127.0.0.1:{port}", "--control", control, "--graceful-timeout", "5",
               "--backoff-max", "2", "--log-format", args.log_format,
               "--", sys.executable, os.path.join(REPO, "examples", "workers", "reporter.py")]
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
               PYTHONUNBUFFERED="1", CRASH_EVERY="100")
    print(banner(port, control, args.workers), flush=True)
    # its own process group: Ctrl-C reaches the demo only, which then asks
    # podsup for a graceful stop (SIGTERM) like the kubelet would
    proc = subprocess.Popen(command, env=env, cwd=REPO, process_group=0)
    signal.signal(signal.SIGTERM, _interrupt)  # demo told to stop: drain podsup, never orphan it
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with INT ignored
    print(f"[demo] podsup pid {proc.pid}", flush=True)
    deadline = time.monotonic() + args.seconds if args.seconds is not None else None
    next_status = time.monotonic() + STATUS_EVERY
    try:
        while proc.poll() is None:
            if time.monotonic() >= next_status:
                next_status = time.monotonic() + STATUS_EVERY
                show_status(control, env)
            if deadline is not None and time.monotonic() >= deadline:
                print(f"[demo] {args.seconds:g}s passed: SIGTERM to podsup (graceful drain)", flush=True)
                break
            try:
                proc.wait(timeout=0.2 if deadline is None else max(0.01, min(0.2, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                pass
    except KeyboardInterrupt:
        print("\n[demo] Ctrl-C: SIGTERM to podsup (graceful drain)", flush=True)
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    while True:
        try:
            code = proc.wait()
            break
        except KeyboardInterrupt:  # a second Ctrl-C: fast stop
            proc.send_signal(signal.SIGINT)
    print(f"[demo] podsup exited with code {code}", flush=True)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
