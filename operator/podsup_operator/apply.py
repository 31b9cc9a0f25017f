"""The seam between the reconcile and the Kubernetes API.

kopf patches only its own resource and does not do server-side apply, so the
children are applied here with the official client: PATCH with content type
application/apply-patch+yaml, the fixed field manager names.FIELD_MANAGER and
force=True (the operator is the authority for the fields it sets; a stale
owner such as a past ``kubectl edit`` loses them). Errors are raised as
``ApiException`` so kopf retries. One small generic client for the handful of
kinds we touch, instead of one typed API class per kind.
"""
from __future__ import annotations

import json
from typing import Any

from podsup import names

APPLY_CONTENT_TYPE = "application/apply-patch+yaml"
#: Replica writes through the scale subresource (scale to/from zero) go under a
#: manager of their own, so ``kubectl get deploy -o yaml`` shows who set them.
SCALE_FIELD_MANAGER = f"{names.FIELD_MANAGER}-scale-to-zero"
#: Applies spec.replicas once when autoscaling is turned on, so the count is
#: kept while our own manager gives the field up (see reconcile._hand_replicas_over).
HANDOVER_FIELD_MANAGER = f"{names.FIELD_MANAGER}-handover"
MERGE_CONTENT_TYPE = "application/merge-patch+json"

#: (apiVersion, kind) → plural of every kind the operator reads or writes.
PLURALS = {
    ("apps/v1", "Deployment"): "deployments",
    ("v1", "Service"): "services",
    ("autoscaling/v2", "HorizontalPodAutoscaler"): "horizontalpodautoscalers",
    ("policy/v1", "PodDisruptionBudget"): "poddisruptionbudgets",
    (f"{names.API_GROUP}/{names.API_VERSION}", names.KIND): names.PLURAL,
}


def object_path(api_version: str, kind: str, namespace: str, name: str, subresource: str | None = None) -> str:
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    path = f"{base}/namespaces/{namespace}/{PLURALS[(api_version, kind)]}/{name}"
    return f"{path}/{subresource}" if subresource else path


class ClusterApi:
    """Get/apply/delete/patch-status of namespaced objects as plain dicts."""

    def __init__(self, api_client: Any):
        self.api_client = api_client

    def _request(self, method: str, path: str, *, query: list[tuple[str, str]] | None = None,
                 content_type: str | None = None, body: Any = None, missing_ok: bool = False) -> dict | None:
        from kubernetes.client.exceptions import ApiException

        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        method, url, headers, body, _ = self.api_client.param_serialize(
            method, path, query_params=query or [], header_params=headers, body=body,
            auth_settings=["BearerToken"])
        resp = self.api_client.call_api(method, url, headers, body)
        data = resp.read()
        if missing_ok and resp.status == 404:
            return None
        if not 200 <= resp.status <= 299:
            raise ApiException.from_response(http_resp=resp, body=data.decode("utf-8", "replace"), data=None)
        return json.loads(data) if data else {}

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict | None:
        """The live object, or None if it does not exist."""
        return self._request("GET", object_path(api_version, kind, namespace, name), missing_ok=True)

    def apply(self, obj: dict, manager: str = names.FIELD_MANAGER) -> dict:
        """Server-side apply ``obj`` (creates it when missing) as ``manager``."""
        meta = obj["metadata"]
        path = object_path(obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"])
        return self._request("PATCH", path, query=[("fieldManager", manager), ("force", "true")],
                             content_type=APPLY_CONTENT_TYPE, body=obj) or {}

    def delete(self, api_version: str, kind: str, namespace: str, name: str, uid: str | None = None) -> None:
        """Delete (a missing object is fine); ``uid`` guards against deleting a
        same-named replacement."""
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        if uid:
            body["preconditions"] = {"uid": uid}
        self._request("DELETE", object_path(api_version, kind, namespace, name), content_type="application/json",
                      body=body, missing_ok=True)

    def patch_status(self, pool: dict, status: dict) -> dict:
        """Merge-patch the pool's status subresource with ``status``.

        The pool's resourceVersion goes along as a precondition: the patch may
        carry the whole conditions list, computed from what we read, so a
        concurrent writer's change must make it fail (409) rather than be lost.
        """
        meta = pool["metadata"]
        path = object_path(pool["apiVersion"], pool["kind"], meta["namespace"], meta["name"], "status")
        body: dict[str, Any] = {"status": status}
        if meta.get("resourceVersion"):
            body["metadata"] = {"resourceVersion": meta["resourceVersion"]}
        return self._request("PATCH", path, content_type=MERGE_CONTENT_TYPE, body=body) or {}

    def scale(self, namespace: str, name: str, replicas: int) -> dict:
        """Set the Deployment's replicas through its scale subresource."""
        path = object_path("apps/v1", "Deployment", namespace, name, "scale")
        return self._request("PATCH", path, query=[("fieldManager", SCALE_FIELD_MANAGER)],
                             content_type=MERGE_CONTENT_TYPE, body={"spec": {"replicas": replicas}}) or {}

    def list_pools(self, namespaces: list[str] | None = None) -> list[dict]:
        """Every WorkerPool in ``namespaces`` (all namespaces when empty)."""
        group_version = f"/apis/{names.API_GROUP}/{names.API_VERSION}"
        paths = ([f"{group_version}/namespaces/{ns}/{names.PLURAL}" for ns in namespaces] if namespaces
                 else [f"{group_version}/{names.PLURAL}"])
        pools = []
        for path in paths:
            listing = self._request("GET", path) or {}
            for item in listing.get("items") or []:
                item.setdefault("apiVersion", f"{names.API_GROUP}/{names.API_VERSION}")
                item.setdefault("kind", names.KIND)  # lists omit them per item
                pools.append(item)
        return pools

    def get_pool(self, namespace: str, name: str) -> dict | None:
        return self.get(f"{names.API_GROUP}/{names.API_VERSION}", names.KIND, namespace, name)
