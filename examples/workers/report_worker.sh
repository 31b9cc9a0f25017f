#!/bin/sh
# A shell worker speaking podsup's report protocol: one line per datagram to
# the Unix datagram socket in $PODSUP_REPORT (here with socat; any tool that
# can sendto a SOCK_DGRAM socket will do). Without podsup it just works.
#
#   podsup run --workers 2 -- examples/workers/report_worker.sh
#
# JOB_SECONDS (default 0.2) is how long each fake job takes; JOBS (default:
# forever) how many jobs to do before exiting 0.

report() {
    [ -n "${PODSUP_REPORT:-}" ] || return 0
    printf '%s' "$1" | socat -u - "UNIX-SENDTO:${PODSUP_REPORT}" 2>/dev/null || true
}

job_seconds=${JOB_SECONDS:-0.2}
jobs=${JOBS:-0}
done_jobs=0
trap 'exit 0' TERM INT

echo "shell worker ${PODSUP_WORKER_ID:-?} (pid $$) ready"
report heartbeat
while [ "$jobs" -eq 0 ] || [ "$done_jobs" -lt "$jobs" ]; do
    report busy
    sleep "$job_seconds"
    report "done $job_seconds"
    done_jobs=$((done_jobs + 1))
    report "queue shell-backlog $done_jobs"
done
exit 0
