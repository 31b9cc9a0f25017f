"""Bad input and odd moments, against a real podsup: one line and an exit
code, never a traceback, and nothing of anyone else's lost."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import struct
import sys
import threading

from tests.integration.podsup_process import PodsupProcess, worker
from tests.integration.servers import podsup_cli

PY = sys.executable


def stderr_of(p: PodsupProcess) -> list[str]:
    return [t for s, t in p.lines if s == "stderr"]


def test_another_programs_live_datagram_socket_is_not_taken_over(tmp_path):
    path = str(tmp_path / "dgram.sock")
    other = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    other.bind(path)
    try:
        with PodsupProcess(["run", "--control", path, "--", "sleep", "30"]) as p:
            assert p.wait_exit(30) == 2
            err = stderr_of(p)
        assert len(err) == 1 and f"invalid --control {path}" in err[0] and "another program" in err[0], err
        assert os.path.exists(path)  # still the other program's
        socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b"still here", path)
        assert other.recv(100) == b"still here"
    finally:
        other.close()


def test_a_control_path_that_cannot_be_bound_stops_start_up():
    with PodsupProcess(["run", "--control", "/proc/podsup-test.sock", "--", "sleep", "30"]) as p:
        assert p.wait_exit(30) == 2
        err = stderr_of(p)
    assert len(err) == 1 and "invalid --control /proc/podsup-test.sock" in err[0], err
    assert not p.matches(r"worker started")


def test_an_http_host_that_cannot_be_encoded_is_one_line():
    with PodsupProcess(["run", "--control", "off", "--http", "\u00fc" * 64 + ":0", "--", "sleep", "30"]) as p:
        assert p.wait_exit(30) == 2
        err = stderr_of(p)
    assert len(err) == 1 and "invalid --http" in err[0] and "Traceback" not in err[0], err


def test_sigterm_during_a_slow_preload_import_stops_podsup_with_one_line(tmp_path):
    (tmp_path / "slow_import.py").write_text(
        "import pathlib, time\npathlib.Path('importing').touch()\ntime.sleep(60)\ndef main():\n    pass\n")
    with PodsupProcess(["run", "--workers", "1", "--preload", "slow_import:main"], cwd=str(tmp_path)) as p:
        from tests.waiting import wait_for
        wait_for(lambda: (tmp_path / "importing").exists(), 30, message="the import to begin")
        p.signal(signal.SIGTERM)
        assert p.wait_exit(30) == 143
        err = stderr_of(p)
    assert err == ["podsup run: SIGTERM while starting; nothing was started"], err


def test_an_empty_prometheus_multiproc_dir_leaves_nothing_in_the_working_directory(tmp_path):
    with PodsupProcess(["run", "--workers", "1", "--", PY, worker("metrics_worker")],
                       env={"PROMETHEUS_MULTIPROC_DIR": "", "JOB_SECONDS": "0.02"}, cwd=str(tmp_path)) as p:
        p.wait_for_line(r"worker started slot=0")
        from tests.integration.servers import sample
        from tests.waiting import wait_for
        wait_for(lambda: (sample(p.http_port, "podsup_requests_total") or 0) > 0, 30, message="done reports")
        p.signal(signal.SIGTERM)
        assert p.wait_exit(30) == 0
    assert os.listdir(tmp_path) == []


def test_status_against_a_socket_that_is_not_podsups_is_one_line(tmp_path):
    path = str(tmp_path / "fake.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(4)
    body = json.dumps({"ok": True, "result": {"loadavg": "abc", "workers": "abc"}}).encode()

    def serve() -> None:
        for _ in range(2):
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                (size,) = struct.unpack(">I", conn.recv(4))
                conn.recv(size)
                conn.sendall(struct.pack(">I", len(body)) + body)
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        result = podsup_cli("status", "--control", path, timeout=30)
    finally:
        server.close()
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1 and "is it podsup's?" in result.stderr


def test_a_control_path_in_a_missing_directory_is_refused_and_nothing_is_created(tmp_path):
    path = tmp_path / "nonexistent" / "dir" / "x.sock"
    with PodsupProcess(["run", "--control", str(path), "--", "sleep", "30"], env={"XDG_RUNTIME_DIR": ""}) as p:
        assert p.wait_exit(30) == 2
        err = stderr_of(p)
    assert err == [f"podsup run: invalid --control {path}: directory {path.parent} does not exist; create it "
                   "first (podsup creates missing directories only under $XDG_RUNTIME_DIR (not set))"], err
    assert not (tmp_path / "nonexistent").exists()
    assert not p.matches(r"worker started")


def test_another_programs_live_stream_socket_is_not_called_a_podsup(tmp_path):
    path = str(tmp_path / "other.sock")
    other = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    other.bind(path)
    other.listen(4)

    def serve() -> None:  # answers like a line protocol would, not with podsup's frame
        try:
            conn, _ = other.accept()
        except OSError:
            return
        with conn:
            conn.sendall(b"220 hello\r\n")
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with PodsupProcess(["run", "--control", path, "--", "sleep", "30"]) as p:
            assert p.wait_exit(30) == 2
            err = stderr_of(p)
    finally:
        other.close()
        thread.join(5)
    assert err == [f"podsup run: invalid --control {path}: another program is listening on {path}, not podsup"], err


def test_the_bound_http_address_is_podsups_first_line():
    with PodsupProcess(["run", "--http", "0.0.0.0:0", "--workers", "1", "--", "sleep", "30"]) as p:
        p.wait_for_line(r"worker started slot=0")
        first = next(text for stream, text in p.lines if stream == "stderr")
        p.signal(signal.SIGTERM)
        assert p.wait_exit(30) == 0
    # every interface, and the port the kernel chose: what a user needs to reach or close it
    assert re.fullmatch(r"\[podsup\] serving /metrics, /healthz, /readyz address=0\.0\.0\.0:[1-9][0-9]*", first), first
