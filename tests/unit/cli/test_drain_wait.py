"""``podsup drain --wait`` polls until podsup's workers are gone: only a
socket nobody listens on means podsup exited; a refusal or a broken answer
from a podsup still there means "ask again", never "drained"."""
from __future__ import annotations

import os
import socket
import threading

import pytest

from podsup.cli.control import _workers_gone
from podsup.host import framing


class OneShotServer:
    """A Unix socket answering every request with ``reply`` (None: close without one)."""

    def __init__(self, path: str, reply: dict | None):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(8)
        self.reply = reply
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                framing.recv_message(conn)
                if self.reply is not None:
                    framing.send_message(conn, self.reply)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "ctl.sock")


def test_no_socket_file_means_podsup_exited(path):
    assert _workers_gone(path) is True


def test_a_socket_nobody_listens_on_means_podsup_exited(path):
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)  # bound, never listening: as a SIGKILLed podsup leaves it
    try:
        assert _workers_gone(path) is True
    finally:
        stale.close()


@pytest.mark.parametrize("reply", [
    {"ok": False, "error": "busy: 32 control connections are open"},
    None,  # the connection closed without an answer
], ids=["busy-refusal", "no-answer"])
def test_a_podsup_that_answers_badly_is_not_taken_for_gone(path, reply):
    server = OneShotServer(path, reply)
    try:
        assert _workers_gone(path) is False
    finally:
        server.close()


def test_workers_with_pids_are_not_gone_and_empty_slots_are(path):
    server = OneShotServer(path, {"ok": True, "result": {"workers": [{"id": 0, "pid": 123}]}})
    try:
        assert _workers_gone(path) is False
    finally:
        server.close()
    os.unlink(path)
    server = OneShotServer(path, {"ok": True, "result": {"workers": [{"id": 0, "pid": None}]}})
    try:
        assert _workers_gone(path) is True
    finally:
        server.close()
