"""``podsup-operator status`` fetching at our seam with real podsup processes
as the pool's pods (a real API server without a kubelet cannot proxy to
pods): the rows are podsup's own figures; the command itself, run as a
process against kmock (pool and pods from the emulator, pods scraped
directly), prints the table or JSON, and a missing pool or bad flag is one
line and exit 2. The pod proxy's request is checked against kmock, which
answers it with a real podsup's page."""
from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import urllib.request

import pytest

from podsup import names
from podsup_operator import status_cmd
from podsup_operator.cli import build_parser
from podsup_operator.pool_fetch import gather, scrape_direct, scrape_via_proxy
from tests.integration.podsup_process import PodsupProcess, worker
from tests.integration.servers import sample
from tests.waiting import wait_for

from .helpers import KMOCK_NS, ReviewingEmulator, pod, post, url

pytestmark = pytest.mark.kmock(cls=ReviewingEmulator)

NS = KMOCK_NS
LABELS = {names.POOL_LABEL: "orders"}


def pools():
    busy = PodsupProcess(["run", "--workers", "2", "--", sys.executable, worker("metrics_worker")],
                         env={"JOB_SECONDS": "3600"})
    idle = PodsupProcess(["run", "--workers", "3", "--", sys.executable, worker("sleeper")])
    return busy, idle


def settled(busy, idle):
    wait_for(lambda: (sample(busy.http_port, "podsup_workers", state="busy") or 0) == 2
             and (sample(idle.http_port, "podsup_workers", state="idle") or 0) == 3,
             timeout=60, message="two busy and three idle workers")


def cli(*args, env=None):
    return subprocess.run([sys.executable, "-c", "import sys; from podsup_operator.cli import main; sys.exit(main())",
                           *args], capture_output=True, text=True, env=env, timeout=120)


async def test_rows_are_the_figures_of_real_podsup_pods_and_the_command_prints_them(emulator):
    busy, idle = pools()
    with busy, idle:
        await asyncio.to_thread(settled, busy, idle)
        pods = [pod("orders-busy", NS, LABELS, busy.http_port), pod("orders-idle", NS, LABELS, idle.http_port),
                pod("orders-new", NS, LABELS, idle.http_port, ready=False)]
        rows = await asyncio.to_thread(gather, pods, scrape_direct)
        assert [r.pod for r in rows] == ["orders-busy", "orders-idle", "orders-new"]
        assert (rows[0].figures.busy, rows[0].figures.running, rows[0].figures.desired) == (2, 2, 2)
        assert (rows[1].figures.idle, rows[1].figures.busy) == (3, 0)
        assert rows[1].figures.rss_bytes > 0
        assert rows[2].figures is None and rows[2].error is None  # not ready: listed, not scraped

        dead = pod("orders-dead", NS, LABELS, 1)
        (row,) = await asyncio.to_thread(gather, [dead], scrape_direct)
        assert row.figures is None and "refused" in row.error.lower()

        # the command, against kmock, pods scraped directly
        await post(emulator, url("podsup.io/v1alpha1/workerpools"), {
            "apiVersion": f"{names.API_GROUP}/{names.API_VERSION}", "kind": names.KIND,
            "metadata": {"name": "orders", "namespace": NS, "uid": "u1"}, "spec": {},
            "status": {"replicas": 3, "readyReplicas": 2, "queueDepth": 5,
                       "conditions": [{"type": "Ready", "status": "False", "reason": "ReplicasNotReady"}]}})
        for p in pods:
            await post(emulator, url("v1/pods"), {"apiVersion": "v1", "kind": "Pod", **p})
        env = dict(os.environ)
        proc = await asyncio.to_thread(cli, "status", "orders", "-n", NS, "--via", "direct", env=env)
        assert proc.returncode == 0, proc.stderr
        lines = proc.stdout.splitlines()
        assert lines[0] == f"Pool: {NS}/orders   State: NotReady (ReplicasNotReady)"
        assert "Workers: 5/5   Busy: 2 (40%)" in lines[1] and "Queue: 5" in lines[1]
        assert lines[4].split()[:5] == ["orders-busy", "-", "Running/ready", "2/2", "2"]
        assert lines[-1].split()[:5] == ["Summary", "2/3", "ready", "5/5", "2"]

        proc = await asyncio.to_thread(cli, "status", "orders", "-n", NS, "--via", "direct", "--json", env=env)
        assert proc.returncode == 0, proc.stderr
        data = json.loads(proc.stdout)
        assert data["summary"]["busy"] == 2 and data["summary"]["idle"] == 3 and data["queueDepth"] == 5

        # --watch: a refresh per interval until Ctrl-C (the sleep is the seam)
        naps = []

        def nap(seconds):
            naps.append(seconds)
            if len(naps) == 2:
                raise KeyboardInterrupt

        out = io.StringIO()
        args = build_parser().parse_args(["status", "orders", "-n", NS, "--via", "direct", "--watch", "--json",
                                          "--interval", "0.5"])
        assert await asyncio.to_thread(status_cmd.run, args, out, nap) == 0
        assert naps == [0.5, 0.5] and [json.loads(x)["summary"]["busy"] for x in out.getvalue().splitlines()] == [2, 2]

        proc = await asyncio.to_thread(cli, "status", "nope", "-n", NS, env=env)
        assert proc.returncode == 2 and proc.stderr.strip() == f"error: WorkerPool {NS}/nope not found"
        proc = await asyncio.to_thread(cli, "status", "orders", "--interval", "0", env=env)
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and "--interval" in proc.stderr

        # through the pod proxy: the path the API server serves (answered here
        # with the busy podsup's real page)
        page = await asyncio.to_thread(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{busy.http_port}/metrics").read().decode())
        emulator[f"get /api/v1/namespaces/{NS}/pods/orders-busy:{busy.http_port}/proxy/metrics"] << page.encode()  # bytes: served as is
        from podsup_operator.metrics_api.kube import api_client
        import kubernetes
        with api_client() as client:
            scrape = scrape_via_proxy(kubernetes.client.CoreV1Api(client))
            (row,) = await asyncio.to_thread(gather, [pods[0]], scrape)
        assert row.error is None and row.figures.busy == 2
