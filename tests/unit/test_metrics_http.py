"""Health policy (pure) and the HTTP server over a real socket."""
from __future__ import annotations

import dataclasses
import urllib.error
import urllib.request

import pytest

from podsup import http as podsup_http
from podsup import metrics
from podsup.http import HealthState, HealthView, HttpServer, liveness, readiness
from podsup.snapshot import PoolSnapshot, WorkerSnapshot
from podsup.states import PoolState, WorkerState


def snap(states, desired=None, draining=False, crash_loop=False) -> PoolSnapshot:
    workers = tuple(WorkerSnapshot(id=i, pid=100 + i, state=s, started_at=0.0, uptime=1.0, rss_bytes=1,
                                   cpu_percent=0.0, requests=0, qps=0.0, restarts=0, last_exit=None)
                    for i, s in enumerate(states))
    return PoolSnapshot(version="t", started_at=0.0, uptime=1.0, state=PoolState.RUNNING,
                        desired=len(states) if desired is None else desired, running=len(states), ready=True,
                        healthy=True, draining=draining, crash_loop=crash_loop, exits={}, restarts={},
                        workers=workers)


def test_liveness():
    assert liveness(0.5, False) == (True, "ok")
    assert liveness(None, False)[0] is False
    ok, reason = liveness(7.0, False, stale_after=5.0)
    assert not ok and "stuck: no tick for 7.0s" in reason
    assert liveness(0.1, True) == (False, "crash loop: workers exit faster than --crashloop-threshold allows")


def view(*args, **kwargs) -> HealthView:
    return HealthView.from_snapshot(snap(*args, **kwargs))


def test_readiness():
    up = [WorkerState.IDLE, WorkerState.BUSY]
    assert readiness(view(up), 2, False)[0] is True
    assert readiness(view(up + [WorkerState.STARTING]), 3, False) == (False, "2 of 3 required workers ready")
    assert readiness(view(up + [WorkerState.STARTING]), 2, False)[0] is True        # --min-ready 2
    assert readiness(view(up), 2, True) == (False, "draining")                      # drain requested
    assert readiness(view(up, draining=True), 2, False) == (False, "draining")      # SIGTERM drain
    assert readiness(view(up, crash_loop=True), 0, False) == (False, "crash loop")
    assert readiness(dataclasses.replace(view(up), exiting=True), 0, False) == (False, "exiting")
    assert readiness(None, 0, False)[0] is False


def test_view_of_an_arbiter_reads_its_fields_without_a_snapshot():
    class W:
        def __init__(self, state):
            self.state = state

    class Arb:
        workers = {1: W(WorkerState.IDLE), 2: W(WorkerState.STARTING), 3: W(WorkerState.BUSY)}
        desired, draining, stopping, crash_loop, exit_code = 3, False, True, False, None

        def snapshot(self):
            raise AssertionError("a psutil-measured snapshot at every tick is what this avoids")

    assert HealthView.of_arbiter(Arb()) == HealthView(desired=3, up=2, draining=True, crash_loop=False)

    class Opaque:
        def snapshot(self):
            return snap([WorkerState.IDLE])
    assert HealthView.of_arbiter(Opaque()).up == 1


def test_health_state_goes_stale_without_ticks():
    now = {"t": 0.0}
    health = HealthState(clock=lambda: now["t"], stale_after=3.0)
    assert not health.healthz()[0]
    health.mark_tick(snap([WorkerState.IDLE]))
    now["t"] = 2.0
    assert health.healthz()[0] and health.readyz()[0]
    now["t"] = 4.0
    assert "stuck" in health.healthz()[1]
    health.set_draining()
    assert health.readyz() == (False, "draining") and health.draining


def get(url: str) -> tuple[int, str, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read().decode(), dict(resp.headers)
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(), dict(err.headers)


@pytest.fixture
def served():
    state = {"snap": snap([WorkerState.IDLE, WorkerState.STARTING])}
    registry, _ = metrics.build_registry(lambda: state["snap"])
    health = HealthState(needed=lambda desired: desired)
    server = HttpServer(("127.0.0.1", 0), registry, health)
    server.start()
    yield f"http://127.0.0.1:{server.port}", state, health
    server.close()


def test_endpoints(served):
    base, state, health = served
    assert get(base + "/healthz")[0] == 503          # no tick yet
    health.mark_tick(state["snap"])
    assert get(base + "/healthz")[:2] == (200, "ok\n")
    assert get(base + "/readyz")[:2] == (503, "1 of 2 required workers ready\n")
    health.mark_tick(snap([WorkerState.IDLE, WorkerState.BUSY]))
    assert get(base + "/readyz")[0] == 200
    status, body, headers = get(base + "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert 'podsup_workers{state="starting"} 1.0' in body
    assert get(base + "/nope")[0] == 404


def test_broken_collector_gives_500_and_server_survives(served):
    base, state, health = served
    state["snap"] = None  # the collector raises on it
    assert get(base + "/metrics")[0] == 500
    health.mark_tick(snap([WorkerState.IDLE]))
    assert get(base + "/healthz")[0] == 200


def test_a_server_never_started_closes_at_once():
    registry, _ = metrics.build_registry(lambda: snap([]))
    server = HttpServer(("127.0.0.1", 0), registry, HealthState())
    server.close()  # must not wait for a serve loop that never ran


def test_readyz_reads_the_loop_live_not_the_last_tick():
    health = HealthState(needed=lambda desired: desired)
    health.mark_tick(snap([WorkerState.IDLE, WorkerState.BUSY]))
    live = {"view": HealthView(desired=2, up=2, draining=False, crash_loop=False)}
    health.live = lambda: live["view"]
    assert health.readyz()[0] is True
    live["view"] = HealthView(desired=2, up=2, draining=True, crash_loop=False)  # SIGTERM, no tick since
    assert health.readyz() == (False, "draining")
    assert health.healthz() == (True, "ok")
    live["view"] = HealthView(desired=2, up=2, draining=False, crash_loop=True)  # a crash storm began
    assert health.healthz()[0] is False and health.readyz() == (False, "crash loop")

    def torn():
        raise RuntimeError("dictionary changed size during iteration")
    health.live = torn  # a torn read falls back to the tick's view
    assert health.readyz()[0] is True
