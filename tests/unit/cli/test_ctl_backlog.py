"""A full listen backlog is a busy podsup, not an absent one: the control
client retries connect() until its deadline (a Unix socket fails a connect
to a full backlog at once with EAGAIN)."""
from __future__ import annotations

import socket
import threading

import pytest

from podsup.cli.control_client import ControlError, PodsupGone, request
from podsup.host import framing


def full_backlog(path: str) -> tuple[socket.socket, list[socket.socket]]:
    """A listening socket nobody accepts on, its backlog filled."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(0)
    pending = []
    for _ in range(1000):
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.setblocking(False)
        try:
            client.connect(path)
        except BlockingIOError:
            client.close()
            return server, pending
        pending.append(client)
    raise AssertionError("the backlog never filled")


def test_a_full_backlog_is_waited_on_then_reported_as_busy_not_gone(tmp_path):
    path = str(tmp_path / "ctl.sock")
    server, pending = full_backlog(path)
    try:
        with pytest.raises(ControlError) as info:
            request(path, {"command": "status"}, timeout=0.5)
        assert not isinstance(info.value, PodsupGone)
        assert "backlog stayed full" in str(info.value) and path in str(info.value)
    finally:
        for client in pending:
            client.close()
        server.close()


def test_a_connect_that_finds_the_backlog_full_succeeds_once_podsup_accepts(tmp_path):
    path = str(tmp_path / "ctl.sock")
    server, pending = full_backlog(path)
    accepting = threading.Event()

    def serve() -> None:
        accepting.wait(30)
        for client in pending:
            client.close()
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                try:
                    framing.recv_message(conn)
                except (OSError, framing.FramingError):
                    continue  # one of the filler connections, closed unsent
                framing.send_message(conn, {"ok": True, "result": {"desired": 3}})
                return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        threading.Timer(0.3, accepting.set).start()  # podsup gets to its accept loop a little later
        assert request(path, {"command": "status"}, timeout=30) == {"desired": 3}
    finally:
        accepting.set()
        server.close()
        thread.join(30)
