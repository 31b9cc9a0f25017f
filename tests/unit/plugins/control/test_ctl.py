"""Control plane: framing, handlers (against a fake arbiter at our seam), and
server + client over a real Unix socket."""
from __future__ import annotations

import concurrent.futures
import errno
import os
import select
import socket
import stat
import struct
import threading
import time

import pytest

from podsup.cli.control import status_main
from podsup.cli.control_client import ControlError, request
from podsup.core.commands import Drain, Reload, Scale
from podsup.core.config import MAX_WORKERS
from podsup.core.snapshot import PoolSnapshot
from podsup.core.states import PoolState
from podsup.host import framing
from podsup.plugins.control.handlers import CommandError, Handlers, parse_scale
from podsup.plugins.control.server import ControlServer
from tests.waiting import wait_for


def snapshot() -> PoolSnapshot:
    return PoolSnapshot(version="0.1.0", started_at=1.0, uptime=2.0, state=PoolState.RUNNING, desired=2,
                        running=2, ready=True, healthy=True, draining=False, crash_loop=False,
                        exits={}, restarts={}, workers=())


class FakeArbiter:
    """Records submitted commands; resolves like the loop would."""

    def __init__(self, fail: Exception | None = None):
        self.submitted: list = []
        self.fail = fail

    def submit(self, command):
        self.submitted.append(command)
        future: concurrent.futures.Future = concurrent.futures.Future()
        if self.fail:
            future.set_exception(self.fail)
        elif isinstance(command, Scale):
            future.set_result({"desired": command.absolute if command.absolute is not None else 2 + command.delta})
        else:
            future.set_result({})
        return future

    def snapshot(self):
        return snapshot()


def test_frame_roundtrip_over_socketpair():
    a, b = socket.socketpair()
    with a, b:
        framing.send_message(a, {"command": "status", "x": "é" * 3})
        assert framing.recv_message(b) == {"command": "status", "x": "ééé"}


def test_frame_refuses_oversize_and_non_objects():
    a, b = socket.socketpair()
    with a, b:
        a.sendall(struct.pack(">I", framing.MAX_FRAME + 1))
        with pytest.raises(framing.FramingError, match="exceeds"):
            framing.recv_message(b)
    with pytest.raises(framing.FramingError, match="not a JSON object"):
        framing.decode_body(b"[1]")
    with pytest.raises(framing.FramingError, match="not UTF-8 JSON"):
        framing.decode_body(b"{nope")


def test_frame_eof_mid_frame():
    a, b = socket.socketpair()
    with b:
        a.sendall(struct.pack(">I", 10) + b"{}")
        a.close()
        with pytest.raises(framing.FramingError, match="mid-frame"):
            framing.recv_message(b)


@pytest.mark.parametrize("text,expected", [
    ("3", Scale(absolute=3)), ("0", Scale(absolute=0)), ("+2", Scale(delta=2)), ("-1", Scale(delta=-1)),
])
def test_parse_scale(text, expected):
    assert parse_scale(text) == expected


@pytest.mark.parametrize("text", ["", "x", "2.5", "+-1", "--1", None])
def test_parse_scale_refuses(text):
    with pytest.raises(CommandError, match=r"^value must be N \(set the count\), \+K \(add K\) or -K \(remove K\)"):
        parse_scale(text)


def test_handlers_dispatch_commands_to_the_arbiter():
    arbiter = FakeArbiter()
    drained = []
    h = Handlers(arbiter, on_drain=lambda: drained.append(len(arbiter.submitted)), drain_budget=42)
    assert h.handle({"command": "scale", "value": "+3"}) == {"ok": True, "result": {"desired": 5}}
    assert h.handle({"command": "reload"})["ok"]
    result = h.handle({"command": "drain"})
    assert result == {"ok": True, "result": {"budget": 42}}
    assert drained == [2]  # readiness flipped before Drain reached the loop
    assert arbiter.submitted == [Scale(delta=3), Reload(), Drain()]
    status = h.handle({"command": "status"})
    assert status["result"]["desired"] == 2 and status["result"]["state"] == "running"


def test_drain_while_already_draining_is_accepted_without_a_command():
    class Draining(FakeArbiter):
        def snapshot(self):
            import dataclasses
            return dataclasses.replace(snapshot(), draining=True)
    arbiter = Draining()
    result = Handlers(arbiter, drain_budget=7).handle({"command": "drain"})
    assert result == {"ok": True, "result": {"draining": True, "already": True, "budget": 7}}
    assert arbiter.submitted == []


