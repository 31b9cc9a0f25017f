"""A job-mode worker: processes its share of WORK_ITEMS (default 3) and exits 0,
which podsup (with --normal-exit-codes 0) counts as done, not as a crash."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _record import record  # noqa: E402

slot = int(os.environ.get("PODSUP_WORKER_ID", "0"))
for item in range(int(os.environ.get("WORK_ITEMS", "3"))):
    print(f"slot {slot}: item {item} done", flush=True)
    time.sleep(0.05)
record("finished")
sys.exit(0)
