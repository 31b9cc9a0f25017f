"""Real servers for integration tests, each on free loopback ports in a
private directory: redis-server, rabbitmq-server and Prometheus (Debian
packages, installed by scripts/install-deps.sh).

Fixtures that use these live in tests/integration/conftest.py (session
scoped: RabbitMQ in particular starts slowly, so it starts once per session).
Every server is stopped at the end of the session, including the private epmd
RabbitMQ starts. Readiness is awaited with deadlines (``wait_for``), never
fixed sleeps.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from typing import Any

from tests.waiting import wait_for

#: Start-up deadlines, generous for 2 shared cores.
REDIS_START = 30.0
RABBITMQ_START = 120.0
PROMETHEUS_START = 60.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _stop(proc: subprocess.Popen | None, timeout: float = 30.0) -> None:
    """TERM the server's process group, KILL it after ``timeout``."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)


def _tail(path: str, size: int = 2000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - size))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


class RedisServer:
    """A redis-server without persistence; ``stop()``/``start()`` keep the port
    so a test can simulate a broker outage and its recovery."""

    def __init__(self, directory: str, password: str | None = None):
        self.directory = directory
        self.port = free_port()
        self.password = password
        self.proc: subprocess.Popen | None = None
        self.log = os.path.join(directory, "redis.log")

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            raise RuntimeError("redis-server not installed (scripts/install-deps.sh installs it)")
        self.proc = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.directory, "--logfile", self.log, "--daemonize", "no",
             *(["--requirepass", self.password] if self.password else [])],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_for(lambda: self.proc.poll() is None and self.ping(), timeout=REDIS_START,
                 message=lambda: f"redis-server on port {self.port}: {_tail(self.log)}")

    def ping(self) -> bool:
        import redis
        return bool(self.client().ping())

    def client(self) -> Any:
        import redis
        return redis.Redis(port=self.port, password=self.password, socket_timeout=5)

    def stop(self) -> None:
        _stop(self.proc)
        self.proc = None


