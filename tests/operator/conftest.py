"""Run the real kopf operator in-process against kmock (the API emulator).

See ../../../shared/notes/kopf-testing.md. kmock does not emulate server-side
apply; ``ApplyingEmulator`` adds the one part our reconcile relies on (an
apply-patch to a missing object creates it, as the real API server does) —
everything else is kmock's own behaviour.
"""
from __future__ import annotations

import asyncio
import contextlib
from typing import Any, AsyncIterator

import aiohttp.web
import kmock
import kopf
import kubernetes
import pytest

from podsup import names
from podsup_operator import config, handlers

WP = f"{names.API_GROUP}/{names.API_VERSION}/{names.PLURAL}"
DEP = "apps/v1/deployments"
SVC = "v1/services"
HPA = "autoscaling/v2/horizontalpodautoscalers"
PDB = "policy/v1/poddisruptionbudgets"
NS = "ns1"
OPERATOR_IMAGE = "example.org/podsup-operator:test"


class ApplyingEmulator(kmock.KubernetesEmulator):
    """kmock + create-on-apply (server-side apply of a missing object creates it),
    and applies the test tells it to refuse as the API server would (kmock's own
    reactions answer, but kmock stores the write anyway: a refused child must
    not exist)."""

    def refuse(self, resource: str, name: str, status: int, reason: str, message: str) -> None:
        """Answer every apply of ``resource``/``name`` with a Status error."""
        self.__dict__.setdefault("refusals", {})[(resource, name)] = (status, reason, message)

    def accept(self) -> None:
        self.__dict__.get("refusals", {}).clear()

    async def _handle(self, request: Any) -> Any:
        is_apply = (request.resource is not None and request.action == kmock.action.UPDATE and request.name
                    and request.headers.get("Content-Type", "").startswith("application/apply-patch"))
        for (resource, name), (status, reason, message) in self.__dict__.get("refusals", {}).items():
            if is_apply and request.resource == self.resource(resource) and request.name == name:
                return aiohttp.web.json_response({"kind": "Status", "apiVersion": "v1", "metadata": {},
                                                  "status": "Failure", "reason": reason, "code": status,
                                                  "message": message}, status=status)
        if (request.resource is not None and request.action == kmock.action.UPDATE and request.name
                and request.headers.get("Content-Type", "").startswith("application/apply-patch")):
            key = (request.resource, request.namespace, request.name)
            async with self._lock:
                if key not in self._objects or self._objects[key].deleted:
                    if key not in self._objects:
                        self._objects[key] = request.data
                    else:
                        self._objects[key].create(request.data)
                    raw = self._objects[key].last.raw
                    await self._buses[request.resource].put({"type": "ADDED", "object": raw})
        return await super()._handle(request)


def pool_manifest(name: str = "pool", uid: str = "uid-1", **spec: Any) -> dict:
    return {
        "apiVersion": f"{names.API_GROUP}/{names.API_VERSION}",
        "kind": names.KIND,
        "metadata": {"name": name, "namespace": NS, "uid": uid, "generation": 1, "resourceVersion": "1"},
        "spec": {"image": "python:3.12", "command": ["python", "w.py"], "processes": 3, "replicas": 2,
                 "supervisor": {"gracefulTimeoutSeconds": 30, "drainDelaySeconds": 5, "metricsPort": 9090},
                 **spec},
    }


@pytest.fixture
def emulator(kmock: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
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
    monkeypatch.setattr(config.CONFIG, "operator_image", OPERATOR_IMAGE)
    handlers.reset_cluster_api()
    kmock.resources.load_bundled()
    kmock.resources[WP] = kmock.ResourceInfo(
        kind=names.KIND, namespaced=True, subresources={"status", "scale"},
        verbs={"get", "list", "watch", "create", "update", "patch", "delete"})
    yield kmock
    handlers.reset_cluster_api()


@contextlib.asynccontextmanager
async def running_operator(kmock: Any, events: bool = False) -> AsyncIterator[None]:
    settings = kopf.OperatorSettings()
    config.configure_settings(settings)
    settings.scanning.disabled = True
    settings.posting.enabled = events
    stop = asyncio.Event()
    task = asyncio.create_task(kopf.operator(clusterwide=True, standalone=True, settings=settings, stop_flag=stop))
    try:
        await wait_until(lambda: len(kmock["watch", kmock.resource(WP)]) > 0, "the WorkerPool watch")
        await wait_until(lambda: len(kmock["watch", kmock.resource(DEP)]) > 0, "the Deployment watch")
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)


async def wait_until(predicate: Any, what: str, timeout: float = 30.0) -> Any:
    """Poll on the (looptime) event loop until ``predicate()`` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)