def test_handlers_refuse_unknown_and_report_loop_errors():
    h = Handlers(FakeArbiter(fail=RuntimeError("pool is stopping")))
    unknown = h.handle({"command": "explode"})
    assert not unknown["ok"] and "allowed: drain, reload, scale, status" in unknown["error"]
    refused = h.handle({"command": "reload"})
    assert refused == {"ok": False, "error": "reload: pool is stopping"}
    bad = h.handle({"command": "scale", "value": "many"})
    assert not bad["ok"] and "scale: value must be" in bad["error"]


def test_handlers_time_out_when_the_loop_never_answers():
    class Stuck(FakeArbiter):
        def submit(self, command):
            return concurrent.futures.Future()
    h = Handlers(Stuck(), submit_timeout=0.05)
    assert "did not answer" in h.handle({"command": "reload"})["error"]


def test_server_and_client_over_a_real_socket(tmp_path):
    (tmp_path / "ctl").mkdir()
    path = str(tmp_path / "ctl" / "podsup.sock")
    server = ControlServer(path, Handlers(FakeArbiter()))
    server.start()
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert request(path, {"command": "scale", "value": "4"}) == {"desired": 4}
        assert request(path, {"command": "status"})["version"] == "0.1.0"
        with pytest.raises(ControlError, match="unknown 'nope'"):
            request(path, {"command": "nope"})
        # garbage instead of a frame is answered, not fatal
        with socket.socket(socket.AF_UNIX) as raw:
            raw.connect(path)
            raw.sendall(struct.pack(">I", 3) + b"{{{")
            assert framing.recv_message(raw)["ok"] is False
        assert request(path, {"command": "status"})["desired"] == 2
    finally:
        server.close()
    assert not os.path.exists(path)


def test_server_replaces_a_stale_socket_but_not_a_live_one(tmp_path):
    path = str(tmp_path / "podsup.sock")
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)
    stale.close()  # file left behind, nobody listening
    first = ControlServer(path, Handlers(FakeArbiter()))
    first.start()
    try:
        with pytest.raises(OSError, match="another podsup is listening"):
            ControlServer(path, Handlers(FakeArbiter())).start()
    finally:
        first.close()
    regular = tmp_path / "file"
    regular.write_text("not a socket")
    with pytest.raises(OSError, match="exists and is not a socket"):
        ControlServer(str(regular), Handlers(FakeArbiter())).start()
    assert regular.read_text() == "not a socket"  # never deleted


def test_client_errors_name_the_path(tmp_path):
    missing = str(tmp_path / "missing.sock")
    with pytest.raises(ControlError, match=f"control socket {missing}: no such file"):
        request(missing, {"command": "status"})
    dead = str(tmp_path / "dead.sock")
    s = socket.socket(socket.AF_UNIX)
    s.bind(dead)
    s.close()
    with pytest.raises(ControlError, match=f"control socket {dead}: connection refused"):
        request(dead, {"command": "status"})


# --- bounds and hostile input --------------------------------------------------
class RecordingLog:
    def __init__(self):
        self.events: list[tuple[str, str, dict]] = []

    def info(self, msg, **fields):
        self.events.append(("info", msg, fields))

    def warning(self, msg, **fields):
        self.events.append(("warning", msg, fields))

    def error(self, msg, **fields):
        self.events.append(("error", msg, fields))


def test_parse_scale_accepts_the_maximum():
    assert MAX_WORKERS == 1024
    assert parse_scale(str(MAX_WORKERS)) == Scale(absolute=MAX_WORKERS)
    assert parse_scale(f"+{MAX_WORKERS}") == Scale(delta=MAX_WORKERS)
    assert parse_scale("007") == Scale(absolute=7)


@pytest.mark.parametrize("text", ["1025", "100000", "+1025", "+100000", "-100000", "9" * 5000])
def test_parse_scale_refuses_more_than_the_maximum(text):
    with pytest.raises(CommandError, match=r"out of range; allowed: 0\.\.1024 workers") as info:
        parse_scale(text)
    assert "\n" not in str(info.value) and len(str(info.value)) < 100


@pytest.mark.parametrize("text", ["\u0663", "\uff11\uff12", "+\u0661", "-\u06f2", "1\u0663", "\u00b2", "3\n4"])
def test_parse_scale_accepts_ascii_digits_only(text):
    with pytest.raises(CommandError, match=r"^value must be N \(set the count\), \+K \(add K\) or -K \(remove K\)"):
        parse_scale(text)


def test_handlers_refuse_a_delta_that_would_pass_the_maximum():
    arbiter = FakeArbiter()  # desired=2
    h = Handlers(arbiter)
    refused = h.handle({"command": "scale", "value": f"+{MAX_WORKERS - 1}"})
    assert refused == {"ok": False, "error": "scale: +1023 would make 1025 workers; allowed: 0..1024 workers"}
    assert h.handle({"command": "scale", "value": "100000"})["error"].endswith("allowed: 0..1024 workers")
    assert arbiter.submitted == []  # nothing reached the loop
    assert h.handle({"command": "scale", "value": f"+{MAX_WORKERS - 2}"}) == {"ok": True, "result": {"desired": 1024}}
    assert arbiter.submitted == [Scale(delta=MAX_WORKERS - 2)]


