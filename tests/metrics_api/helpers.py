"""Helpers of the metrics API tests: fakes at our seams, a real redis-server,
pod dicts. Fixtures using them are in conftest.py."""
from __future__ import annotations

import socket
from dataclasses import dataclass, field


from podsup_operator.metrics_api import certs, selectors
from podsup_operator.metrics_api.auth import User
from podsup_operator.metrics_api.authz import Decision

FRONT_PROXY_CN = "front-proxy-client"
HPA_USER = "system:serviceaccount:kube-system:horizontal-pod-autoscaler"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
