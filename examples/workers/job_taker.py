"""A worker that takes jobs a test hands out as files, for the dynamic-mode and
start-gate tests: after BOOT_SECONDS (default 0) it records ``ready`` and says
``idle``; then it claims a file of $JOBS_DIR by renaming it to
``<name>.<pid>.taken`` (atomic: one worker per job), says ``busy``, and stays
busy until the test removes that file; then ``done`` and ``idle`` again.
SIGTERM while idle exits 0 at once; while busy it finishes the job first
(graceful). Plain socket code: the protocol needs nothing else."""
import os
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _record import record  # noqa: E402

JOBS = os.environ["JOBS_DIR"]
stopping = False


def on_term(_sig, _frame):
    global stopping
    stopping = True


signal.signal(signal.SIGTERM, on_term)
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
report = os.environ["PODSUP_REPORT"]
time.sleep(float(os.environ.get("BOOT_SECONDS", "0")))
record("ready")
sock.sendto(b"idle", report)
while not stopping:
    taken = None
    for name in sorted(os.listdir(JOBS)):
        if name.endswith(".taken"):
            continue
        try:
            os.rename(os.path.join(JOBS, name), os.path.join(JOBS, f"{name}.{os.getpid()}.taken"))
        except OSError:
            continue  # another worker was faster
        taken = os.path.join(JOBS, f"{name}.{os.getpid()}.taken")
        break
    if taken is None:
        time.sleep(0.02)  # a worker's own polling loop, not a test wait
        continue
    sock.sendto(b"busy", report)
    started = time.monotonic()
    while os.path.exists(taken):
        time.sleep(0.02)
    sock.sendto(f"done {time.monotonic() - started:.3f}".encode(), report)
    sock.sendto(b"idle", report)
record("stopped")
sys.exit(0)
