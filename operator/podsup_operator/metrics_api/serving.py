"""The metrics API and the pollers outside kopf, on every replica
(``podsup-operator run --leader-elect``).

A follower runs no kopf handler, yet the aggregator may route any request
to any ready replica: so each replica starts the HTTPS server itself (the
same supervisor as the kopf startup handler, :mod:`.handlers`), watches the
WorkerPools itself (:mod:`.pool_watch`) and polls every pool into its own
registry. The pollers' writes (status, scale to zero, pod deletion cost,
Events) are gated on ``leading()``: only the leader makes them.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Callable

from . import handlers
from .kube import api_client
from .pollers import Pollers
from .pool_watch import PoolWatch

log = logging.getLogger("podsup_operator.metrics_api")


def _reference(body: dict) -> dict:
    """What an Event's involvedObject needs of a WorkerPool body."""
    meta = body.get("metadata") or {}
    keep = {k: meta[k] for k in ("name", "namespace", "uid") if k in meta}
    return {"apiVersion": body.get("apiVersion", ""), "kind": body.get("kind", ""), "metadata": keep}


class EventPoster:
    """Posts the pollers' Events with our own client (``kopf.event`` works
    only inside kopf), in a thread; a failed post is a log line."""

    def __init__(self, kube: Any) -> None:
        self.kube = kube
        self._pending: set[asyncio.Task] = set()

    def __call__(self, body: dict, type_: str, reason: str, message: str) -> None:
        task = asyncio.get_running_loop().create_task(self._post(_reference(body), type_, reason, message))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _post(self, ref: dict, type_: str, reason: str, message: str) -> None:
        try:
            await asyncio.to_thread(self.kube.post_event, ref, type_, reason, message)
        except Exception as exc:  # noqa: BLE001 - an Event is a courtesy; the status carries the facts
            log.warning("cannot post the %s Event on WorkerPool %s/%s: %s", reason, ref["metadata"].get("namespace"),
                        ref["metadata"].get("name"), exc)


@dataclass
class Serving:
    pollers: Pollers
    watch: PoolWatch

    async def stop(self) -> None:
        self.watch.stop()
        await self.pollers.stop_all()
        await handlers.stop_metrics_api()


async def start(leading: Callable[[], bool], namespaces: list[str]) -> Serving:
    """Start the metrics API's supervisor (it retries on its own), the
    WorkerPool watch and the pollers; returns at once."""
    rt = handlers.runtime()
    await handlers.start_metrics_api(logger=log)
    pollers = handlers.Pollers(leading=leading, post=EventPoster(rt.kube))
    watch = PoolWatch(api_client(), namespaces, pollers.observe, asyncio.get_running_loop())
    watch.start()
    return Serving(pollers, watch)
