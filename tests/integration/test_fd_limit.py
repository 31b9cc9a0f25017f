"""podsup raises its soft descriptor limit (never the hard one) so a large
pool does not end in EMFILE: each worker costs the master three descriptors."""
from __future__ import annotations

import os
import signal

from podsup import names
from podsup.host.spawn import FDS_MARGIN, FDS_PER_WORKER
from tests.integration.podsup_process import PodsupProcess
from tests.integration.servers import status_json
from tests.waiting import wait_for

WORKERS = 80  # 80 x 3 descriptors: past a soft limit of 200


def soft_nofile(pid: int) -> int:
    with open(f"/proc/{pid}/limits") as limits:
        line = next(l for l in limits if l.startswith("Max open files"))
    return int(line.split()[3])


def test_a_pool_larger_than_the_soft_descriptor_limit_starts_every_worker():
    low_limit = ["sh", "-c", 'ulimit -Sn 200 && ulimit -Hn 8192 && exec "$0" "$@"']
    with PodsupProcess(["run", "--workers", str(WORKERS), "--", "sleep", "600"], prefix=low_limit) as p:
        wait_for(lambda: status_json(p.control_path)["running"] == WORKERS, timeout=60,
                 message=lambda: f"{WORKERS} workers running; {p.output()[-2000:]}")
        assert soft_nofile(p.pid) >= 1024 * FDS_PER_WORKER + FDS_MARGIN  # room for scale up to the maximum
        assert "Too many open files" not in p.output()


def test_a_pool_whose_descriptors_pass_1024_stops_cleanly():
    # 400 workers hold ~1,200 descriptors: podsup's own fds pass select()'s 1,024
    with PodsupProcess(["run", "--workers", "400", "--graceful-timeout", "20", "--", "sleep", "600"]) as p:
        wait_for(lambda: status_json(p.control_path)["running"] == 400, timeout=120,
                 message=lambda: f"400 workers running; {p.output()[-2000:]}")
        assert len(os.listdir(f"/proc/{p.pid}/fd")) > 1024
        report_dir = os.path.dirname(p.children()[0].environ()[names.ENV_REPORT])
        p.signal(signal.SIGTERM)
        assert p.wait_exit(timeout=60) == 0, p.output()[-3000:]
        assert p.matches(r"podsup exiting code=0") and "Traceback" not in p.output()
    assert not os.path.exists(report_dir)  # close() ran to the end


def test_more_workers_than_the_hard_limit_allows_is_a_one_line_error():
    low_limit = ["sh", "-c", 'ulimit -n 512 && exec "$0" "$@"']  # soft = hard = 512
    with PodsupProcess(["run", "--workers", "400", "--", "sleep", "600"], prefix=low_limit) as p:
        assert p.wait_exit(timeout=30) == 2
        err = [t for s, t in p.lines if s == "stderr"]
    assert len(err) == 1 and "invalid --workers 400: the open-files limit (512) fits at most" in err[0], err
    assert "ulimit -n" in err[0]
