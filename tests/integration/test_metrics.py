"""/metrics end to end: a real Prometheus scraping podsup, promtool on the live
exposition, malformed reports, and the shell and PHP report examples."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys

import psutil
import pytest

from podsup import names
from tests.integration.podsup_process import REPO, PodsupProcess, worker
from tests.integration.servers import http_get, sample, scrape
from tests.waiting import wait_for

EXAMPLES = worker("x").rsplit("/", 1)[0]


def test_prometheus_scrapes_podsup_series(prometheus_server):
    with PodsupProcess(["run", "--workers", "2", "--", sys.executable, worker("metrics_worker")]) as p:
        target = f"127.0.0.1:{p.http_port}"
        prometheus_server.scrape(target)
        try:
            def series(promql):
                return prometheus_server.query(f'{promql}{{instance="{target}"}}')
            desired = wait_for(lambda: series("podsup_workers_desired"), timeout=60,
                               message="podsup_workers_desired in Prometheus")
            assert float(desired[0]["value"][1]) == 2
            wait_for(lambda: [r for r in series("podsup_requests_total") if float(r["value"][1]) > 0], timeout=60,
                     message="requests counted in Prometheus")
            for name in (names.METRIC_REQUESTS_PER_SECOND, names.METRIC_BUSY_RATIO, "podsup_worker_rss_bytes",
                         "podsup_request_duration_seconds_bucket", "app_jobs_total"):
                assert wait_for(lambda: series(name), timeout=30, message=f"{name} in Prometheus")
            # the latest scrape may predate the second worker's first report (it was
            # "starting" then), or have failed (a 1 s scrape timeout on a loaded
            # machine): wait for a scrape that shows both workers up
            def up_workers():
                busy = prometheus_server.query(f'podsup_workers{{instance="{target}",state=~"idle|busy"}}')
                return sum(float(r["value"][1]) for r in busy)
            wait_for(lambda: up_workers() == 2, timeout=60,
                     message=lambda: f"2 idle or busy workers in Prometheus (last: {up_workers()})")
            wait_for(lambda: [r for r in series("up") if float(r["value"][1]) == 1], timeout=60,
                     message="up == 1 in Prometheus")
        finally:
            prometheus_server.forget(target)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus) not installed")
def test_promtool_accepts_the_live_exposition():
    # a crashing slot puts exits and restarts in the exposition; the Python
    # workers add their own multiprocess metrics
    with PodsupProcess(["run", "--workers", "2", "--", sys.executable, worker("metrics_worker")],
                       env={"JOBS_PER_LIFE": "3"}) as p:
        wait_for(lambda: (sample(p.http_port, "podsup_worker_restarts_total", reason="exit") or 0) >= 1
                 and (sample(p.http_port, "app_jobs_total") or 0) > 0, timeout=60,
                 message="a respawn and worker metrics in /metrics")
        status, body = http_get(p.http_port, "/metrics")
        assert status == 200 and "podsup_worker_exits_total" in body
        result = subprocess.run(["promtool", "check", "metrics"], input=body.encode(), capture_output=True,
                                timeout=60)
        assert result.returncode == 0, (result.stdout + result.stderr).decode()


def report_path(p: PodsupProcess) -> str:
    def find():
        for child in p.children():
            env = child.environ()
            if names.ENV_REPORT in env:
                return env[names.ENV_REPORT]
        return None
    return wait_for(find, timeout=30, message="a worker with PODSUP_REPORT")


def test_malformed_reports_are_counted_and_ignored():
    with PodsupProcess(["run", "--workers", "1", "--", sys.executable, worker("metrics_worker")]) as p:
        path = report_path(p)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            for junk in (b"explode", b"done -1", b"\xff\xfe", b"queue onlyname", b"busy extra words"):
                s.sendto(junk, path)
        wait_for(lambda: sample(p.http_port, "podsup_reports_malformed_total") == 5, timeout=30,
                 message="5 malformed reports counted")
        assert p.returncode is None
        before = sample(p.http_port, "podsup_requests_total")
        wait_for(lambda: sample(p.http_port, "podsup_requests_total") > before, timeout=30,
                 message="good reports still counted after the junk")


@pytest.mark.parametrize("command", [
    pytest.param(["sh", f"{EXAMPLES}/report_worker.sh"], id="shell",
                 marks=pytest.mark.skipif(shutil.which("socat") is None, reason="socat not installed")),
    pytest.param(["php", f"{EXAMPLES}/report_worker.php"], id="php",
                 marks=pytest.mark.skipif(shutil.which("php") is None, reason="php-cli not installed")),
])
def test_report_examples_feed_the_metrics(command):
    with PodsupProcess(["run", "--workers", "2", "--", *command], env={"JOB_SECONDS": "0.05"}) as p:
        wait_for(lambda: (sample(p.http_port, "podsup_requests_total") or 0) >= 10, timeout=60,
                 message=lambda: f"10 done reports from {command[0]} workers; {p.output()[-2000:]}")
        got = scrape(p.http_port)
        assert got[("podsup_request_duration_seconds_count", ())] >= 10
        assert got[(names.METRIC_REQUESTS_PER_SECOND, ())] > 0
        if command[0] == "sh":
            assert got.get((names.METRIC_QUEUE_DEPTH, (("queue", "shell-backlog"),)), 0) >= 1
        per_worker = [w for w in psutil.Process(p.pid).children() if w.status() != psutil.STATUS_ZOMBIE]
        assert len(per_worker) == 2


def test_reports_arrive_with_a_tmpdir_too_deep_for_a_socket_path(tmp_path):
    """A Unix socket path has at most 107 bytes: under a deep $TMPDIR the
    report socket goes to /tmp instead of podsup failing to start."""
    deep = tmp_path / ("d" * 60) / ("e" * 40)
    deep.mkdir(parents=True)
    with PodsupProcess(["run", "--workers", "1", "--", sys.executable, worker("metrics_worker")],
                       env={"TMPDIR": str(deep), "JOB_SECONDS": "0.02"}) as p:
        path = report_path(p)
        assert path.startswith("/tmp/podsup-report-") and len(path.encode()) <= 107
        wait_for(lambda: (sample(p.http_port, "podsup_requests_total") or 0) > 0, timeout=30,
                 message="done reports through the fallback socket")
        p.signal(signal.SIGTERM)
        assert p.wait_exit(timeout=60) == 0
    assert not os.path.exists(os.path.dirname(path))  # removed at exit like any other


def test_a_taken_http_port_is_one_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with PodsupProcess(["run", "--workers", "1", "--http", f"127.0.0.1:{port}", "--",
                            sys.executable, worker("metrics_worker")]) as p:
            assert p.wait_exit(timeout=60) == 2
            lines = [text for _, text in p.lines if text.strip()]
            assert lines == [f"podsup run: invalid --http 127.0.0.1:{port}: cannot listen: Address already in use"]


def documented_metrics() -> dict[str, tuple[str, str]]:
    """name -> (type, help) from docs/metrics.md's "podsup's metrics" table
    (backticks dropped)."""
    with open(os.path.join(REPO, "docs", "metrics.md"), encoding="utf-8") as handle:
        text = handle.read()
    section = text.split("\n## podsup's metrics\n", 1)[1].split("\n## ", 1)[0]
    table = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`podsup_"):
            table[cells[0].strip("`")] = (cells[1], cells[3].replace("`", ""))
    return table


def exposed_metrics(body: str) -> dict[str, tuple[str, str]]:
    """name -> (type, help) of every podsup_ family in a text exposition."""
    helps, types = {}, {}
    for line in body.splitlines():
        if line.startswith("# HELP podsup_"):
            name, _, help_ = line[len("# HELP "):].partition(" ")
            helps[name] = help_.replace("\\n", "\n").replace("\\\\", "\\")
        elif line.startswith("# TYPE podsup_"):
            name, _, kind = line[len("# TYPE "):].partition(" ")
            types[name] = kind
    return {name: (types[name], helps[name]) for name in helps}


def test_docs_list_every_exported_metric_with_its_help():
    with PodsupProcess(["run", "--workers", "1", "--", sys.executable, worker("metrics_worker")]) as p:
        wait_for(lambda: (sample(p.http_port, "podsup_requests_total") or 0) > 0, timeout=60,
                 message="a done report in /metrics")
        body = http_get(p.http_port, "/metrics")[1]
    exposed, documented = exposed_metrics(body), documented_metrics()
    # counters are exposed as NAME_total in the text format's HELP/TYPE lines
    assert sorted(exposed) == sorted(documented), "docs/metrics.md's table and /metrics differ"
    for name, (kind, help_) in exposed.items():
        assert documented[name] == (kind, help_), name


def head(port: int, path: str) -> tuple[int, bytes, dict]:
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("HEAD", path)
        resp = conn.getresponse()
        return resp.status, resp.read(), {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()


def test_head_and_name_filter_on_a_live_podsup():
    with PodsupProcess(["run", "--workers", "2", "--", sys.executable, worker("metrics_worker")],
                       env={"JOB_SECONDS": "0.02"}) as p:
        wait_for(lambda: http_get(p.http_port, "/readyz")[0] == 200
                 and (sample(p.http_port, "app_jobs_total") or 0) > 0, timeout=60,
                 message="a ready podsup with worker metrics")
        # Kubernetes and load balancers may probe with HEAD: answered like GET, no body
        for path in (names.HEALTHZ_PATH, names.READYZ_PATH, names.METRICS_PATH):
            status, body, headers = head(p.http_port, path)
            assert (status, body) == (200, b""), path
            assert int(headers["content-length"]) > 0, path
        from prometheus_client.parser import text_string_to_metric_families

        def families(query: str) -> dict[str, list]:
            status, body = http_get(p.http_port, names.METRICS_PATH + "?" + query)
            assert status == 200, body
            return {f.name: f.samples for f in text_string_to_metric_families(body)}
        only = families("name[]=podsup_draining")
        assert list(only) == ["podsup_draining"] and [s.value for s in only["podsup_draining"]] == [0.0]
        # podsup's own families, its report counters and the workers' merged metrics alike
        got = families("name[]=podsup_workers_desired&name[]=podsup_requests_total&name[]=app_jobs_total")
        assert sorted(got) == ["app_jobs", "podsup_requests", "podsup_workers_desired"]
        assert got["podsup_workers_desired"][0].value == 2 and got["app_jobs"][0].value > 0


def closed_by_peer(sock: socket.socket) -> bool:
    """Whether podsup has closed ``sock`` (whatever it sent first is read and dropped)."""
    sock.setblocking(False)
    try:
        while True:
            if sock.recv(4096) == b"":
                return True
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True


def test_idle_connections_do_not_hold_podsups_threads():
    from podsup.plugins import http as podsup_http
    with PodsupProcess(["run", "--workers", "1", "--", sys.executable, worker("metrics_worker")]) as p:
        wait_for(lambda: http_get(p.http_port, "/healthz")[0] == 200, timeout=60, message="/healthz 200")
        proc = psutil.Process(p.pid)
        base = proc.num_threads()
        most = base
        idle = []
        try:
            for _ in range(150):  # more than MAX_CONNECTIONS, and none sends a request
                idle.append(socket.create_connection(("127.0.0.1", p.http_port), timeout=10))
                most = max(most, proc.num_threads())

            def all_dropped():
                nonlocal most
                most = max(most, proc.num_threads())
                return all(closed_by_peer(s) for s in idle)
            wait_for(all_dropped, timeout=podsup_http.REQUEST_TIMEOUT + 30, interval=0.1,
                     message="podsup to close every idle connection")
        finally:
            for s in idle:
                s.close()
        assert most <= base + podsup_http.MAX_CONNECTIONS + 3, (base, most)
        wait_for(lambda: proc.num_threads() <= base + 2, timeout=30,
                 message=lambda: f"podsup's threads back to {base}: {proc.num_threads()}")
        assert http_get(p.http_port, "/healthz")[0] == 200


def test_the_port_chosen_for_http_0_is_logged_and_serves():
    with PodsupProcess(["run", "--workers", "1", "--http", "127.0.0.1:0", "--",
                        sys.executable, worker("metrics_worker")]) as p:
        match = p.wait_for_line(r"serving /metrics, /healthz, /readyz address=127\.0\.0\.1:(\d+)")
        port = int(match.group(1))
        assert port != 0
        wait_for(lambda: http_get(port, "/healthz")[0] == 200, timeout=30, message="/healthz on the logged port")
