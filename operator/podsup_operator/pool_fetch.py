"""``podsup-operator status``'s fetching: the pool, its pods, one scrape each.

Runs with the caller's credentials (a kubeconfig, or the operator's service
account inside the cluster), not as part of the operator: the pool is read,
its pods listed by the pool label, and each Running + Ready pod's podsup
``/metrics`` fetched — directly at the pod IP inside the cluster, through the
API server's pod proxy (``pods/proxy``, ``get``) outside it, where pod IPs do
not route. The text is parsed by the operator's own scrape logic
(:func:`~.metrics_api.sources.figures.parse_figures`); the table is
:mod:`.pool_view`'s. The scrape is a seam (``Scrape``: pod dict → text) so
tests use real podsup processes without a kubelet.
"""
from __future__ import annotations

import json
import os
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from podsup import names

from .metrics_api.sources.figures import parse_figures
from .metrics_api.sources.pods import is_ready, metrics_port
from .pool_view import PodRow, row

TIMEOUT = 5.0
Scrape = Callable[[dict], str]


class FetchError(Exception):
    """A one-line reason the pool could not be shown."""


def in_cluster() -> bool:
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST"))


def scrape_direct(pod: dict, timeout: float = TIMEOUT) -> str:
    ip = pod["status"]["podIP"]
    host = f"[{ip}]" if ":" in ip else ip
    with urllib.request.urlopen(f"http://{host}:{metrics_port(pod)}{names.METRICS_PATH}", timeout=timeout) as resp:
        return resp.read().decode()


def scrape_via_proxy(core: Any, timeout: float = TIMEOUT) -> Scrape:
    """The API server's pod proxy: GET /api/v1/namespaces/NS/pods/NAME:PORT/proxy/metrics."""
    def scrape(pod: dict) -> str:
        meta = pod["metadata"]
        resp = core.connect_get_namespaced_pod_proxy_with_path(
            f"{meta['name']}:{metrics_port(pod)}", meta["namespace"], names.METRICS_PATH.lstrip("/"),
            _preload_content=False, _request_timeout=timeout)
        return resp.data.decode()
    return scrape


def _reason(exc: BaseException) -> str:
    status, why = getattr(exc, "status", None), getattr(exc, "reason", None)
    if isinstance(status, int):
        return f"HTTP {status} {why or ''}".strip()
    return " ".join(str(exc).split()) or type(exc).__name__


def gather(pods: list[dict], scrape: Scrape, concurrency: int = 16) -> list[PodRow]:
    """One row per pod, by name; ready pods with a metrics port are scraped concurrently."""
    pods = sorted(pods, key=lambda p: (p.get("metadata") or {}).get("name", ""))

    def one(pod: dict) -> PodRow:
        if not is_ready(pod):
            return row(pod, None, None)
        if metrics_port(pod) is None:
            return row(pod, None, f"no container port named {names.METRICS_PORT_NAME!r}")
        try:
            return row(pod, parse_figures(scrape(pod)), None)
        except Exception as exc:  # noqa: BLE001 - one unreadable pod is a row saying why
            return row(pod, None, _reason(exc))

    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(pods)))) as pool:
        return list(pool.map(one, pods))


def fetch(api_client: Any, namespace: str, name: str, scrape: Scrape | None = None) -> tuple[dict, list[PodRow]]:
    """The pool and its rows; ``scrape`` defaults to direct in a cluster, the pod proxy outside."""
    import kubernetes

    core = kubernetes.client.CoreV1Api(api_client)
    custom = kubernetes.client.CustomObjectsApi(api_client)
    try:
        pool = json.loads(custom.get_namespaced_custom_object(
            names.API_GROUP, names.API_VERSION, namespace, names.PLURAL, name,
            _preload_content=False, _request_timeout=TIMEOUT).data)
        pods = json.loads(core.list_namespaced_pod(
            namespace, label_selector=f"{names.POOL_LABEL}={name}", _preload_content=False,
            _request_timeout=TIMEOUT).data).get("items") or []
    except kubernetes.client.exceptions.ApiException as exc:
        if exc.status == 404:
            raise FetchError(f"WorkerPool {namespace}/{name} not found") from None
        raise FetchError(f"reading WorkerPool {namespace}/{name} failed: {_reason(exc)}") from None
    except Exception as exc:  # noqa: BLE001 - connection refused, DNS, timeouts: one line
        raise FetchError(f"reading WorkerPool {namespace}/{name} failed: {_reason(exc)}") from None
    if scrape is None:
        scrape = scrape_direct if in_cluster() else scrape_via_proxy(core)
    return pool, gather(pods, scrape)
