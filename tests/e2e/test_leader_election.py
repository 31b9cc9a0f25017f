"""Two ``podsup-operator run --leader-elect`` processes on a real API server
(out of cluster; skipped without KUBECONFIG).

Exactly one holds the coordination.k8s.io Lease and reconciles; the other
writes nothing but serves the metrics API from its own poll. SIGKILL the
leader (no release): the other takes the Lease once it expired and
reconciles a pool applied meanwhile, and both kept answering the metrics API
(an authenticated external-metric request: TokenReview + SubjectAccessReview
on the real server, the queue depth from a real redis-server). A SIGTERM'd
leader releases the Lease, handing over without waiting out its duration.
"""
from __future__ import annotations

import json
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from podsup import names
from tests.e2e import cluster
from tests.e2e.cluster import WP, cluster_reason, get, kubectl
from tests.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(bool(cluster_reason()), reason=str(cluster_reason()))]

LEASE = "podsup-operator"


@pytest.fixture
def redis_queue(tmp_path):
    from tests.integration.servers import RedisServer

    try:
        (tmp_path / "redis").mkdir()
        server = RedisServer(str(tmp_path / "redis"))
        server.start()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    yield server
    server.stop()


class Replica:
    def __init__(self, ns: str, log: Path):
        self.log, self.api_port = log, cluster.free_port()
        args = cluster.operator_args(ns, "--leader-elect", "--leader-elect-lease-namespace", ns,
                                     "--metrics-api-port", str(self.api_port))
        self.out = open(log, "w")
        self.proc = subprocess.Popen(args, stdout=self.out, stderr=subprocess.STDOUT, env=cluster.operator_env())

    def identity(self) -> str | None:
        for line in self.log.read_text().splitlines():
            if "competes for Lease" in line:
                return line.split("leader election: ", 1)[1].split(" ", 1)[0]
        return None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()

    def queue_depth(self, ns: str, pool: str, token: str) -> float | None:
        """This replica's answer to the HPA's question, asked directly (HTTPS, bearer token)."""
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE  # its self-signed certificate
        url = (f"https://127.0.0.1:{self.api_port}/apis/external.metrics.k8s.io/v1beta1/namespaces/{ns}/"
               f"{names.METRIC_QUEUE_DEPTH}?labelSelector={names.EXTERNAL_SELECTOR_LABEL}%3D{pool}")
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            items = json.load(resp)["items"]
        return float(items[0]["value"]) if items else None

    def not_served(self, ns: str, pool: str, token: str) -> bool:
        """The pool is unknown to this replica's metrics API (404)."""
        try:
            self.queue_depth(ns, pool, token)
        except urllib.error.HTTPError as exc:
            return exc.code == 404
        return False


def lease(ns: str) -> dict:
    return (get("lease", LEASE, ns) or {}).get("spec") or {}


def metrics_reader_token(ns: str) -> str:
    """A ServiceAccount of the test namespace allowed to read the external metric there."""
    kubectl("create", "serviceaccount", "hpa-reader", "-n", ns)
    kubectl("create", "role", "external-metrics-reader", "-n", ns, "--verb=get,list",
            "--resource=*.external.metrics.k8s.io")
    kubectl("create", "rolebinding", "external-metrics-reader", "-n", ns, "--role=external-metrics-reader",
            f"--serviceaccount={ns}:hpa-reader")
    return kubectl("create", "token", "hpa-reader", "-n", ns).stdout.strip()


def pool(name: str, ns: str, url: str | None = None) -> dict:
    spec: dict = {"image": "registry.example.com/worker:1", "command": ["python", "-m", "worker"]}
    if url:
        spec["queue"] = {"type": "redis", "name": name, "url": url, "pollIntervalSeconds": 1}
    return {"apiVersion": "podsup.io/v1alpha1", "kind": "WorkerPool", "metadata": {"name": name, "namespace": ns},
            "spec": spec}


def test_one_replica_leads_and_the_other_takes_over_after_sigkill(tmp_path, redis_queue):
    with cluster.namespace("podsup-e2e-ha") as ns:
        token = metrics_reader_token(ns)
        redis_queue.client().rpush("jobs-a", *"abcd")
        cluster.apply(pool("jobs-a", ns, f"redis://127.0.0.1:{redis_queue.port}/0"))
        replicas = [Replica(ns, tmp_path / "a.log"), Replica(ns, tmp_path / "b.log")]
        try:
            ids = {wait_for(r.identity, 60, interval=0.2, message="the candidate's identity"): r for r in replicas}
            holder = wait_for(lambda: lease(ns).get("holderIdentity") in ids and lease(ns)["holderIdentity"],
                              60, interval=0.2, message=lambda: f"a holder among {list(ids)}: {lease(ns)}")
            leader = ids[holder]
            (follower,) = [r for r in replicas if r is not leader]
            wait_for(lambda: get("deployment", "jobs-a", ns), 60, interval=0.5, message="the leader's reconcile")
            for r in replicas:  # both serve the depth from their own poll
                wait_for(lambda: r.queue_depth(ns, "jobs-a", token) == 4, 60, interval=0.5,
                         message=f"queue depth 4 from {r.log.name}")
            # Every replica's own watch: a pool applied now is polled, a deleted one forgotten, on both.
            redis_queue.client().rpush("jobs-c", "x")
            cluster.apply(pool("jobs-c", ns, f"redis://127.0.0.1:{redis_queue.port}/0"))
            for r in replicas:
                wait_for(lambda: r.queue_depth(ns, "jobs-c", token) == 1, 60, interval=0.5,
                         message=f"the watched pool's depth from {r.log.name}")
            kubectl("delete", WP, "jobs-c", "-n", ns, "--wait=true")
            for r in replicas:
                wait_for(lambda: r.not_served(ns, "jobs-c", token), 60, interval=0.5,
                         message=f"the deleted pool forgotten by {r.log.name}")
            assert "acquired the Lease" not in follower.log.read_text()
            assert "kopf" not in follower.log.read_text()  # no reconcile handler ran on the follower

            leader.proc.kill()  # SIGKILL: no release, the Lease must expire
            killed = time.monotonic()
            cluster.apply(pool("jobs-b", ns))
            redis_queue.client().rpush("jobs-a", "e")
            deadline = 15 + 2 * 2 + 60  # the lease, two retries, and a loaded machine's reconcile
            wait_for(lambda: get("deployment", "jobs-b", ns), deadline, interval=0.2,
                     message=lambda: f"the new leader's reconcile; lease {lease(ns)}; "
                                     f"log:\n{follower.log.read_text()[-2000:]}")
            took_over = time.monotonic() - killed
            assert lease(ns)["holderIdentity"] != holder and follower.proc.poll() is None
            assert follower.queue_depth(ns, "jobs-a", token) == 5  # it kept serving throughout
            print(f"failover: Deployment of a pool applied after SIGKILL of the leader in {took_over:.1f}s")
        finally:
            for r in replicas:
                r.stop()


def test_a_sigtermed_leader_releases_the_lease(tmp_path):
    with cluster.namespace("podsup-e2e-ha") as ns:
        a = Replica(ns, tmp_path / "a.log")
        try:
            me = wait_for(a.identity, 60, interval=0.2, message="the candidate's identity")
            wait_for(lambda: lease(ns).get("holderIdentity") == me, 60, interval=0.2, message="a leading")
            a.proc.terminate()
            assert a.proc.wait(timeout=60) == 0
            spec = lease(ns)
            assert spec.get("holderIdentity", "") == "" and spec["leaseDurationSeconds"] == 1, spec
        finally:
            a.stop()
