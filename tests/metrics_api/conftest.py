"""Fixtures for the metrics API tests: certificates generated with
cryptography, kmock set up as the cluster (kubeconfig, WorkerPool resource,
SubjectAccessReviews answered), and a real redis-server per test
(tests/integration/servers.py's RedisServer: free loopback port, waits for
PING, never a fixed sleep)."""
from __future__ import annotations

import kubernetes
import pytest

from podsup import names
from podsup_operator.metrics_api import certs, handlers
from tests.integration.servers import RabbitMQServer, RedisServer

from podsup_operator.metrics_api.server import tls_context

from .helpers import FRONT_PROXY_CN, PKI, Harness, refused_port


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> PKI:
    d = tmp_path_factory.mktemp("pki")
    serving_ca, serving = certs.self_signed_serving("podsup-metrics-api", "podsup-system")
    fp_ca = certs.new_ca("front-proxy-ca")
    rogue_ca = certs.new_ca("front-proxy-ca")  # same name, different key
    pki = PKI(serving_ca, serving, fp_ca,
              certs.issue(fp_ca, FRONT_PROXY_CN, client=True),
              certs.issue(fp_ca, "someone-else", client=True),
              certs.issue(rogue_ca, FRONT_PROXY_CN, client=True))
    for name in ("serving_ca", "serving", "front_proxy", "front_proxy_other_cn", "rogue"):
        kp = getattr(pki, name)
        kp.write(d / f"{name}.crt", d / f"{name}.key")
        pki.paths[name] = (str(d / f"{name}.crt"), str(d / f"{name}.key"))
    return pki


@pytest.fixture
def dead_port():
    """A pod metrics port nobody answers on (connection refused), held for the test."""
    with refused_port() as port:
        yield port


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(str(tmp_path))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def emulator(kmock, tmp_path, monkeypatch):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(f"""
apiVersion: v1
kind: Config
clusters: [{{name: kmock, cluster: {{server: "{kmock.url}"}}}}]
users: [{{name: kmock, user: {{token: test}}}}]
contexts: [{{name: kmock, context: {{cluster: kmock, user: kmock}}}}]
current-context: kmock
""")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setattr(kubernetes.config.kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig))
    kmock.resources.load_bundled()
    kmock.resources[f"{names.API_GROUP}/{names.API_VERSION}/{names.PLURAL}"] = kmock.ResourceInfo(
        kind=names.KIND, namespaced=True, subresources={"status", "scale"},
        verbs={"get", "list", "watch", "create", "update", "patch", "delete"})
    # The SubjectAccessReview seam's real call, answered by the emulator: the
    # front proxy's user may read metrics.
    kmock["post /apis/authorization.k8s.io/v1/subjectaccessreviews"] << (
        lambda req: {**req.data, "status": {"allowed": req.data["spec"]["user"] == "system:hpa"}})
    handlers.reset()
    yield kmock
    handlers.reset()


@pytest.fixture
async def api(pki):
    h = Harness(pki, 0)
    ctx = tls_context(*pki.paths["serving"], client_ca_pem=pki.front_proxy_ca.cert_pem.decode())
    h.port = await h.api.start("127.0.0.1", 0, ctx)
    try:
        yield h
    finally:
        await h.api.stop()


@pytest.fixture(scope="session")
def rabbitmq_server(tmp_path_factory):
    """A real rabbitmq-server (slow to start: one per session)."""
    server = RabbitMQServer(str(tmp_path_factory.mktemp("rabbitmq")))
    try:
        server.start()
    except RuntimeError as exc:
        server.stop()
        if "not installed" in str(exc):
            pytest.skip(f"{exc} (Debian package rabbitmq-server)")
        raise
    try:
        yield server
    finally:
        server.stop()
