"""The real Kubernetes calls behind the metrics API's seams.

Each function is a small blocking call with the official client (run in a
thread by the async callers), answering plain data: TokenReview → User,
SubjectAccessReview → Decision, pod list → pod dicts, and the few reads and
writes of the queue poller (Secret key, Deployment scale, WorkerPool status,
the pods' deletion-cost annotation).
Raw JSON (``_preload_content=False``) keeps the hot path free of model
deserialisation. Tests replace these at the seam; e2e runs them for real.
"""
from __future__ import annotations

import asyncio
import base64
import datetime
import json
import time
from typing import Any

from podsup import names

from ..apply import SCALE_FIELD_MANAGER
from .auth import CONFIGMAP_NAME, CONFIGMAP_NAMESPACE, RequestHeaderConfig, User
from .authz import Decision

TIMEOUT = 10.0
#: Field manager of the scale-to-zero replica writes (the reconcile's applies use names.FIELD_MANAGER).


def api_client() -> Any:
    """A client from the pod's service account, or the kubeconfig (dev, tests)."""
    import kubernetes

    try:
        kubernetes.config.load_incluster_config()
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config()
    return kubernetes.client.ApiClient()


def _json(resp: Any) -> dict:
    return json.loads(resp.data)


class Kube:
    def __init__(self, client: Any):
        import kubernetes

        self.client = client
        self.core = kubernetes.client.CoreV1Api(client)
        self.apps = kubernetes.client.AppsV1Api(client)
        self.authn = kubernetes.client.AuthenticationV1Api(client)
        self.authz = kubernetes.client.AuthorizationV1Api(client)
        self.custom = kubernetes.client.CustomObjectsApi(client)
        self.ApiException = kubernetes.client.exceptions.ApiException

    # --- seams of the HTTPS server (async) ----------------------------------

    async def review_token(self, token: str) -> User | None:
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
        resp = await asyncio.to_thread(self.authn.create_token_review, body, _preload_content=False,
                                       _request_timeout=TIMEOUT)
        status = _json(resp).get("status") or {}
        if not status.get("authenticated"):
            return None
        user = status.get("user") or {}
        return User(name=user.get("username", ""), groups=tuple(user.get("groups") or ()),
                    extra={k: tuple(v) for k, v in (user.get("extra") or {}).items()},
                    uid=user.get("uid", ""), via="token")

    async def review_access(self, user: User, attrs: dict) -> Decision:
        spec = {"user": user.name, "groups": list(user.groups), **attrs}
        if user.uid:
            spec["uid"] = user.uid
        if user.extra:
            spec["extra"] = {k: list(v) for k, v in user.extra.items()}
        body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}
        resp = await asyncio.to_thread(self.authz.create_subject_access_review, body, _preload_content=False,
                                       _request_timeout=TIMEOUT)
        status = _json(resp).get("status") or {}
        return Decision(bool(status.get("allowed")) and not status.get("denied"),
                        status.get("reason") or status.get("evaluationError") or "")

    async def list_pods(self, namespace: str, selector: str) -> list[dict]:
        resp = await asyncio.to_thread(self.core.list_namespaced_pod, namespace, label_selector=selector,
                                       _preload_content=False, _request_timeout=TIMEOUT)
        return _json(resp).get("items") or []

    # --- start-up and the queue poller (blocking) ------------------------------

    def post_event(self, obj: dict, type_: str, reason: str, message: str) -> None:
        """A core/v1 Event about ``obj`` (the operator's own Pod): kopf's
        ``kopf.event`` only works inside a resource handler, and this is
        posted from the metrics API's start-up supervisor."""
        meta = obj["metadata"]
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "apiVersion": "v1", "kind": "Event",
            # named as kubectl's events are (<object>.<unique hex>): no generateName round trip
            "metadata": {"name": f"{meta['name']}.{time.time_ns():x}", "namespace": meta["namespace"]},
            "involvedObject": {"apiVersion": obj["apiVersion"], "kind": obj["kind"], **meta},
            "type": type_, "reason": reason, "message": message[:1024],
            "source": {"component": names.FIELD_MANAGER}, "reportingComponent": names.FIELD_MANAGER,
            "reportingInstance": meta["name"], "firstTimestamp": now, "lastTimestamp": now, "count": 1,
        }
        self.core.create_namespaced_event(meta["namespace"], body, _preload_content=False,
                                          _request_timeout=TIMEOUT)

    def request_header_config(self) -> RequestHeaderConfig:
        cm = _json(self.core.read_namespaced_config_map(CONFIGMAP_NAME, CONFIGMAP_NAMESPACE,
                                                        _preload_content=False, _request_timeout=TIMEOUT))
        return RequestHeaderConfig.from_configmap(cm.get("data") or {})

    def secret_value(self, namespace: str, name: str, key: str) -> str | None:
        try:
            secret = _json(self.core.read_namespaced_secret(name, namespace, _preload_content=False,
                                                            _request_timeout=TIMEOUT))
        except self.ApiException as exc:
            if exc.status == 404:
                return None
            raise
        raw = (secret.get("data") or {}).get(key)
        return base64.b64decode(raw).decode() if raw else None

    def deployment_replicas(self, namespace: str, name: str) -> int | None:
        """spec.replicas through the scale subresource; None if there is no Deployment."""
        try:
            scale = _json(self.apps.read_namespaced_deployment_scale(name, namespace, _preload_content=False,
                                                                     _request_timeout=TIMEOUT))
        except self.ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return int((scale.get("spec") or {}).get("replicas") or 0)

    def scale_deployment(self, namespace: str, name: str, replicas: int) -> None:
        """0 <-> 1 through the scale subresource, under a field manager of its
        own, so ``kubectl get deploy -o yaml`` shows who set replicas."""
        self.apps.patch_namespaced_deployment_scale(name, namespace, {"spec": {"replicas": replicas}},
                                                    field_manager=SCALE_FIELD_MANAGER,
                                                    _content_type="application/merge-patch+json",
                                                    _preload_content=False, _request_timeout=TIMEOUT)

    def patch_pod(self, namespace: str, name: str, body: dict) -> None:
        """Merge-patch one pod (the scale-in order's deletion-cost annotation)."""
        self.core.patch_namespaced_pod(name, namespace, body, field_manager=names.FIELD_MANAGER,
                                       _content_type="application/merge-patch+json",
                                       _preload_content=False, _request_timeout=TIMEOUT)

    def patch_pool_status(self, namespace: str, name: str, status: dict, resource_version: str | None = None) -> bool:
        """Merge-patch status; with ``resource_version`` the write is refused
        (False) if the pool changed since it was read — another writer (the
        reconcile) may have replaced the conditions list meanwhile."""
        body: dict = {"status": status}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        try:
            self.custom.patch_namespaced_custom_object_status(
                names.API_GROUP, names.API_VERSION, namespace, names.PLURAL, name, body,
                _content_type="application/merge-patch+json", _preload_content=False, _request_timeout=TIMEOUT)
        except self.ApiException as exc:
            if exc.status == 409:
                return False
            raise
        return True

    # --- the operator-managed serving certificate (serving_secret) -----------

    def read_secret_data(self, namespace: str, name: str) -> tuple[dict[str, bytes] | None, str | None]:
        """(decoded data, resourceVersion) of a Secret, or (None, None) if there is none."""
        try:
            secret = _json(self.core.read_namespaced_secret(name, namespace, _preload_content=False,
                                                            _request_timeout=TIMEOUT))
        except self.ApiException as exc:
            if exc.status == 404:
                return None, None
            raise
        data = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
        return data, secret["metadata"]["resourceVersion"]

    def write_secret_data(self, namespace: str, name: str, data: dict[str, bytes], resource_version: str | None) -> bool:
        """Create the Secret (no resource_version) or replace it at that
        version; False when another writer got there first (409)."""
        body = {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                "metadata": {"name": name, "namespace": namespace,
                             "labels": {"app.kubernetes.io/managed-by": names.FIELD_MANAGER}},
                "data": {k: base64.b64encode(v).decode() for k, v in data.items()}}
        try:
            if resource_version is None:
                self.core.create_namespaced_secret(namespace, body, _preload_content=False, _request_timeout=TIMEOUT)
            else:
                body["metadata"]["resourceVersion"] = resource_version
                self.core.replace_namespaced_secret(name, namespace, body, _preload_content=False,
                                                    _request_timeout=TIMEOUT)
        except self.ApiException as exc:
            if exc.status == 409:
                return False
            raise
        return True

    def set_apiservice_ca_bundle(self, name: str, ca_bundle_pem: bytes) -> bool:
        """Make the APIService trust ``ca_bundle_pem``; True if it changed,
        False if it already did or there is no such APIService (not registered)."""
        import kubernetes

        api = kubernetes.client.ApiregistrationV1Api(self.client)
        wanted = base64.b64encode(ca_bundle_pem).decode()
        try:
            current = _json(api.read_api_service(name, _preload_content=False, _request_timeout=TIMEOUT))
        except self.ApiException as exc:
            if exc.status == 404:
                return False
            raise
        if (current.get("spec") or {}).get("caBundle") == wanted:
            return False
        api.patch_api_service(name, {"spec": {"caBundle": wanted}}, _content_type="application/merge-patch+json",
                              _preload_content=False, _request_timeout=TIMEOUT)
        return True
