"""Health policy (pure) and the HTTP server over a real socket."""
from __future__ import annotations

import dataclasses
import gzip
import http.client
import socket
import threading
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from podsup.core.health import HealthView, liveness, readiness
from podsup.core.snapshot import PoolSnapshot, WorkerSnapshot
from podsup.core.states import PoolState, WorkerState
from podsup.plugins import http as podsup_http
from podsup.plugins import metrics
from podsup.plugins.http import HealthState, HttpServer
from tests.waiting import wait_for


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
    assert liveness(0.1, True) == (False, "crash loop past --crashloop-restart-after: workers exit faster "
                                          "than --crashloop-threshold allows")


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


class Loop:
    generation = None  # no page caching: every scrape sees the snapshot of the moment

    def __init__(self, get):
        self.get = get

    def snapshot(self, measure=True, usage_max_age=0.0):
        return self.get()


def build_metrics(get):
    """podsup's metrics over a fake loop whose snapshot is ``get()``, and its report stats."""
    ext = metrics.MetricsExtension()
    ext.attach(Loop(get))
    return ext, ext.stats


def frozen_clock() -> float:
    """HealthState's clock for the server tests: a tick never goes stale (after
    STALE_AFTER real seconds /healthz would turn 503 — staleness is tested
    above, with a clock of its own)."""
    return 1000.0


@pytest.fixture
def served():
    state = {"snap": snap([WorkerState.IDLE, WorkerState.STARTING])}
    registry, _ = build_metrics(lambda: state["snap"])
    health = HealthState(needed=lambda desired: desired, clock=frozen_clock)
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
    registry, _ = build_metrics(lambda: snap([]))
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
    assert health.healthz()[0] is True and health.readyz() == (False, "crash loop")  # not ready at once
    live["view"] = HealthView(desired=2, up=2, draining=False, crash_loop=True, crash_loop_fatal=True)
    assert health.healthz()[0] is False  # past --crashloop-restart-after

    def torn():
        raise RuntimeError("dictionary changed size during iteration")
    health.live = torn  # a torn read falls back to the tick's view
    assert health.readyz()[0] is True


# --- the server under idle, slow and many clients; HEAD; ?name[]= ----------------

def serve(request_timeout=podsup_http.REQUEST_TIMEOUT, max_connections=podsup_http.MAX_CONNECTIONS):
    health = HealthState(needed=lambda desired: desired, clock=frozen_clock)
    health.mark_tick(snap([WorkerState.IDLE]))
    registry, stats = build_metrics(lambda: snap([WorkerState.IDLE]))
    stats.done(0.2)
    stats.flush()
    server = HttpServer(("127.0.0.1", 0), registry, health, request_timeout=request_timeout,
                        max_connections=max_connections)
    server.start()
    return server


def closed_by_server(sock: socket.socket) -> bool:
    """True once the server has closed ``sock`` (EOF or reset); False while it is open."""
    sock.setblocking(False)
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True


def handler_threads() -> int:
    """Threads serving HTTP: the server's one."""
    return sum(1 for t in threading.enumerate() if t.name == "podsup-http")


def test_one_thread_serves_every_connection_with_a_request_timeout():
    server = serve()
    try:
        assert handler_threads() == 1
        held = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(5)]
        wait_for(lambda: server._server.connections == 5, timeout=30, message="5 connections open")
        assert request(server.port, "GET", "/healthz")[:2] == (200, b"ok\n")
        assert handler_threads() == 1 and server._server.timeout == podsup_http.REQUEST_TIMEOUT > 0
        for s in held:
            s.close()
    finally:
        server.close()
    assert handler_threads() == 0


def test_idle_and_trickling_clients_are_dropped_and_their_threads_end():
    # The timeout under test must outlast opening the 21 connections (all are
    # counted as served at once below), even on a loaded machine.
    server = serve(request_timeout=3.0)
    try:
        idle = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(20)]
        trickler = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        trickler.sendall(b"GET /healthz HTTP/1.0\r\n")
        stop = threading.Event()

        def trickle():  # a header byte every 0.1 s: each read is quick, the request never ends
            while not stop.wait(0.1):
                try:
                    trickler.send(b"X")
                except OSError:
                    return
        feeder = threading.Thread(target=trickle, daemon=True)
        feeder.start()
        try:
            wait_for(lambda: server._server.connections >= 21, timeout=30, message="21 connections being served")
            wait_for(lambda: all(closed_by_server(s) for s in idle), timeout=30,
                     message="the idle connections closed by the server")
            wait_for(lambda: closed_by_server(trickler), timeout=30,
                     message="the trickling connection closed by the server")
            wait_for(lambda: server._server.connections == 0, timeout=30,
                     message=lambda: f"connections back to 0: {server._server.connections}")
            assert handler_threads() == 1
        finally:
            stop.set()
            feeder.join(5)
            for s in idle + [trickler]:
                s.close()
        # and the server still answers
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/healthz", timeout=10) as resp:
            assert resp.status == 200
    finally:
        server.close()


