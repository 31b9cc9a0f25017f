"""kopf wiring: every trigger runs the same level-based reconcile.

Handlers are thin and synchronous (kopf runs them in threads; the kubernetes
client is blocking). WorkerPool create/update/resume and a periodic resync of
all pools reconcile the pool itself; events of the pool's Deployment (status
changes, deletion) reconcile its owner so status follows the rollout and a
deleted Deployment comes back at once instead of at the next resync. A
per-pool lock keeps two triggers of one pool from interleaving (a stale body
is harmless: status writes carry a resourceVersion precondition).
"""
from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

import kopf

from podsup import names

from . import metrics
from .apply import ClusterApi
from .config import CONFIG, RESYNC_SECONDS
from .reconcile import ChildrenFailed, Outcome, reconcile

WORKERPOOLS = (names.API_GROUP, names.API_VERSION, names.PLURAL)
#: Seconds before kopf retries a pool some of whose children were refused,
#: doubling with each attempt up to RETRY_MAX (the resync retries too).
RETRY_MIN, RETRY_MAX = 10.0, 300.0

_api: ClusterApi | None = None
_api_lock = threading.Lock()
_pool_locks: dict[str, threading.Lock] = {}


def cluster_api() -> ClusterApi:
    """One shared client, configured from the pod's service account or the
    kubeconfig (the same credentials kopf found)."""
    global _api
    with _api_lock:
        if _api is None:
            import kubernetes

            try:
                kubernetes.config.load_incluster_config()
            except kubernetes.config.ConfigException:
                kubernetes.config.load_kube_config()
            _api = ClusterApi(kubernetes.client.ApiClient())
        return _api


def reset_cluster_api() -> None:
    """Forget the client (tests point the operator at a new emulator)."""
    global _api
    with _api_lock:
        _api = None


def _lock_for(uid: str) -> threading.Lock:
    with _api_lock:
        return _pool_locks.setdefault(uid, threading.Lock())


def run_reconcile(pool: dict, trigger: str, logger: Any) -> Outcome:
    def emit(type_: str, reason: str, message: str) -> None:
        kopf.event(pool, type=type_, reason=reason, message=message)

    with metrics.observe(trigger), _lock_for(pool["metadata"].get("uid", "")):
        outcome = reconcile(pool, cluster_api(), CONFIG.operator_image, emit=emit)
    metrics.POOLS.record(pool, outcome.live.get("Deployment"), outcome.live.get("HorizontalPodAutoscaler"))
    metrics.WRITES.labels(op="apply").inc(len(outcome.applied))
    metrics.WRITES.labels(op="delete").inc(len(outcome.deleted))
    if outcome.status_patch:
        metrics.WRITES.labels(op="status").inc()
    if outcome.scaled_to is not None:
        metrics.WRITES.labels(op="scale").inc()
    if outcome.writes:
        logger.info(f"reconciled ({trigger}): applied {outcome.applied or 'nothing'}, "
                    f"deleted {outcome.deleted or 'nothing'}, status fields {sorted(outcome.status_patch)}"
                    + (f", scaled from 0 to {outcome.scaled_to}" if outcome.scaled_to is not None else ""))
    return outcome


def _plain(body: Any) -> dict:
    """kopf's Body as a plain dict (builders and status work on plain data)."""
    import copy

    return copy.deepcopy(dict(body))


@kopf.on.resume(*WORKERPOOLS)
@kopf.on.create(*WORKERPOOLS)
@kopf.on.update(*WORKERPOOLS)
def pool_changed(body: Any, reason: Any, logger: Any, retry: int = 0, **_: Any) -> None:
    try:
        run_reconcile(_plain(body), str(getattr(reason, "value", reason)), logger)
    except ChildrenFailed as exc:  # the status and Events say it; one log line, no traceback
        raise kopf.TemporaryError(str(exc), delay=retry_delay(retry)) from None


def retry_delay(retry: int) -> float:
    """Backoff of a pool with refused children: 10 s, 20 s, 40 s ... 300 s."""
    return min(RETRY_MAX, RETRY_MIN * 2 ** min(retry, 16))


def resync_all(logger: Any) -> int:
    """Reconcile every WorkerPool in scope once; returns how many failed.
    A failing pool is logged (and reported in its status and Events by the
    reconcile) and does not stop the others."""
    failed = 0
    for pool in cluster_api().list_pools(CONFIG.namespaces):
        try:
            run_reconcile(pool, "resync", logger)
        except Exception as exc:  # noqa: BLE001 - one bad pool never blocks the others
            failed += 1
            logger.warning(f"resync of {pool['metadata'].get('namespace')}/{pool['metadata']['name']} "
                           f"failed: {exc}")
    return failed


async def _resync_loop(logger: Any) -> None:
    while True:
        await asyncio.sleep(RESYNC_SECONDS)
        try:
            await asyncio.to_thread(resync_all, logger)
        except Exception as exc:  # noqa: BLE001 - e.g. the list failed; try again next period
            logger.warning(f"resync failed: {exc}")


@kopf.on.startup()
async def start_resync(memo: Any, logger: Any, **_: Any) -> None:
    """Periodic level-based resync of all pools (drift of any child, status).

    A loop of our own rather than ``kopf.timer``: kopf puts a finalizer on
    every object with a timer, which would leave WorkerPools (and their
    namespaces) stuck in deletion whenever the operator is not running.
    """
    memo["podsup_resync"] = asyncio.create_task(_resync_loop(logger))


@kopf.on.cleanup()
async def stop_resync(memo: Any, **_: Any) -> None:
    task = memo.get("podsup_resync")
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@kopf.on.event("apps", "v1", "deployments", labels={names.POOL_LABEL: kopf.PRESENT})
def deployment_event(event: Any, body: Any, logger: Any, **_: Any) -> None:
    owner = next((ref for ref in body.get("metadata", {}).get("ownerReferences") or []
                  if ref.get("controller") and ref.get("kind") == names.KIND), None)
    if owner is None:
        return
    pool = cluster_api().get_pool(body["metadata"]["namespace"], owner["name"])
    if pool is None or pool["metadata"].get("uid") != owner.get("uid") or pool["metadata"].get("deletionTimestamp"):
        return  # the owner is gone or going: garbage collection removes the child
    try:
        run_reconcile(pool, f"deployment-{event.get('type') or 'event'}".lower(), logger)
    except ChildrenFailed as exc:  # in the status and Events already; the pool's own handler retries
        logger.warning(f"reconcile of {pool['metadata']['name']} after a Deployment event: {exc}")
