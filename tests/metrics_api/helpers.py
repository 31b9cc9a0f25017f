"""Helpers of the metrics API tests: fakes at our seams, a real redis-server,
pod dicts. Fixtures using them are in conftest.py."""
from __future__ import annotations

import contextlib
import socket
from dataclasses import dataclass, field
import ssl
from typing import Any

import aiohttp
import kmock as kmock_lib
import yarl


from podsup_operator.metrics_api import certs, selectors
from podsup_operator.metrics_api.auth import Authenticator, RequestHeaderConfig, User
from podsup_operator.metrics_api.authz import Authorizer, Decision
from podsup_operator.metrics_api.provider import MetricsProvider
from podsup_operator.metrics_api.server import MetricsAPI
from podsup_operator.metrics_api.sources.pods import PodScraper
from podsup_operator.metrics_api.sources.queue import QueueRegistry

FRONT_PROXY_CN = "front-proxy-client"
HPA_USER = "system:serviceaccount:kube-system:horizontal-pod-autoscaler"
NS = "shop"  # the namespace of the HTTPS tests' pools and pods
EXT = "/apis/external.metrics.k8s.io/v1beta1"
CUS = "/apis/custom.metrics.k8s.io/v1beta2"
HPA_HEADERS = {"X-Remote-User": HPA_USER}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def refused_port():
    """A loopback port that refuses connections for the whole block: bound
    (so no other test or process can start listening on it meanwhile, as it
    could on a port merely found free) but never listening."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


@dataclass
class PKI:
    serving_ca: certs.KeyPair
    serving: certs.KeyPair
    front_proxy_ca: certs.KeyPair
    front_proxy: certs.KeyPair        # CN allowed
    front_proxy_other_cn: certs.KeyPair  # right CA, CN not allowed
    rogue: certs.KeyPair              # other CA, allowed CN
    paths: dict = field(default_factory=dict)


class FakeTokenReview:
    """The TokenReview seam: known tokens → users; counts calls."""

    def __init__(self, tokens: dict[str, User]):
        self.tokens = tokens
        self.calls = 0

    async def __call__(self, token: str) -> User | None:
        self.calls += 1
        return self.tokens.get(token)


class FakeAccessReview:
    """The SAR seam: a tiny RBAC — (user or group) → allowed verbs per group
    (resource requests) or non-resource paths. Records every review."""

    def __init__(self):
        self.resource_rules: dict[str, set[tuple[str, str]]] = {}  # subject → {(apiGroup, verb)}
        self.nonresource_subjects: set[str] = {"system:authenticated"}
        self.reviews: list[tuple[User, dict]] = []

    async def __call__(self, user: User, attrs: dict) -> Decision:
        self.reviews.append((user, attrs))
        subjects = {user.name, *user.groups}
        if "nonResourceAttributes" in attrs:
            return Decision(bool(subjects & self.nonresource_subjects))
        ra = attrs["resourceAttributes"]
        for s in subjects:
            if (ra["group"], ra["verb"]) in self.resource_rules.get(s, ()):
                return Decision(True)
        return Decision(False, "no RBAC rule allows it")


class FakePods:
    """The pod-list seam: holds pod dicts and selects them by label like the API server."""

    def __init__(self):
        self.pods: list[dict] = []
        self.calls = 0

    async def __call__(self, namespace: str, selector: str) -> list[dict]:
        self.calls += 1
        reqs = selectors.parse(selector)
        return [p for p in self.pods if p["metadata"]["namespace"] == namespace
                and selectors.matches(reqs, p["metadata"].get("labels") or {})]


def pod(name: str, namespace: str, labels: dict, port: int, ready: bool = True,
        port_name: str = "podsup-metrics") -> dict:
    return {
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"containers": [{"name": "worker", "ports": [{"name": port_name, "containerPort": port}]}]},
        "status": {"phase": "Running", "podIP": "127.0.0.1",
                   "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


# --- the API emulator (kmock) -------------------------------------------------

KMOCK_NS = "shop"


def url(resource: str, name: str | None = None, ns: str = KMOCK_NS) -> str:
    group_version, plural = resource.rsplit("/", 1)
    base = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
    return f"{base}/namespaces/{ns}/{plural}" + (f"/{name}" if name else "")


class ReviewingEmulator(kmock_lib.KubernetesEmulator):
    """kmock, minus storing reviews: a real API server never stores a
    SubjectAccessReview or TokenReview (they have no name), kmock would answer
    the second one with 409."""

    async def _handle(self, request: Any) -> Any:
        if request.resource is not None and request.resource.plural in ("subjectaccessreviews", "tokenreviews"):
            return await super(kmock_lib.KubernetesEmulator, self)._handle(request)
        return await super()._handle(request)


async def post(kmock, path: str, body: dict) -> None:
    async with kmock.post(path, json=body) as resp:
        assert resp.status < 300, await resp.text()


# --- the HTTPS server with fakes at its seams --------------------------------------

class Harness:
    def __init__(self, pki, port):
        self.pki = pki
        self.port = port
        self.tokens = FakeTokenReview({
            "hpa-token": User(HPA_USER, ("system:serviceaccounts", "system:authenticated")),
            "bob-token": User("bob", ("system:authenticated",)),
        })
        self.sar = FakeAccessReview()
        self.sar.resource_rules[HPA_USER] = {("external.metrics.k8s.io", "list"),
                                             ("custom.metrics.k8s.io", "get")}
        self.pods = FakePods()
        self.queues = QueueRegistry()
        # A generous scrape timeout: a pod's /metrics on a loaded machine may
        # take more than a second to answer; unreachable pods here refuse at once.
        self.provider = MetricsProvider(self.queues, self.pods, PodScraper(timeout=30.0, ttl=0.0))
        config = RequestHeaderConfig(client_ca_pem=pki.front_proxy_ca.cert_pem.decode(),
                                     allowed_names=(FRONT_PROXY_CN,))
        self.api = MetricsAPI(Authenticator(config, self.tokens), Authorizer(self.sar), self.provider)

    def client_ctx(self, cert: str | None = "front_proxy") -> ssl.SSLContext:
        ctx = ssl.create_default_context(cadata=self.pki.serving_ca.cert_pem.decode())
        if cert:
            ctx.load_cert_chain(*self.pki.paths[cert])
        return ctx

    async def get(self, path: str, cert: str | None = "front_proxy", headers: dict | None = None,
                  method: str = "GET") -> tuple[int, dict]:
        url = yarl.URL(f"https://127.0.0.1:{self.port}{path}", encoded=True)
        async with aiohttp.ClientSession() as s:
            async with s.request(method, url, ssl=self.client_ctx(cert), headers=headers or {}) as r:
                return r.status, await r.json(content_type=None)