class RabbitMQServer:
    """rabbitmq-server as root without the Debian wrapper: private node name,
    mnesia/log dirs, HOME (Erlang cookie), AMQP, distribution and epmd ports."""

    BIN = "/usr/lib/rabbitmq/bin/rabbitmq-server"

    def __init__(self, directory: str):
        self.directory = directory
        self.port = free_port()
        self.dist_port = free_port()
        self.epmd_port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log = os.path.join(directory, "stdout.log")

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    def env(self) -> dict[str, str]:
        d = self.directory
        env = dict(os.environ)
        env.update(
            HOME=os.path.join(d, "home"),
            RABBITMQ_MNESIA_BASE=os.path.join(d, "mnesia"),
            RABBITMQ_LOG_BASE=os.path.join(d, "log"),
            RABBITMQ_NODENAME=f"podsup{self.port}@localhost",
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            ERL_EPMD_PORT=str(self.epmd_port),
            RABBITMQ_ENABLED_PLUGINS_FILE=os.path.join(d, "enabled_plugins"),
            RABBITMQ_PID_FILE=os.path.join(d, "rabbitmq.pid"),
            RABBITMQ_CONFIG_FILE=os.path.join(d, "rabbitmq"),
            RABBITMQ_ADVANCED_CONFIG_FILE=os.path.join(d, "advanced.config"),
            RABBITMQ_CONF_ENV_FILE=os.path.join(d, "rabbitmq-env.conf"),
        )
        return env

    def start(self) -> None:
        exe = self.BIN if os.path.exists(self.BIN) else shutil.which("rabbitmq-server")
        if exe is None:
            raise RuntimeError("rabbitmq-server not installed (scripts/install-deps.sh installs it)")
        os.makedirs(os.path.join(self.directory, "home"), exist_ok=True)
        with open(os.path.join(self.directory, "enabled_plugins"), "w") as f:
            f.write("[].\n")
        out = open(self.log, "wb")
        self.proc = subprocess.Popen([exe], env=self.env(), cwd=self.directory, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        wait_for(lambda: self.proc.poll() is None and self.channel_ok(), timeout=RABBITMQ_START, interval=0.3,
                 message=lambda: f"rabbitmq-server on port {self.port}: {_tail(self.log)}")

    def connection(self) -> Any:
        import pika
        params = pika.URLParameters(self.url)
        params.connection_attempts = 1
        params.socket_timeout = 5
        return pika.BlockingConnection(params)

    def channel_ok(self) -> bool:
        conn = self.connection()
        conn.close()
        return True

    def stop(self) -> None:
        _stop(self.proc, timeout=60)
        self.proc = None
        epmd = shutil.which("epmd") or next(iter(sorted(
            os.path.join(r, "epmd") for r, _, files in os.walk("/usr/lib/erlang") if "epmd" in files)), None)
        if epmd:
            subprocess.run([epmd, "-port", str(self.epmd_port), "-kill"], capture_output=True,
                           env={**os.environ, "ERL_EPMD_PORT": str(self.epmd_port)}, timeout=30)


class PrometheusServer:
    """A real Prometheus scraping targets listed in a file_sd file every second;
    tests add targets with :meth:`scrape` and read series with :meth:`query`."""

    def __init__(self, directory: str):
        self.directory = directory
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.targets_file = os.path.join(directory, "targets.json")
        self.log = os.path.join(directory, "prometheus.log")
        self._targets: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        exe = shutil.which("prometheus")
        if exe is None:
            raise RuntimeError("prometheus not installed (scripts/install-deps.sh installs it)")
        self._write_targets()
        config = os.path.join(self.directory, "prometheus.yml")
        with open(config, "w") as f:
            f.write(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                "scrape_configs:\n  - job_name: podsup\n    file_sd_configs:\n"
                f"      - files: ['{self.targets_file}']\n        refresh_interval: 1s\n")
        out = open(self.log, "wb")
        self.proc = subprocess.Popen(
            [exe, f"--config.file={config}", f"--storage.tsdb.path={os.path.join(self.directory, 'data')}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=1h"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        wait_for(lambda: self.proc.poll() is None and self._get("/-/ready") == 200, timeout=PROMETHEUS_START,
                 message=lambda: f"prometheus on port {self.port}: {_tail(self.log)}")

    def _get(self, path: str) -> int:
        with urllib.request.urlopen(self.url + path, timeout=5) as resp:
            return resp.status

    def _write_targets(self) -> None:
        tmp = self.targets_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump([{"targets": self._targets, "labels": {}}], f)
        os.replace(tmp, self.targets_file)  # atomic: Prometheus never reads half a file

    def scrape(self, host_port: str) -> None:
        self._targets.append(host_port)
        self._write_targets()

    def forget(self, host_port: str) -> None:
        if host_port in self._targets:
            self._targets.remove(host_port)
            self._write_targets()

    def query(self, promql: str) -> list[dict[str, Any]]:
        """Instant query through the HTTP API; the ``result`` vector."""
        url = self.url + "/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=10) as resp:
            data = json.load(resp)
        assert data["status"] == "success", data
        return data["data"]["result"]

    def stop(self) -> None:
        _stop(self.proc)
        self.proc = None


def server_dir(name: str) -> str:
    return tempfile.mkdtemp(prefix=f"podsup-test-{name}-")




# --- reading a running podsup (used by the integration tests) -----------------

def http_get(port: int, path: str, timeout: float = 10.0) -> tuple[int, str]:
    """(status, body) of GET http://127.0.0.1:PORT/PATH (error statuses too)."""
    import urllib.error
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    """podsup's /metrics as {(sample name, sorted labels): value}."""
    from prometheus_client.parser import text_string_to_metric_families
    status, body = http_get(port, "/metrics")
    assert status == 200, body
    out = {}
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def sample(port: int, name: str, **labels: str) -> float | None:
    """One sample of podsup's /metrics, None when absent."""
    return scrape(port).get((name, tuple(sorted(labels.items()))))


def podsup_cli(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    """Run ``python -m podsup ARGS`` like a user (or a preStop hook) would."""
    import sys
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {**os.environ, "PYTHONPATH": repo + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "podsup", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=repo, stdin=subprocess.DEVNULL)


def status_json(control: str) -> dict[str, Any]:
    """``podsup status --json`` through the real CLI."""
    result = podsup_cli("status", "--json", "--control", control)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def live_pids(status: dict[str, Any]) -> set[int]:
    return {w["pid"] for w in status["workers"] if w["pid"] is not None}
