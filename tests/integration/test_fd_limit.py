"""podsup raises its soft descriptor limit (never the hard one) so a large
pool does not end in EMFILE: each worker costs the master three descriptors."""
from __future__ import annotations

from podsup.spawn import FDS_MARGIN, FDS_PER_WORKER
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
