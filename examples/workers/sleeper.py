"""A worker that says hello and waits to be stopped (default signal handling)."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _record import record  # noqa: E402

record()
print(f"hello from worker {os.environ.get('PODSUP_WORKER_ID')} pid {os.getpid()}", flush=True)
print(f"a line on stderr from {os.getpid()}", file=sys.stderr, flush=True)
while True:
    time.sleep(3600)
