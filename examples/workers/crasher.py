"""A worker that exits with EXIT_CODE (default 1) after CRASH_AFTER seconds (default 0)."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _record import record  # noqa: E402

record()
time.sleep(float(os.environ.get("CRASH_AFTER", "0")))
sys.exit(int(os.environ.get("EXIT_CODE", "1")))
