"""podsup.client, the worker-side report helper, against a real datagram socket."""
from __future__ import annotations

import os
import socket
import types

import pytest

from podsup import client
from podsup.core.protocol import parse_report
from podsup.names import ENV_REPORT


@pytest.fixture
def report_socket(tmp_path, monkeypatch):
    path = str(tmp_path / "report.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    monkeypatch.setenv(ENV_REPORT, path)
    yield sock
    sock.close()


def received(sock: socket.socket, count: int) -> list[bytes]:
    return [sock.recv(4096) for _ in range(count)]


def test_each_report_is_one_datagram_the_parser_accepts(report_socket):
    assert client.heartbeat() and client.busy() and client.idle()
    assert client.done(0.25) and client.queue("jobs", 12)
    data = received(report_socket, 5)
    assert data == [b"heartbeat", b"busy", b"idle", b"done 0.250000", b"queue jobs 12"]
    kinds = [parse_report(d).kind for d in data]
    assert kinds == ["heartbeat", "busy", "idle", "done", "queue"]
    assert parse_report(data[3]).seconds == 0.25


def test_job_context_sends_busy_then_done_even_on_error(report_socket, monkeypatch):
    # the job's duration from a fake clock (the module's time), not from how
    # fast this machine happens to be
    readings = iter([100.0, 102.5])
    monkeypatch.setattr(client, "time", types.SimpleNamespace(monotonic=lambda: next(readings)))
    with pytest.raises(RuntimeError):
        with client.job():
            raise RuntimeError("job failed")
    busy, done = received(report_socket, 2)
    assert busy == b"busy"
    report = parse_report(done)
    assert report.kind == "done" and report.seconds == 2.5


def test_noop_without_podsup(monkeypatch):
    monkeypatch.delenv(ENV_REPORT, raising=False)
    assert client.heartbeat() is False
    with client.job():
        pass


def test_podsup_gone_never_raises(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_REPORT, str(tmp_path / "nobody.sock"))
    assert client.busy() is False
    assert client.done(1.0) is False


@pytest.mark.parametrize("call", [
    lambda: client.queue("two words", 1), lambda: client.queue("", 1), lambda: client.queue("q\x00", 1),
    lambda: client.queue("q" * 201, 1), lambda: client.queue("q\ud800", 1), lambda: client.queue(5, 1), lambda: client.queue("q", float("nan")), lambda: client.queue("q", -3),
    lambda: client.done(-1), lambda: client.done("abc"), lambda: client.done(float("inf")), lambda: client.done(None),
])
def test_bad_arguments_are_dropped_never_sent_never_raised(report_socket, call):
    assert call() is False
    report_socket.setblocking(False)
    with pytest.raises(BlockingIOError):
        report_socket.recv(4096)  # nothing was sent


@pytest.mark.parametrize("call", [lambda: client.queue("two words", 1), lambda: client.done("abc"),
                                  lambda: client.done(-1)])
def test_bad_arguments_outside_podsup_are_a_no_op_too(monkeypatch, call):
    monkeypatch.delenv(ENV_REPORT, raising=False)
    assert call() is False


def test_numbers_as_strings_and_ints_are_sent(report_socket):
    assert client.done("0.25") is True and client.queue("jobs", 7) is True
    assert [parse_report(d) for d in received(report_socket, 2)] == [
        parse_report(b"done 0.25"), parse_report(b"queue jobs 7")]


def test_a_forked_child_gets_its_own_socket(report_socket):
    client.heartbeat()
    pid = os.fork()
    if pid == 0:
        os._exit(0 if client.busy() else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert received(report_socket, 2) == [b"heartbeat", b"busy"]
