"""Control plane: framing, handlers (against a fake arbiter at our seam), and
server + client over a real Unix socket."""
from __future__ import annotations

import concurrent.futures
import os
import socket
import stat
import struct

import pytest

from podsup.commands import Drain, Reload, Scale
from podsup.ctl import framing
from podsup.ctl.client import ControlError, request
from podsup.ctl.handlers import CommandError, Handlers, parse_scale
from podsup.ctl.server import ControlServer
from podsup.snapshot import PoolSnapshot
from podsup.states import PoolState


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
    with pytest.raises(CommandError, match="N, \\+K or -K"):
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
