"""--preload MODULE:FUNC: import once in the master, fork workers that call FUNC."""
from __future__ import annotations

import glob
import os
import signal

from tests.integration.podsup_process import WORKERS, PodsupProcess, records
from tests.waiting import wait_for


def test_preload_imports_once_in_the_master_and_forks_clean_workers(tmp_path):
    args = ["run", "--workers", "2", "--graceful-timeout", "5", "--preload", "preload_app:main"]
    with PodsupProcess(args, env={"RECORD_DIR": str(tmp_path)}, cwd=WORKERS) as p:
        wait_for(lambda: len(records(tmp_path)) == 2, 30, message=p.output)
        imports = glob.glob(os.path.join(tmp_path, "import.*"))
        assert [os.path.basename(i) for i in imports] == [f"import.{p.pid}"]  # once, in the master
        workers = records(tmp_path)
        assert sorted(w["slot"] for w in workers) == ["0", "1"]
        for w in workers:
            assert w["imported_by"] == p.pid and w["pid"] != p.pid
            assert w["pgid"] == w["pid"]  # own process group
            assert w["sigterm_default"] and w["sigint_default"]  # handlers reset
            assert w["table"] == 100_000  # the master's state, inherited
            # the master's descriptors (self-pipe, report socket, other workers'
            # pipes) are closed: only stdio and the fd listing itself remain
            assert len([fd for fd in w["fds"] if fd > 2]) <= 1, w["fds"]
        p.wait_for_line(r"^\[worker 1\] preloaded worker 1 pid \d+$", stream="stdout")
        os.kill(workers[0]["pid"], signal.SIGKILL)
        wait_for(lambda: len(records(tmp_path)) == 3, 30, message=p.output)
        assert len(glob.glob(os.path.join(tmp_path, "import.*"))) == 1  # respawn re-forks, no re-import
        p.signal(signal.SIGTERM)
        assert p.wait_exit(30) == 0


def test_preload_function_return_value_is_the_exit_code(tmp_path):
    args = ["run", "--workers", "1", "--normal-exit-codes", "0", "--preload", "preload_done:main"]
    (tmp_path / "preload_done.py").write_text("def main():\n    print('one job', flush=True)\n    return 0\n")
    with PodsupProcess(args, cwd=str(tmp_path)) as p:
        assert p.wait_exit(30) == 0
        assert p.matches(r"^\[worker 0\] one job$")
        assert p.matches(r'worker done slot=0 pid=\d+ status="exit 0"')
