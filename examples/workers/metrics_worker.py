"""A Python worker with its own prometheus-client metrics, which podsup merges
into its /metrics (podsup sets PROMETHEUS_MULTIPROC_DIR for its workers and
marks dead ones, so there is nothing to set up here).

    podsup run --workers 2 -- python3 examples/workers/metrics_worker.py

Each job is reported to podsup (podsup.client.job) and counted in
``app_jobs_total``. JOBS_PER_LIFE=N makes the worker exit with code 3 after N
jobs, so podsup respawns it — and the count goes on across the respawn.
JOB_SECONDS (default 0.05) is how long a job takes.
"""
import os
import sys
import time

try:
    from podsup import client
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    from podsup import client

from prometheus_client import Counter, Gauge

JOBS = Counter("app_jobs", "Jobs this application finished.")
IN_PROGRESS = Gauge("app_jobs_in_progress", "Jobs being worked on now.", multiprocess_mode="livesum")
ALIVE = Gauge("app_workers_alive", "Worker processes alive (1 each).", multiprocess_mode="livesum")
ALIVE.set(1)  # stays 1 in this process's file until podsup marks the process dead

per_life = int(os.environ.get("JOBS_PER_LIFE", "0"))
job_seconds = float(os.environ.get("JOB_SECONDS", "0.05"))
done = 0
client.heartbeat()
while True:
    with IN_PROGRESS.track_inprogress(), client.job():
        time.sleep(job_seconds)
    JOBS.inc()
    done += 1
    if per_life and done >= per_life:
        sys.exit(3)