def test_decode_body_refuses_deeply_nested_and_huge_numbers():
    with pytest.raises(framing.FramingError, match="nested too deeply"):
        framing.decode_body(b"[" * 100000 + b"]" * 100000)
    with pytest.raises(framing.FramingError, match="nested too deeply"):
        framing.decode_body(b'{"a":' + b"[" * 100000 + b"]" * 100000 + b"}")
    with pytest.raises(framing.FramingError, match="not UTF-8 JSON"):
        framing.decode_body(b'{"value":' + b"1" * 5000 + b"}")  # int() digit limit: a ValueError


def test_recv_message_deadline_bounds_the_whole_read():
    a, b = socket.socketpair()
    with a, b:
        a.sendall(struct.pack(">I", 10) + b"{")  # and never the rest
        raised: list[BaseException] = []

        def read():
            try:
                framing.recv_message(b, deadline=time.monotonic() + 0.3)
            except BaseException as exc:  # noqa: BLE001 - inspected below
                raised.append(exc)
        # b blocks forever without the deadline: read in a thread, give up on it
        # after a generous wait instead of measuring how long it took.
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(30)
        assert not reader.is_alive(), "recv_message kept reading past its deadline"
        assert len(raised) == 1 and isinstance(raised[0], TimeoutError), raised
    c, d = socket.socketpair()
    with c, d:
        c.sendall(struct.pack(">I", 100))
        with pytest.raises(framing.FramingError, match="exceeds 50"):
            framing.recv_message(d, max_size=50)


def _serving(tmp_path, **kwargs) -> tuple[ControlServer, str]:
    path = str(tmp_path / "podsup.sock")
    server = ControlServer(path, Handlers(FakeArbiter()), **kwargs)
    server.start()
    return server, path


def test_server_answers_deeply_nested_frames_and_keeps_serving(tmp_path):
    log = RecordingLog()
    server, path = _serving(tmp_path, log=log)
    try:
        for body in (b"[" * 30000 + b"]" * 30000, b'{"command":' + b"[" * 30000 + b"]" * 30000 + b"}"):
            with socket.socket(socket.AF_UNIX) as raw:
                raw.settimeout(10)
                raw.connect(path)
                raw.sendall(struct.pack(">I", len(body)) + body)
                answer = framing.recv_message(raw)
            assert answer == {"ok": False, "error": "bad request: frame is not UTF-8 JSON: nested too deeply"}
        assert request(path, {"command": "status"}, timeout=5)["desired"] == 2
        assert [e for e in log.events if e[0] == "error"] == []
    finally:
        server.close()


class Peer:
    """A client connection that sends nothing and keeps what the server answers."""

    def __init__(self, path: str):
        self.connected_at = time.monotonic()
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(path)
        self.sock.setblocking(False)
        self.data = b""
        self.closed_at: float | None = None

    def closed_by_server(self) -> bool:
        """True once the server has closed the connection (EOF after any frame)."""
        if self.closed_at is None and select.select([self.sock], [], [], 0)[0]:
            try:
                while chunk := self.sock.recv(65536):
                    self.data += chunk
            except BlockingIOError:
                return False
            except OSError:
                pass
            self.closed_at = time.monotonic()
        return self.closed_at is not None

    def error(self) -> str | None:
        return framing.decode_body(self.data[4:])["error"] if self.data else None


def test_server_bounds_connections_and_drops_idle_ones(tmp_path):
    # The connection timeout is what is tested, so it cannot be very long; it
    # must only outlast the connects below, even on a loaded machine.
    timeout = 5.0
    server, path = _serving(tmp_path, max_connections=2, timeout=timeout)
    idle: list[Peer] = []
    try:
        threads_before = threading.active_count()
        idle = [Peer(path) for _ in range(20)]
        # the first two occupy the slots, the 18 others are answered "busy" at once
        wait_for(lambda: all(p.closed_by_server() for p in idle[2:]), timeout=30,
                 message="the 18 extra connections refused")
        assert all(p.error().startswith("busy: 2 control connections are open") for p in idle[2:])
        assert threading.active_count() <= threads_before + 2
        # a client of an over-full server reads the refusal, even if its send hit a closed socket
        with socket.socket(socket.AF_UNIX) as raw:
            raw.settimeout(30)
            raw.connect(path)
            answer = framing.recv_message(raw)
        assert answer["ok"] is False and answer["error"].startswith("busy: 2 control connections are open")
        # idle clients are dropped after the timeout — not refused, not before it —
        # then the server serves again
        wait_for(lambda: all(p.closed_by_server() for p in idle[:2]), timeout=30, message="idle clients dropped")
        assert [p.error() for p in idle[:2]] == ["bad request: timed out"] * 2
        assert all(p.closed_at - p.connected_at >= timeout for p in idle[:2])
        assert request(path, {"command": "status"}, timeout=30)["desired"] == 2
        wait_for(lambda: threading.active_count() <= threads_before, timeout=30, message="connection threads ended")
    finally:
        for peer in idle:
            peer.sock.close()
        server.close()