def request(port: int, method: str, path: str, headers=None) -> tuple[int, bytes, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read(), {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()


def test_connections_beyond_the_cap_are_refused_with_503_not_a_thread():
    server = serve(request_timeout=30, max_connections=3)
    held = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(3)]
    try:
        def refused():
            try:
                status, body, _ = request(server.port, "GET", "/healthz")
            except (ConnectionError, http.client.HTTPException):
                return False  # refused before the answer could be read: try again
            return status == 503 and body == b"too many connections\n"
        wait_for(refused, timeout=30, message="a 4th connection refused with 503")
        assert handler_threads() == 1 and server._server.connections <= 3
        for s in held:
            s.close()
        held = []
        wait_for(lambda: request(server.port, "GET", "/healthz")[:2] == (200, b"ok\n"), timeout=30,
                 message="served again once the held connections closed")
    finally:
        for s in held:
            s.close()
        server.close()


def test_head_is_answered_like_get_without_a_body():
    server = serve()
    try:
        for path in ("/healthz", "/readyz", "/metrics", "/nope"):
            got_status, got_body, got_headers = request(server.port, "GET", path)
            status, body, headers = request(server.port, "HEAD", path)
            assert (status, body) == (got_status, b""), path
            assert headers["content-type"] == got_headers["content-type"], path
            if path != "/metrics":  # the metrics body is not byte-stable between two scrapes
                assert int(headers["content-length"]) == len(got_body), path
            else:
                assert int(headers["content-length"]) > 0
        assert request(server.port, "HEAD", "/healthz")[0] == 200
    finally:
        server.close()


def families(body: bytes) -> dict[str, list]:
    return {f.name: f.samples for f in text_string_to_metric_families(body.decode())}


def test_name_filter_keeps_only_the_named_families_and_samples():
    server = serve()
    try:
        status, body, _ = request(server.port, "GET", "/metrics?name[]=podsup_draining")
        assert status == 200
        assert list(families(body)) == ["podsup_draining"]
        assert [(s.name, s.value) for s in families(body)["podsup_draining"]] == [("podsup_draining", 0.0)]
        # a counter by its family name or its sample name; a histogram's one sample; several at once
        query = "&".join("name[]=" + n for n in ("podsup_workers", "podsup_requests",
                                                 "podsup_request_duration_seconds_count", "podsup_slow_requests_total"))
        got = families(request(server.port, "GET", "/metrics?" + query)[1])
        assert sorted(got) == ["podsup_request_duration_seconds", "podsup_requests", "podsup_slow_requests",
                               "podsup_workers"]
        assert [s.name for s in got["podsup_request_duration_seconds"]] == ["podsup_request_duration_seconds_count"]
        assert [(s.name, s.value) for s in got["podsup_requests"]] == [("podsup_requests_total", 1.0)]
        assert len(got["podsup_workers"]) == len(WorkerState)
        assert request(server.port, "GET", "/metrics?name[]=nothing_like_this")[:2] == (200, b"")
        # compression and OpenMetrics still negotiated as before
        status, body, headers = request(server.port, "GET", "/metrics?name[]=podsup_draining",
                                        {"Accept-Encoding": "gzip"})
        assert headers["content-encoding"] == "gzip" and list(families(gzip.decompress(body))) == ["podsup_draining"]
        status, body, headers = request(server.port, "GET", "/metrics?name[]=podsup_draining",
                                        {"Accept": "application/openmetrics-text"})
        assert headers["content-type"].startswith("application/openmetrics-text")
        assert body.decode().endswith("# EOF\n") and "podsup_draining 0.0" in body.decode()
    finally:
        server.close()


def test_a_connection_is_kept_alive_and_bad_requests_are_refused():
    server = serve()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            for path in ("/healthz", "/readyz", "/metrics?name%5B%5D=podsup_draining"):
                conn.request("GET", path)
                resp = conn.getresponse()
                body = resp.read()
                assert resp.status == 200 and resp.getheader("Connection") is None, path
            assert families(body) and list(families(body)) == ["podsup_draining"]
            wait_for(lambda: server._server.connections == 1, timeout=30, message="one kept-alive connection")
        finally:
            conn.close()
        assert request(server.port, "POST", "/metrics")[0] == 501
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
            raw.sendall(b"nonsense\r\n\r\n")
            assert raw.recv(100).startswith(b"HTTP/1.1 400 ")
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:  # two requests at once
            raw.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.0\r\n\r\n")
            got = b""
            while True:
                chunk = raw.recv(4096)
                if not chunk:
                    break
                got += chunk
            assert got.startswith(b"HTTP/1.1 200 OK") and b"HTTP/1.1 404 Not Found" in got
    finally:
        server.close()
