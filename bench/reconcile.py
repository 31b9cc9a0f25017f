"""Reconcile throughput and latency for N WorkerPools (default 1,000).

Prints figures, asserts nothing. Three stages:

1. pure builders: WorkerPool → Deployment/Service/HPA/PDB dicts, and the
   offline validation (OpenAPI + CEL) ``render`` does;
2. the reconcile path (reconcile.reconcile + ClusterApi, real HTTP) against
   kmock: first pass (creates children, writes status) and a no-op resync
   (reads only);
3. the whole operator (``podsup-operator run --all-namespaces`` as a
   subprocess) against kmock: time until every pool has status, and the
   operator's RSS with N pools.

kmock is an in-memory emulator in this process, so API latency here is
loopback + Python, not a real API server's; the figures compare versions of
our code, not clusters. kmock's request history is trimmed (BenchEmulator).

    python3 bench/reconcile.py [--pools 1000] [--skip-operator]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import kmock  # noqa: E402
import kubernetes  # noqa: E402
import psutil  # noqa: E402

from podsup import names  # noqa: E402
from podsup_operator.apply import ClusterApi  # noqa: E402
from podsup_operator.builders import desired_children  # noqa: E402
from podsup_operator.reconcile import reconcile  # noqa: E402
from podsup_operator.validation import validate_workerpool  # noqa: E402
from tests.operator.conftest import ApplyingEmulator, WP  # noqa: E402

NS = "bench"


class BenchEmulator(ApplyingEmulator):
    """kmock matches each request against every request it has recorded
    (O(n) per request, O(n^2) per run: ~57 ms a GET after 300 requests), which
    would make this benchmark measure kmock. Keep only the recent history;
    in-flight requests (at most a few handler threads') are among the last 40."""

    async def _handle(self, request):
        if len(self._requests) > 80:
            del self._requests[:-40]
        return await super()._handle(request)


def make_pool(i: int) -> dict:
    """Varied pools: plain, autoscaled on busy %, queue-driven with a PDB."""
    spec: dict = {"image": "php:8.3-cli", "command": ["php", "worker.php"], "processes": 4, "replicas": 2}
    if i % 3 == 1:
        spec["autoscaling"] = {"enabled": True, "minReplicas": 1, "maxReplicas": 10,
                               "targets": {"busyWorkersPercent": 70}}
    if i % 3 == 2:
        spec["queue"] = {"type": "redis", "name": f"q{i}", "url": "redis://redis:6379/0"}
        spec["autoscaling"] = {"enabled": True, "minReplicas": 0, "maxReplicas": 20,
                               "targets": {"queueDepthPerReplica": 20}}
        spec["disruption"] = {"maxUnavailable": 1}
    return {"apiVersion": f"{names.API_GROUP}/{names.API_VERSION}", "kind": names.KIND,
            "metadata": {"name": f"pool-{i}", "namespace": NS, "uid": f"uid-{i}", "generation": 1,
                         "resourceVersion": "1"},
            "spec": spec}


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def report(label: str, seconds: list[float]) -> None:
    total = sum(seconds)
    print(f"{label:<44} n={len(seconds):>5}  p50={pct(seconds, .5) * 1e3:8.3f} ms  "
          f"p99={pct(seconds, .99) * 1e3:8.3f} ms  mean={statistics.mean(seconds) * 1e3:8.3f} ms  "
          f"throughput={len(seconds) / total:9.1f}/s")


def bench_pure(pools: list[dict]) -> list[dict]:
    defaulted, t_val, t_build = [], [], []
    for pool in pools:
        t0 = time.perf_counter()
        d = validate_workerpool(pool)
        t1 = time.perf_counter()
        desired_children(d, "op:bench")
        t2 = time.perf_counter()
        defaulted.append(d)
        t_val.append(t1 - t0)
        t_build.append(t2 - t1)
    report("builders (desired_children)", t_build)
    report("offline validation (OpenAPI + CEL)", t_val)
    return defaulted


def kubeconfig_for(url: str, directory: str) -> str:
    path = os.path.join(directory, "kubeconfig")
    with open(path, "w") as f:
        f.write(f"""apiVersion: v1
kind: Config
clusters: [{{name: k, cluster: {{server: "{url}"}}}}]
users: [{{name: k, user: {{token: bench}}}}]
contexts: [{{name: k, context: {{cluster: k, user: k}}}}]
current-context: k
""")
    return path


async def with_emulator(fn):
    async with BenchEmulator() as emulator, kmock.Server(emulator):
        emulator.resources.load_bundled()
        emulator.resources[WP] = kmock.ResourceInfo(
            kind=names.KIND, namespaced=True, subresources={"status", "scale"},
            verbs={"get", "list", "watch", "create", "update", "patch", "delete"})
        return await fn(emulator)


async def create_pools(emulator, pools: list[dict]) -> None:
    for pool in pools:
        async with emulator.post(f"/apis/{names.API_GROUP}/{names.API_VERSION}/namespaces/{NS}/{names.PLURAL}",
                                 json=pool) as resp:
            assert resp.status < 300, await resp.text()


async def bench_reconcile(emulator, pools: list[dict], tmp: str) -> None:
    await create_pools(emulator, pools)
    cfg = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=kubeconfig_for(str(emulator.url), tmp),
                                       client_configuration=cfg)

    def run_pass(label: str) -> None:
        with kubernetes.client.ApiClient(cfg) as client:
            api = ClusterApi(client)
            times, writes = [], 0
            for pool in pools:
                live = api.get_pool(NS, pool["metadata"]["name"]) or pool
                t0 = time.perf_counter()
                outcome = reconcile(live, api, "op:bench")
                times.append(time.perf_counter() - t0)
                writes += outcome.writes
        report(label, times)
        print(f"{'':<44} API writes: {writes}")

    await asyncio.to_thread(run_pass, "reconcile, first pass (create + status)")
    await asyncio.to_thread(run_pass, "reconcile, no-op resync")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _has_status(emulator, key, name: str) -> bool:
    k = (key, NS, name)
    return k in emulator.objects and bool((emulator.objects[k].raw.get("status") or {}).get("conditions"))


