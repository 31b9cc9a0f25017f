"""A worker killed by the kernel's OOM killer is reported as ``oom``.

podsup runs inside a fresh memory cgroup (v1 ``memory.limit_in_bytes`` or v2
``memory.max``) below the test's own, so the real OOM killer only ever acts
inside it. Skipped where cgroups cannot be created (not root, read-only).
"""
from __future__ import annotations

import os
import signal
import sys
import uuid

import pytest

from podsup.host import cgroup
from tests.integration.podsup_process import PodsupProcess
from tests.waiting import wait_for

LIMIT = 192 * 1024 * 1024


def _make_memory_cgroup() -> tuple[str | None, str]:
    """(cgroup directory, or None and the reason it could not be made)."""
    name = f"podsup-oom-test-{uuid.uuid4().hex[:8]}"
    v2 = cgroup.v2_dir()
    if v2 and "memory" in (open(os.path.join(v2, "cgroup.subtree_control")).read()
                           if os.path.exists(os.path.join(v2, "cgroup.subtree_control")) else ""):
        path = os.path.join(v2, name)
        try:
            os.mkdir(path)
            with open(os.path.join(path, "memory.max"), "w") as handle:
                handle.write(str(LIMIT))
            with open(os.path.join(path, "memory.swap.max"), "w") as handle:
                handle.write("0")
            return path, ""
        except OSError as exc:
            return None, f"cannot create a v2 memory cgroup: {exc}"
    _, v1 = cgroup.own_cgroup_path()
    base = os.path.join("/sys/fs/cgroup/memory", v1.get("memory", "/").lstrip("/"))
    if not os.path.isdir(base):
        return None, "no writable memory cgroup (v1 or v2)"
    path = os.path.join(base, name)
    try:
        os.mkdir(path)
        with open(os.path.join(path, "memory.limit_in_bytes"), "w") as handle:
            handle.write(str(LIMIT))
        if os.path.exists(os.path.join(path, "memory.memsw.limit_in_bytes")):
            with open(os.path.join(path, "memory.memsw.limit_in_bytes"), "w") as handle:
                handle.write(str(LIMIT))
        return path, ""
    except OSError as exc:
        return None, f"cannot create a v1 memory cgroup: {exc}"


@pytest.fixture
def memory_cgroup():
    path, reason = _make_memory_cgroup()
    if path is None:
        pytest.skip(reason)
    yield path

    def removed() -> bool:
        try:
            os.rmdir(path)
            return True
        except FileNotFoundError:
            return True
        except OSError:
            return False
    wait_for(removed, 30, message=f"cgroup {path} to be empty and removed")


def test_a_worker_killed_by_the_oom_killer_is_reported_as_oom(memory_cgroup):
    hog = "import time; hog = b'x' * (512 * 2**20); time.sleep(60)"
    enter = ["sh", "-c", f'echo $$ > {memory_cgroup}/cgroup.procs && exec "$@"', "sh"]
    args = ["run", "--workers", "1", "--backoff-max", "5", "--crashloop-threshold", "0",
            "--graceful-timeout", "2", "--", sys.executable, "-c", hog]
    with PodsupProcess(args, prefix=enter) as p:
        line = p.wait_for_line(r"worker killed by the out-of-memory killer slot=0 pid=(\d+) status=oom", 60)
        assert int(line.group(1)) != p.pid
        p.wait_for_line(rf"worker exited slot=0 pid={line.group(1)} status=oom uptime=\S+ respawn_in=")
        assert not p.matches(r'status="signal SIGKILL"')  # never mistaken for a plain kill
        p.signal(signal.SIGTERM)
        assert p.wait_exit(30) == 0
