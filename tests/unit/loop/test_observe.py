"""podsup.loop.observe: the pool read from other threads (health, snapshot).

All against FakeSystem: no processes, no real waiting. Tests are named after
the transitions they check.
"""
from __future__ import annotations

from podsup.core.health import HealthView


# --- health -----------------------------------------------------------------

def test_health_reads_the_worker_table_without_a_snapshot(pools, monkeypatch):
    """/readyz calls health() from an HTTP thread per request: flags and the
    table only, never the psutil-measured snapshot."""
    pool = pools(workers=3)
    pool.arb.handle_report(pool.pid(0), b"idle")
    pool.arb.handle_report(pool.pid(2), b"busy")

    def no_snapshot(measure=True):
        raise AssertionError("a psutil-measured snapshot at every tick is what this avoids")
    monkeypatch.setattr(pool.arb, "snapshot", no_snapshot)
    assert pool.arb.health() == HealthView(desired=3, up=2, draining=False, crash_loop=False)
    pool.arb.stopping = True
    assert pool.arb.health() == HealthView(desired=3, up=2, draining=True, crash_loop=False)
