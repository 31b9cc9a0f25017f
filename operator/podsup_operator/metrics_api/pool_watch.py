"""Our own WorkerPool list/watch, for the pollers of a replica that runs no
kopf handlers (``--leader-elect``: every replica serves the metrics API from
its own poll, only the leader runs kopf).

One thread per scope (the whole cluster, or each ``--namespace``) with the
kubernetes client's watch: list (every pool delivered, pools gone since the
last list delivered as DELETED), then watch from the list's
resourceVersion until the server ends the watch or it expires (410), then
list again. Events are handed to the event loop with
``call_soon_threadsafe``; ``deliver`` runs there (``Pollers.observe``).
"""
from __future__ import annotations

import asyncio
import json
import logging
import threading
from typing import Any, Callable

from podsup import names

log = logging.getLogger("podsup_operator.metrics_api")

Deliver = Callable[[str | None, dict], None]
#: Seconds a watch request may stay open before the server ends it (then: list again).
WATCH_SECONDS = 300
#: Retry pause after a failed list or watch.
RETRY_SECONDS = 2.0
TIMEOUT = 10.0


def _key(obj: dict) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return meta.get("namespace", ""), meta.get("name", "")


class PoolWatch:
    def __init__(self, client: Any, namespaces: list[str], deliver: Deliver, loop: asyncio.AbstractEventLoop):
        import kubernetes

        self.kubernetes = kubernetes
        self.custom = kubernetes.client.CustomObjectsApi(client)
        self.scopes: list[str | None] = list(namespaces) or [None]
        self.deliver, self.loop = deliver, loop
        self._stop = threading.Event()
        self._watches: list[Any] = []
        #: set once the first list of every scope was delivered (tests, logs)
        self.listed = threading.Event()
        self._listed_scopes: set[str | None] = set()

    def start(self) -> None:
        for scope in self.scopes:
            threading.Thread(target=self._run, args=(scope,), name=f"podsup-pool-watch-{scope or 'all'}",
                             daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        for w in list(self._watches):
            w.stop()

    # --- one scope -------------------------------------------------------------------

    def _list(self, scope: str | None, **kwargs: Any) -> Any:
        """List (or, with ``watch=True`` from the Watch, watch) the scope's WorkerPools, raw."""
        kwargs["_preload_content"] = False  # raw JSON (the Watch sets it too)
        if scope is None:
            return self.custom.list_cluster_custom_object(names.API_GROUP, names.API_VERSION, names.PLURAL, **kwargs)
        return self.custom.list_namespaced_custom_object(names.API_GROUP, names.API_VERSION, scope, names.PLURAL,
                                                         **kwargs)

    def _hand(self, event_type: str | None, obj: dict) -> None:
        try:
            self.loop.call_soon_threadsafe(self.deliver, event_type, obj)
        except RuntimeError:  # the loop is closed: the process is ending
            self._stop.set()

    def _run(self, scope: str | None) -> None:
        known: set[tuple[str, str]] = set()
        while not self._stop.is_set():
            try:
                known = self._list_and_watch(scope, known)
            except Exception as exc:  # noqa: BLE001 - the API server restarting, a 410: list again
                if self._stop.is_set():
                    return
                log.warning("WorkerPool watch (%s) failed: %s: %s; listing again", scope or "all namespaces",
                            type(exc).__name__, exc)
                self._stop.wait(RETRY_SECONDS)

    def _list_and_watch(self, scope: str | None, known: set[tuple[str, str]]) -> set[tuple[str, str]]:
        listing = json.loads(self._list(scope, _request_timeout=TIMEOUT).data)
        seen = set()
        for item in listing.get("items") or []:
            item.setdefault("apiVersion", f"{names.API_GROUP}/{names.API_VERSION}")
            item.setdefault("kind", names.KIND)
            seen.add(_key(item))
            self._hand(None, item)
        for namespace, name in known - seen:
            self._hand("DELETED", {"metadata": {"namespace": namespace, "name": name}})
        known = seen
        self._listed_scopes.add(scope)
        if len(self._listed_scopes) == len(self.scopes):
            self.listed.set()
        w = self.kubernetes.watch.Watch()
        self._watches.append(w)
        try:
            for event in w.stream(self._list, scope, resource_version=listing["metadata"]["resourceVersion"],
                                  timeout_seconds=WATCH_SECONDS, _request_timeout=WATCH_SECONDS + TIMEOUT):
                if self._stop.is_set():
                    break
                obj = event.get("object")
                if event.get("type") == "ERROR" or not isinstance(obj, dict):
                    break  # e.g. 410 Gone: the resourceVersion expired; list again
                if event["type"] == "DELETED":
                    known.discard(_key(obj))
                else:
                    known.add(_key(obj))
                self._hand(event["type"], obj)
        finally:
            self._watches.remove(w)
        return known
