"""A worker that ignores SIGTERM: podsup must SIGKILL it after --graceful-timeout."""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _record import record  # noqa: E402

signal.signal(signal.SIGTERM, signal.SIG_IGN)
record()
print("ignoring SIGTERM", flush=True)
while True:
    time.sleep(3600)
