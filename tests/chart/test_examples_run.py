"""The quick-start examples run as they are: their worker programs, taken
from the manifests, run under a real `podsup run` (as the pod would run
them) and finish jobs podsup counts; the Redis one against a real
redis-server. And the README's pool is examples/hello.yaml."""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request

import pytest
import yaml

from tests.chart.conftest import ROOT
from tests.chart.test_readme_five_minutes import workerpool
from tests.integration import servers
from tests.waiting import wait_for


def pool(name: str) -> dict:
    return yaml.safe_load((ROOT / "examples" / name).read_text())


class Podsup:
    """`podsup run` of a pool's command on a loopback port."""

    def __init__(self, spec: dict, tmp_path, workers: int = 2):
        command = [sys.executable if c == "python" else c for c in spec["command"]] + spec.get("args", [])
        self.log = open(tmp_path / "podsup.log", "w+")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "podsup", "run", "--workers", str(workers), "--http", "127.0.0.1:0",
             "--control", "off", "--", *command],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=tmp_path, start_new_session=True)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def requests(self) -> float:
        addr = wait_for(lambda: (m := re.search(r"serving /metrics.* address=(\S+)", self.output())) and m.group(1),
                        60, interval=0.05, message=lambda: f"podsup's address in {self.output()[-2000:]}")
        text = urllib.request.urlopen(f"http://{addr}/metrics", timeout=5).read().decode()
        found = re.search(r"^podsup_requests_total (\S+)$", text, re.M)
        return float(found.group(1)) if found else 0.0

    def close(self):
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.log.close()


def test_readme_pool_is_examples_hello():
    assert workerpool() == {k: v for k, v in pool("hello.yaml").items()}


def test_hello_runs_as_is(tmp_path):
    run = Podsup(pool("hello.yaml")["spec"], tmp_path)
    try:
        wait_for(lambda: run.requests() >= 4, 60, interval=0.2, message=lambda: run.output()[-2000:])
    finally:
        run.close()


@pytest.fixture
def redis(tmp_path):
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed (Debian package redis-server)")
    server = servers.RedisServer(str(tmp_path / "redis"))
    os.makedirs(server.directory, exist_ok=True)
    server.start()
    yield server
    server.stop()


def resp(port: int, *args: str):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(f"*{len(args)}\r\n".encode() + b"".join(f"${len(a)}\r\n{a}\r\n".encode() for a in args))
        return s.makefile("rb").readline().strip()


def test_redis_queue_worker_drains_a_real_redis(redis, tmp_path):
    spec = pool("redis-queue.yaml")["spec"]
    assert spec["queue"] == {"type": "redis", "name": "jobs", "url": "redis://redis:6379/0", "pollIntervalSeconds": 5}
    (program,) = spec["args"]
    assert program.count('("redis", 6379)') == 1
    spec["args"] = [program.replace('("redis", 6379)', f'("127.0.0.1", {redis.port})')]
    for i in range(12):
        resp(redis.port, "RPUSH", "jobs", f"job-{i}")
    run = Podsup(spec, tmp_path)
    try:
        wait_for(lambda: run.requests() >= 12, 60, interval=0.2, message=lambda: run.output()[-2000:])
        assert resp(redis.port, "LLEN", "jobs") == b":0"
    finally:
        run.close()
