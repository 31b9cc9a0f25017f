"""A worker whose child leaves grandchildren behind (like a shell that
backgrounds jobs and dies): they are re-parented to podsup, which must reap
them when they end. ORPHANS (default 3) grandchildren live ~0.3 s each."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _record import record  # noqa: E402

record()
middle = os.fork()
if middle == 0:
    for _ in range(int(os.environ.get("ORPHANS", "3"))):
        if os.fork() == 0:
            time.sleep(0.3)
            os._exit(0)
    os._exit(0)  # the grandchildren are orphans now
os.waitpid(middle, 0)
print("left orphans behind", flush=True)
while True:
    time.sleep(3600)
