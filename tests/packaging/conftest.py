"""Packaging fixtures: the standalone podsup executable, built once per test
session with the same script as `make podsup-binary` and the Dockerfile, and a
runner for it. Figures (size, build time, start-up time) are printed in the
terminal summary, never asserted."""
from __future__ import annotations

import os
import pathlib
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import psutil
import pytest

from tests.waiting import Timeout, wait_for

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIGURES: dict[str, str] = {}


def pytest_terminal_summary(terminalreporter):
    if FIGURES:
        terminalreporter.section("packaging figures")
        for key, value in FIGURES.items():
            terminalreporter.write_line(f"{key}: {value}")


@pytest.fixture(scope="session")
def podsup_binary(tmp_path_factory) -> pathlib.Path:
    """dist/podsup built by scripts/build-binary.sh into a temporary dist dir."""
    dist = tmp_path_factory.mktemp("dist")
    started = time.monotonic()
    # built by the interpreter running the tests (make test: .venv's), which has
    # the pinned PyInstaller (scripts/install-extra.sh) or gets it from the script
    proc = subprocess.run(["bash", "scripts/build-binary.sh", "--dist", str(dist)], cwd=ROOT,
                          capture_output=True, text=True, timeout=540,
                          env={**os.environ, "PYTHON": sys.executable})
    assert proc.returncode == 0, f"build-binary.sh failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    binary = dist / "podsup"
    FIGURES["binary build time"] = f"{time.monotonic() - started:.1f} s"
    FIGURES["binary size"] = f"{binary.stat().st_size / 2**20:.1f} MiB"
    return binary


def clean_env(**extra: str) -> dict[str, str]:
    """An environment with no trace of this repository's Python: the binary
    must not need PYTHONPATH, a virtualenv or the source tree."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": os.environ.get("HOME", "/root")}
    env.update(extra)
    return env


def startup_times(argv: list[str], runs: int = 5, **kw) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, timeout=60, **kw)
        times.append(time.perf_counter() - started)
    return times


def median_ms(times: list[float]) -> str:
    return f"{statistics.median(times) * 1000:.0f} ms (median of {len(times)})"


class BinaryRun:
    """`podsup run` from the standalone executable, output to a log file.

    The test's own loopback HTTP port and control socket keep parallel runs
    apart. Everything left is killed at close.
    """

    def __init__(self, binary: pathlib.Path, workdir: pathlib.Path, run_args: list[str], command: list[str]):
        self.binary = binary
        # A short directory: a Unix socket path must stay under 108 bytes.
        self.sockdir = tempfile.mkdtemp(prefix="psb-")
        self.control = os.path.join(self.sockdir, "control.sock")
        self.http_port = free_port()
        self.log_path = workdir / "podsup.log"
        self._log = open(self.log_path, "wb")
        argv = [str(binary), "run", "--http", f"127.0.0.1:{self.http_port}", "--control", self.control,
                *run_args, "--", *command]
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=clean_env(), cwd=workdir)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def count(self, pattern: str) -> int:
        return len(re.findall(pattern, self.output(), flags=re.M))

    def wait_for_line(self, pattern: str, count: int = 1, timeout: float = 30.0) -> None:
        wait_for(lambda: self.count(pattern) >= count, timeout,
                 message=lambda: f"{count} line(s) matching {pattern!r}; output:\n{self.output()[-3000:]}")

    def status(self) -> dict:
        """`podsup status --json`, asked of the binary itself."""
        import json

        proc = subprocess.run([str(self.binary), "status", "--json", "--control", self.control],
                              capture_output=True, text=True, timeout=30, env=clean_env())
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    def family(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def wait_exit(self, timeout: float = 60.0) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise Timeout(f"podsup did not exit in {timeout}s:\n{self.output()[-3000:]}") from None

    def close(self) -> None:
        family = self.family()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        for child in family:
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                child.kill()
            except psutil.Error:
                pass
        self._log.close()
        shutil.rmtree(self.sockdir, ignore_errors=True)


@pytest.fixture
def run_binary(podsup_binary, tmp_path):
    runs: list[BinaryRun] = []

    def start(run_args: list[str], command: list[str]) -> BinaryRun:
        run = BinaryRun(podsup_binary, tmp_path, run_args, command)
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
