"""A Redis-queue worker for the zero-loss and scale-up benches (not a test fixture).

It boots for BOOT_SECONDS (a framework loading), then joins the set ``able``
(it can take jobs from now on: what the benches count), says ``idle`` to
podsup, and takes job ids from the list ``jobs`` (BRPOP), writing each to
``started`` before and ``done`` after JOB_SECONDS of work (a job id ``ID@S`` takes S seconds). SIGTERM leaves
``able`` at once (no new job), lets the job in hand finish, and exits 0: a
graceful worker, so any lost or repeated job is the supervisor's doing.
``ready`` (hash pid -> time.time()) records when each worker became able,
``born`` when its first line of Python ran.
"""
import time

BORN = time.time()  # first thing: how long the interpreter and imports took is ready - born

import os  # noqa: E402
import signal
import sys  # noqa: E402

import redis  # noqa: E402

from podsup import client  # noqa: E402

PORT = int(os.environ["BENCH_REDIS_PORT"])
BOOT = float(os.environ.get("BOOT_SECONDS", "0"))
JOB = float(os.environ.get("JOB_SECONDS", "0.05"))
ME = str(os.getpid())

jobs = redis.Redis(port=PORT)
control = redis.Redis(port=PORT)  # the handler's own connection: never one cut mid-command
stopping = False


def on_term(_sig, _frame):
    global stopping
    stopping = True
    try:
        control.srem("able", ME)
    except redis.RedisError:
        pass


signal.signal(signal.SIGTERM, on_term)
time.sleep(BOOT)
if not stopping:
    control.hset("born", ME, repr(BORN))
    control.hset("ready", ME, repr(time.time()))
    control.sadd("able", ME)
client.idle()
while not stopping:
    item = jobs.brpop(["jobs"], timeout=0.2)
    if item is None:
        continue
    job_id = item[1]
    client.busy()
    jobs.rpush("started", job_id)
    _, _, seconds = job_id.partition(b"@")  # "ID@SECONDS": a job of its own length
    took = float(seconds) if seconds else JOB
    time.sleep(took)
    jobs.rpush("done", job_id)
    client.done(took)
control.srem("able", ME)
sys.exit(0)
