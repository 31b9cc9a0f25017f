"""Helpers shared by the child builders: names, labels, owner reference.

Pure functions over the WorkerPool dict (as read from the API server, i.e.
with the CRD's defaults applied); no kopf or client import, so ``render`` and
the unit tests build exactly what the operator applies.
"""
from __future__ import annotations

from typing import Any

from podsup import names

MANAGED_BY = names.FIELD_MANAGER
APP_NAME = "podsup-workerpool"
COMPONENT = "worker"


def pool_name(pool: dict) -> str:
    return pool["metadata"]["name"]


def pool_namespace(pool: dict) -> str | None:
    return pool["metadata"].get("namespace")


def spec(pool: dict) -> dict:
    return pool.get("spec") or {}


def section(pool: dict, key: str) -> dict:
    """A spec sub-object, or {} when absent."""
    return spec(pool).get(key) or {}


def selector_labels(pool: dict) -> dict[str, str]:
    """The Deployment/Service/PDB selector: the pool label alone, so extra or
    changed informational labels never orphan pods (selectors are immutable)."""
    return {names.POOL_LABEL: pool_name(pool)}


def selector_string(pool: dict) -> str:
    """The selector in label-query form, for status.selector (scale subresource)."""
    return ",".join(f"{k}={v}" for k, v in selector_labels(pool).items())


def common_labels(pool: dict) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": APP_NAME,
        "app.kubernetes.io/instance": pool_name(pool),
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "app.kubernetes.io/component": COMPONENT,
        **selector_labels(pool),
    }


def metadata(pool: dict, name: str | None = None) -> dict[str, Any]:
    """metadata of a child: same namespace as the pool, named after it, owned
    by it when the pool has a uid (in the cluster; ``render`` has none)."""
    meta: dict[str, Any] = {"name": name or pool_name(pool), "labels": common_labels(pool)}
    if pool_namespace(pool):
        meta["namespace"] = pool_namespace(pool)
    ref = owner_reference(pool)
    if ref:
        meta["ownerReferences"] = [ref]
    return meta


def owner_reference(pool: dict) -> dict[str, Any] | None:
    """Controller reference to the pool: garbage collection deletes the
    children with it, and the operator recognises what it owns."""
    uid = pool["metadata"].get("uid")
    if not uid:
        return None
    return {
        "apiVersion": f"{names.API_GROUP}/{names.API_VERSION}",
        "kind": names.KIND,
        "name": pool_name(pool),
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def autoscaling_enabled(pool: dict) -> bool:
    return bool(section(pool, "autoscaling").get("enabled"))
