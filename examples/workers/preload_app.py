"""An app for ``podsup run --preload preload_app:main``.

The module body runs once, in the master (think: loading a big model or
warming caches); forked workers share those pages copy-on-write and call
``main()``. Tests check that the import happened once and before the fork.
"""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _record import record  # noqa: E402

IMPORTED_BY = os.getpid()
SHARED_TABLE = list(range(100_000))  # the "expensive" state workers share
if os.environ.get("RECORD_DIR"):
    with open(os.path.join(os.environ["RECORD_DIR"], f"import.{os.getpid()}"), "w") as handle:
        handle.write(str(os.getpid()))


def main() -> int:
    record(imported_by=IMPORTED_BY, sigterm_default=signal.getsignal(signal.SIGTERM) == signal.SIG_DFL,
           sigint_default=signal.getsignal(signal.SIGINT) == signal.SIG_DFL, table=len(SHARED_TABLE),
           fds=sorted(int(fd) for fd in os.listdir("/proc/self/fd")))
    print(f"preloaded worker {os.environ.get('PODSUP_WORKER_ID')} pid {os.getpid()}", flush=True)
    while True:
        time.sleep(3600)
