"""Metric query latency of the operator's metrics API with N WorkerPools.

Prints figures, asserts nothing. Everything real except the cluster:
a real redis-server holds N lists (one per pool); the queue probes the
operator uses poll them into the registry; the HTTPS server answers the
queries the HPA controller makes, over TLS with a front-proxy client
certificate (keep-alive, like the aggregator), SubjectAccessReviews behind
the seam answered in-process (cached after the first ask per pool, as in
production). Pods metrics are served from real prometheus_client /metrics
endpoints standing in for a pool's pods.

    python3 bench/metrics_api.py [--pools 100] [--queries 3000] [--pods 10]

Spike-to-replicas (LPUSH → Deployment replicas change) needs a real control
plane: tests/e2e/test_metrics_api_e2e.py measures it when KUBECONFIG names a
cluster.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import aiohttp  # noqa: E402
import redis  # noqa: E402
import yarl  # noqa: E402
from prometheus_client import CollectorRegistry, Gauge, start_http_server  # noqa: E402

from podsup import names  # noqa: E402
from podsup_operator.metrics_api import certs  # noqa: E402
from podsup_operator.metrics_api.auth import Authenticator, RequestHeaderConfig  # noqa: E402
from podsup_operator.metrics_api.authz import Authorizer, Decision  # noqa: E402
from podsup_operator.metrics_api.provider import MetricsProvider  # noqa: E402
from podsup_operator.metrics_api.server import MetricsAPI, tls_context  # noqa: E402
from podsup_operator.metrics_api.sources.pods import PodScraper  # noqa: E402
from podsup_operator.metrics_api.sources.queue import QueueProbe, QueueRegistry, broker_url  # noqa: E402

NS = "bench"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def line(name: str, samples: list[float]) -> str:
    ms = [s * 1000 for s in samples]
    return (f"{name:<46} n={len(ms):>5}  p50={pct(ms, 50):7.2f} ms  p99={pct(ms, 99):7.2f} ms  "
            f"max={max(ms):7.2f} ms")


#: The HPA controller's default --horizontal-pod-autoscaler-sync-period.
HPA_SYNC_SECONDS = 15.0


def print_structural_delays() -> None:
    """Worst-case queue-spike → replicas-change delay of both paths, from
    their configured intervals (arithmetic, not a measurement: the real
    figure needs a control plane, tests/e2e/test_metrics_api_e2e.py prints it).

    Operator path: the operator's own broker poll, then one HPA sync.
    prometheus-adapter path: podsup's probe in a pod, a Prometheus scrape, then
    one HPA sync (the adapter queries Prometheus per request; its relist
    interval only finds new series, so a new pool waits one relist more)."""
    import yaml

    from podsup.core.config import Config
    from podsup_operator.metrics_api.sources.queue import DEFAULT_POLL_INTERVAL

    values = yaml.safe_load((Path(__file__).resolve().parents[1] / "charts/podsup-operator/values.yaml").read_text())
    scrape = float(values["workerPodMonitor"]["interval"].rstrip("s"))
    probe = float(Config.__dataclass_fields__["queue_interval"].default)  # podsup --queue-interval
    operator = DEFAULT_POLL_INTERVAL + HPA_SYNC_SECONDS
    adapter = probe + scrape + HPA_SYNC_SECONDS
    print("spike -> replicas, structural worst case (configured intervals, not measured):")
    print(f"  operator metrics API   poll {DEFAULT_POLL_INTERVAL:g} s + HPA sync {HPA_SYNC_SECONDS:g} s"
          f" = {operator:g} s  (goal <= 20 s)")
    print(f"  prometheus-adapter     podsup probe {probe:g} s + scrape {scrape:g} s + HPA sync"
          f" {HPA_SYNC_SECONDS:g} s = {adapter:g} s  (+ one adapter relist, default 60 s, for a new pool)")


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pools", type=int, default=100)
    ap.add_argument("--queries", type=int, default=3000)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--pods", type=int, default=10)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench-metrics-api-")

    exe = shutil.which("redis-server")
    if exe is None:
        sys.exit("redis-server is not installed")
    rport = free_port()
    proc = subprocess.Popen([exe, "--port", str(rport), "--bind", "127.0.0.1", "--save", "", "--dir", tmp],
                            stdout=subprocess.DEVNULL)
    client = redis.Redis(port=rport)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)
    endpoints = []
    try:
        for i in range(args.pools):
            client.rpush(f"q{i}", *range(i + 1))

        # 1. queue polls: one probe per pool, as the operator's pollers do.
        registry = QueueRegistry()
        probes = [QueueProbe(broker_url({"type": "redis", "name": f"q{i}", "url": f"redis://127.0.0.1:{rport}/0"}))
                  for i in range(args.pools)]
        polls = []
        for _round in range(5):
            for i, probe in enumerate(probes):
                t = time.perf_counter()
                reading = await asyncio.to_thread(probe.read)
                polls.append(time.perf_counter() - t)
                registry.put(NS, f"pool{i}", reading, 5.0)

        # 2. the HTTPS server.
        serving_ca, serving = certs.self_signed_serving("bench", NS)
        fp_ca = certs.new_ca("front-proxy-ca")
        fp = certs.issue(fp_ca, "front-proxy-client", client=True)
        for kp, name in ((serving, "serving"), (fp, "fp")):
            kp.write(f"{tmp}/{name}.crt", f"{tmp}/{name}.key")
        sars = 0

        async def review(user, attrs):
            nonlocal sars
            sars += 1
            return Decision(True)

        pods_registry = []
        for i in range(args.pods):
            reg = CollectorRegistry()
            Gauge(names.METRIC_REQUESTS_PER_SECOND, "rps", registry=reg).set(i + 0.5)
            Gauge(names.METRIC_BUSY_RATIO, "busy", registry=reg).set(0.5)
            port = free_port()
            server, _ = start_http_server(port, "127.0.0.1", reg)
            endpoints.append(server)
            pods_registry.append({
                "metadata": {"name": f"web-{i}", "namespace": NS, "labels": {names.POOL_LABEL: "web"}},
                "spec": {"containers": [{"ports": [{"name": names.METRICS_PORT_NAME, "containerPort": port}]}]},
                "status": {"phase": "Running", "podIP": "127.0.0.1",
                           "conditions": [{"type": "Ready", "status": "True"}]}})

        async def list_pods(namespace, selector):
            return pods_registry

        results = {}
        for ttl in (5.0, 0.0):
            provider = MetricsProvider(registry, list_pods, PodScraper(ttl=ttl))
            api = MetricsAPI(Authenticator(RequestHeaderConfig(client_ca_pem=fp_ca.cert_pem.decode()), None),
                             Authorizer(review), provider)
            port = await api.start("127.0.0.1", 0, tls_context(f"{tmp}/serving.crt", f"{tmp}/serving.key",
                                                               fp_ca.cert_pem.decode()))
            ctx = ssl.create_default_context(cadata=serving_ca.cert_pem.decode())
            ctx.load_cert_chain(f"{tmp}/fp.crt", f"{tmp}/fp.key")
            hdr = {"X-Remote-User": "system:serviceaccount:kube-system:horizontal-pod-autoscaler"}
            base = f"https://127.0.0.1:{port}"
            conn = aiohttp.TCPConnector(ssl=ctx, limit=args.concurrency)
            async with aiohttp.ClientSession(connector=conn) as session:
                async def timed(path: str, out: list[float]) -> None:
                    t = time.perf_counter()
                    async with session.get(yarl.URL(base + path, encoded=True), headers=hdr) as r:
                        await r.read()
                        assert r.status == 200, (r.status, await r.text())
                    out.append(time.perf_counter() - t)

                async def run(paths: list[str]) -> tuple[list[float], float]:
                    out: list[float] = []
                    queue = list(paths)
                    t0 = time.perf_counter()

                    async def worker():
                        while queue:
                            await timed(queue.pop(), out)
                    await asyncio.gather(*(worker() for _ in range(args.concurrency)))
                    return out, time.perf_counter() - t0

                ext = [f"/apis/external.metrics.k8s.io/v1beta1/namespaces/{NS}/{names.METRIC_QUEUE_DEPTH}"
                       f"?labelSelector=workerpool%3Dpool{i % args.pools}" for i in range(args.queries)]
                if ttl:
                    sars_before = sars
                    first, _ = await run(ext[:args.pools])   # the SAR cache starts cold
                    results["external, first pass (SAR cache cold)"] = (first, None)
                    results["SARs sent in that pass (per user+ns+metric)"] = sars - sars_before
                    warm, wall = await run(ext)
                    results[f"external {names.METRIC_QUEUE_DEPTH}, {args.pools} pools"] = (warm, wall)
                pods_q = [f"/apis/custom.metrics.k8s.io/v1beta2/namespaces/{NS}/pods/%2A/"
                          f"{names.METRIC_REQUESTS_PER_SECOND}?labelSelector={names.POOL_LABEL}%3Dweb"] * (args.queries // 10)
                samples, wall = await run(pods_q)
                label = "cached 5 s" if ttl else "scraped every query"
                results[f"pods/* rps, {args.pods} pods, {label}"] = (samples, wall)
                discovery, wall = await run(["/apis/external.metrics.k8s.io/v1beta1"] * (args.queries // 10))
                if ttl:
                    results["discovery APIResourceList"] = (discovery, wall)
            await api.stop()

        print(f"metrics API bench: {args.pools} pools, concurrency {args.concurrency}, HTTPS keep-alive, "
              f"front-proxy client cert, python {sys.version.split()[0]}")
        print(line("redis LLEN poll (one pool)", polls))
        for name, value in results.items():
            if isinstance(value, int):
                print(f"{name:<46} {value}")
                continue
            samples, wall = value
            extra = f"  {len(samples) / wall:8.0f} req/s" if wall else ""
            print(line(name, samples) + extra)
        print_structural_delays()
    finally:
        for server in endpoints:
            server.shutdown()
        for probe in locals().get("probes", []):
            probe.close()
        client.close()
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
