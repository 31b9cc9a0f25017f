"""A worker in the middle of a job when SIGTERM arrives: it finishes the job
(JOB_SECONDS, default 1) and only then exits 0 — what a graceful stop waits for."""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _record import record  # noqa: E402

job_seconds = float(os.environ.get("JOB_SECONDS", "1"))
stopping = False


def on_term(_sig, _frame):
    global stopping
    stopping = True


signal.signal(signal.SIGTERM, on_term)
record()
print("ready", flush=True)
while not stopping:
    signal.pause()
print("finishing the current job", flush=True)
time.sleep(job_seconds)
record("finished")
print("job finished", flush=True)
sys.exit(0)
