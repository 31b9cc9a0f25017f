"""A worker driven by a test, one report at a time: ``busy`` at start, then,
once $STEP_FILE exists, ``done 0.25``, ``queue jobs 7`` and one malformed
datagram; then it idles. Plain socket code: the protocol needs nothing else."""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _record import record  # noqa: E402

sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
report = os.environ["PODSUP_REPORT"]
record()
sock.sendto(b"busy", report)
while not os.path.exists(os.environ["STEP_FILE"]):
    time.sleep(0.02)  # a worker's own polling loop, not a test wait
for line in (b"done 0.25", b"queue jobs 7", b"this is not a report"):
    sock.sendto(line, report)
print("reported", flush=True)
while True:
    time.sleep(3600)