async def bench_operator(emulator, pools: list[dict], tmp: str) -> None:
    env = {**os.environ, "KUBECONFIG": kubeconfig_for(str(emulator.url), tmp)}
    args = [sys.executable, "-m", "podsup_operator.cli", "run", "--all-namespaces",
            "--health-port", str(free_port()), "--metrics-port", str(free_port())]
    help_proc = await asyncio.create_subprocess_exec(*args[:4], "--help", stdout=asyncio.subprocess.PIPE)
    if "--no-metrics-api" in (await help_proc.communicate())[0].decode():
        args.append("--no-metrics-api")
    log = open(os.path.join(tmp, "operator.log"), "w")
    proc = await asyncio.create_subprocess_exec(*args, env=env, stdout=log, stderr=asyncio.subprocess.STDOUT)
    try:
        ps = psutil.Process(proc.pid)
        deadline = time.monotonic() + 60
        while not len(emulator["watch", emulator.resource(WP)]):
            if time.monotonic() > deadline or proc.returncode is not None:
                raise SystemExit("operator did not start watching; see its log in " + tmp)
            await asyncio.sleep(0.1)
        idle_rss = ps.memory_info().rss
        t0 = time.perf_counter()
        await create_pools(emulator, pools)
        key = emulator.resource(WP)
        deadline = time.monotonic() + 900
        while True:
            done = sum(1 for p in pools if _has_status(emulator, key, p["metadata"]["name"]))
            if done == len(pools):
                break
            if time.monotonic() > deadline:
                print(f"operator: only {done}/{len(pools)} pools converged in 900 s")
                break
            await asyncio.sleep(0.2)
        elapsed = time.perf_counter() - t0
        rss = ps.memory_info().rss
        print(f"{'operator end to end (subprocess)':<44} {len(pools)} pools to status in {elapsed:.1f} s "
              f"({len(pools) / elapsed:.1f} pools/s)")
        print(f"{'operator RSS':<44} idle {idle_rss / 2**20:.0f} MiB, with {len(pools)} pools "
              f"{rss / 2**20:.0f} MiB")
    finally:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except asyncio.TimeoutError:
            proc.kill()
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pools", type=int, default=1000)
    parser.add_argument("--skip-operator", action="store_true", help="skip the subprocess stage")
    args = parser.parse_args()
    pools = [make_pool(i) for i in range(args.pools)]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {args.pools} WorkerPools")
    defaulted = bench_pure(pools)
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(with_emulator(lambda em: bench_reconcile(em, defaulted, tmp)))
        if not args.skip_operator:
            asyncio.run(with_emulator(lambda em: bench_operator(em, pools, tmp)))


if __name__ == "__main__":
    main()