def test_server_drops_a_client_that_trickles_its_request(tmp_path):
    server, path = _serving(tmp_path, timeout=1.0)
    try:
        with socket.socket(socket.AF_UNIX) as slow:
            slow.connect(path)
            slow.sendall(struct.pack(">I", 1000))
            started = time.monotonic()
            closed = False
            # 1000 bytes at one per >= 0.1 s take >= 100 s: a timeout per recv()
            # would keep this client for all of that window; a deadline for the
            # whole request drops it after 1 s.
            while not closed and time.monotonic() - started < 30:
                try:
                    slow.send(b" ")  # a byte at a time: each recv() is well within the timeout
                except OSError:
                    closed = True
                    break
                readable, _, _ = select.select([slow], [], [], 0.1)  # paces the trickle, wakes on the answer
                closed = bool(readable)
            assert closed, "the server kept a trickling client"
            slow.settimeout(30)
            assert framing.recv_message(slow) == {"ok": False, "error": "bad request: timed out"}
    finally:
        server.close()


def test_accept_loop_survives_threads_that_cannot_start(tmp_path):
    class Flaky(threading.Thread):
        failures = 3

        def start(self):
            if Flaky.failures > 0:
                Flaky.failures -= 1
                raise RuntimeError("can't start new thread")
            super().start()

    log = RecordingLog()
    path = str(tmp_path / "podsup.sock")
    server = ControlServer(path, Handlers(FakeArbiter()), log=log)
    server.thread_class = Flaky
    server.start()
    try:
        with pytest.raises(ControlError, match="busy: cannot start a thread"):
            request(path, {"command": "status"}, timeout=5)
        status = wait_for(lambda: request(path, {"command": "status"}, timeout=5), timeout=30,
                          message="status answered again")
        assert status["desired"] == 2 and Flaky.failures == 0
        # the accept loop logs the recovery after it started the thread that
        # answered us: it may not have got there yet
        wait_for(lambda: any(e[:2] == ("info", "control socket recovered") for e in log.events), timeout=30,
                 message=lambda: f"the recovery logged: {log.events}")
        warnings = [e for e in log.events if e[0] == "warning"]
        assert len(warnings) == 1 and "can't start new thread" in warnings[0][2]["error"]  # once, not per retry
    finally:
        server.close()


def test_accept_loop_survives_accept_errors_and_closes_promptly(tmp_path):
    server = ControlServer(str(tmp_path / "unused.sock"), Handlers(FakeArbiter()), log=RecordingLog())
    client, served = socket.socketpair()
    calls = []

    class FailingListener:
        def accept(self):
            calls.append(time.monotonic())
            if len(calls) <= 4:
                raise OSError(errno.EMFILE, "Too many open files")
            if len(calls) == 5:
                return served, None
            server._closed.wait()  # like a blocking accept() until close()
            raise OSError(errno.EBADF, "Bad file descriptor")

    loop = threading.Thread(target=server._accept_loop, args=(FailingListener(),), daemon=True)
    loop.start()
    with client:
        client.settimeout(10)
        framing.send_message(client, {"command": "status"})
        assert framing.recv_message(client)["result"]["desired"] == 2
    assert calls[4] - calls[0] >= 0.05  # backed off between failures, no busy spin
    # "recovered" is logged by the accept loop after it started the thread that
    # answered us: wait for it, then check nothing else was logged
    wait_for(lambda: len(server.log.events) >= 2, timeout=30, message=lambda: f"two log events: {server.log.events}")
    assert [e[1] for e in server.log.events] == ["control socket failing, retrying", "control socket recovered"]
    server.close()
    loop.join(30)  # blocked in accept() until close() (no timeout of its own): close() must end it
    assert not loop.is_alive()


@pytest.mark.parametrize("value", ["nan", "inf", "0", "-1", "1e300", "soon"])
def test_status_refuses_an_interval_that_is_not_finite_and_positive(value, capsys, tmp_path):
    with pytest.raises(SystemExit) as info:
        status_main(["--watch", f"--interval={value}", "--control", str(tmp_path / "none.sock")])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--interval" in err and "> 0 and <= 86400" in err
