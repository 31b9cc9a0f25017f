"""What the control socket's two ends say about a --control path that is
wrong: not a socket, another program's live socket, a directory that does
not exist. Each is one line that names what is there, not a guess."""
from __future__ import annotations

import os
import socket
import struct
import threading

import pytest

from podsup.cli.control import scale_main, status_main
from podsup.cli.control_client import ControlError, PodsupGone, request
from podsup.plugins.control.handlers import Handlers
from podsup.plugins.control.server import ControlServer
from tests.unit.plugins.control.test_ctl import FakeArbiter


# --- client: `podsup status --control PATH` ----------------------------------

def test_a_regular_file_is_not_a_socket_not_a_podsup_that_is_not_running(tmp_path):
    path = tmp_path / "passwd"
    path.write_text("root:x:0:0\n")
    with pytest.raises(ControlError) as info:
        request(str(path), {"command": "status"})
    assert not isinstance(info.value, PodsupGone)
    assert str(info.value) == f"control socket {path}: not a socket but a regular file (is --control right?)"


def test_a_directory_is_not_a_socket(tmp_path):
    with pytest.raises(ControlError, match="not a socket but a directory"):
        request(str(tmp_path), {"command": "status"})


def test_status_against_a_regular_file_prints_one_line(tmp_path, capsys):
    path = tmp_path / "passwd"
    path.write_text("x")
    assert status_main(["--control", str(path)]) == 1
    err = capsys.readouterr().err
    assert err == f"podsup: control socket {path}: not a socket but a regular file (is --control right?)\n"
    assert "podsup is not running" not in err


def test_a_datagram_socket_is_something_else_not_podsup(tmp_path):
    path = str(tmp_path / "dgram.sock")
    other = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    other.bind(path)
    try:
        with pytest.raises(ControlError, match=f"control socket {path}: something else is listening there, not podsup"):
            request(path, {"command": "status"})
    finally:
        other.close()


def _serve_once(path: str, answer: bytes) -> tuple[socket.socket, threading.Thread]:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(4)

    def serve() -> None:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        with conn:
            conn.recv(4096)
            conn.sendall(answer)
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return server, thread


@pytest.mark.parametrize("answer", [b"HTTP/1.0 400 Bad Request\r\n\r\n", b"", struct.pack(">I", 3) + b"{{{"])
def test_a_stream_socket_that_does_not_answer_as_podsup_is_named_so(tmp_path, answer):
    path = str(tmp_path / "other.sock")
    server, thread = _serve_once(path, answer)
    try:
        with pytest.raises(ControlError) as info:
            request(path, {"command": "status"}, timeout=10)
    finally:
        server.close()
        thread.join(5)
    text = str(info.value)
    assert text.startswith(f"control socket {path}: not podsup's answer (") and "\n" not in text
    assert "is something else listening there?" in text


# --- server: `podsup run --control PATH` -------------------------------------

def test_a_live_socket_of_another_program_is_not_called_another_podsup(tmp_path):
    path = str(tmp_path / "other.sock")
    server, thread = _serve_once(path, b"SSH-2.0-OpenSSH\r\n")
    try:
        with pytest.raises(OSError) as info:
            ControlServer(path, Handlers(FakeArbiter())).start()
    finally:
        server.close()
        thread.join(5)
    assert str(info.value) == f"another program is listening on {path}, not podsup"


def test_a_live_podsup_is_called_another_podsup(tmp_path):
    path = str(tmp_path / "podsup.sock")
    first = ControlServer(path, Handlers(FakeArbiter()))
    first.start()
    try:
        with pytest.raises(OSError) as info:
            ControlServer(path, Handlers(FakeArbiter())).start()
        assert str(info.value) == f"another podsup is listening on {path}"
        assert request(path, {"command": "status"})["desired"] == 2  # the first one still serves
    finally:
        first.close()


def test_a_missing_directory_is_refused_not_created(tmp_path, monkeypatch):
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    path = tmp_path / "nonexistent" / "dir" / "x.sock"
    with pytest.raises(OSError) as info:
        ControlServer(str(path), Handlers(FakeArbiter())).start()
    assert str(info.value) == (f"directory {path.parent} does not exist; create it first "
                               "(podsup creates missing directories only under $XDG_RUNTIME_DIR (not set))")
    assert not (tmp_path / "nonexistent").exists()


def test_a_missing_directory_outside_the_runtime_dir_is_refused(tmp_path, monkeypatch):
    runtime = tmp_path / "run"
    runtime.mkdir()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    for path in (tmp_path / "elsewhere" / "x.sock", runtime / ".." / "escape" / "x.sock"):
        with pytest.raises(OSError, match=f"only under \\$XDG_RUNTIME_DIR \\({runtime}\\)"):
            ControlServer(str(path), Handlers(FakeArbiter())).start()
    assert sorted(os.listdir(tmp_path)) == ["run"]


def test_missing_directories_under_the_runtime_dir_are_created_private(tmp_path, monkeypatch):
    runtime = tmp_path / "run"
    runtime.mkdir()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    path = runtime / "podsup" / "app" / "control.sock"
    server = ControlServer(str(path), Handlers(FakeArbiter()))
    server.start()
    try:
        assert request(str(path), {"command": "status"})["desired"] == 2
        assert os.stat(runtime / "podsup").st_mode & 0o777 == 0o700
    finally:
        server.close()


# --- the CLI's own refusals --------------------------------------------------

def test_scale_names_the_command_once_and_the_allowed_forms(capsys):
    with pytest.raises(SystemExit) as info:
        scale_main(["abc", "--control", "/nonexistent.sock"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err == ("podsup scale: value must be N (set the count), +K (add K) or -K (remove K), "
                   "in ASCII digits (got 'abc')\n")


def test_status_interval_without_watch_is_refused(capsys):
    with pytest.raises(SystemExit) as info:
        status_main(["--interval", "2", "--control", "/nonexistent.sock"])
    assert info.value.code == 2
    assert capsys.readouterr().err == "podsup status: --interval only applies with --watch\n"
