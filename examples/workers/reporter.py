"""The demo's worker: takes "jobs" of random length, reports them to podsup
(busy, then done <seconds>) and, with CRASH_EVERY=N, crashes after about N jobs
so the demo shows a respawn."""
import os
import random
import signal
import sys
import time

try:
    from podsup import client
except ImportError:  # run outside the package checkout
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    from podsup import client

slot = os.environ.get("PODSUP_WORKER_ID", "?")
stopping = False


def on_term(_sig, _frame):
    """Graceful stop: finish the job in hand, then leave (exit 0)."""
    global stopping
    stopping = True


signal.signal(signal.SIGTERM, on_term)
crash_every = int(os.environ.get("CRASH_EVERY", "0"))
jobs = 0
print(f"worker {slot} (pid {os.getpid()}) ready", flush=True)
while not stopping:
    with client.job():
        time.sleep(random.uniform(0.05, 0.4))
    jobs += 1
    client.queue("demo", random.randint(0, 20))
    time.sleep(random.uniform(0.0, 0.3))
    if jobs % 10 == 0:
        print(f"worker {slot}: {jobs} jobs done", flush=True)
    if crash_every and random.random() < 1.0 / crash_every:
        print(f"worker {slot}: simulated crash after {jobs} jobs", file=sys.stderr, flush=True)
        sys.exit(3)
print(f"worker {slot}: SIGTERM, finished the job in hand after {jobs} jobs, exiting", flush=True)
