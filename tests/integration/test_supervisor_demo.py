"""`make demo` runs examples/demo.py: it must start a pool and drain it cleanly."""
from __future__ import annotations

import os
import subprocess
import sys

from tests.integration.podsup_process import REPO


def test_demo_supervises_reporting_workers_and_drains_on_its_own():
    result = subprocess.run([sys.executable, os.path.join(REPO, "examples", "demo.py"),
                             "--seconds", "3", "--workers", "2"],
                            capture_output=True, text=True, timeout=90, cwd=REPO)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "/metrics" in output and "status --control" in output  # where to look
    assert "[podsup] worker started slot=1" in output
    assert "[worker 0] worker 0 (pid" in output
    assert "graceful stop: readiness off" in output
    assert "[demo] podsup exited with code 0" in output
    assert "Traceback" not in output
