"""A poller task per WorkerPool not being deleted (a fixed-size pool too:
its live figures and its pods' deletion costs come from the poller's
scrape), started, refreshed and stopped from the
WorkerPool watch: kopf's ``on.event`` (standalone, :mod:`.handlers`) or our
own list/watch on every replica (``--leader-elect``, :mod:`.pool_watch`).

Not a ``kopf.daemon``: kopf puts a finalizer on every object a daemon runs
for, so deleting such a pool (or its namespace) would hang whenever the
operator is not running. A watch needs no finalizer; each task reads the
newest body the watch delivered before every tick.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

from .poller import PoolPoller

log = logging.getLogger("podsup_operator.metrics_api")

#: Posts an Event about a WorkerPool: (body, type, reason, message).
Post = Callable[[dict, str, str, str], None]


class Pollers:
    """``runtime()`` gives the registry, provider and Kube the pollers share;
    ``leading()`` gates their writes (:class:`.poller.PoolPoller`)."""

    def __init__(self, runtime: Callable[[], Any], post: Post, leading: Callable[[], bool] = lambda: True) -> None:
        self.runtime, self.post, self.leading = runtime, post, leading
        self.bodies: dict[tuple[str, str], dict] = {}
        self.tasks: dict[tuple[str, str], asyncio.Task] = {}

    def observe(self, event_type: str | None, body: dict) -> None:
        meta = body.get("metadata") or {}
        key = (meta.get("namespace", ""), meta.get("name", ""))
        if event_type == "DELETED" or meta.get("deletionTimestamp"):
            self.bodies.pop(key, None)
            task = self.tasks.pop(key, None)
            if task is not None:
                task.cancel()
            return
        self.bodies[key] = body
        task = self.tasks.get(key)
        if task is None or task.done():
            self.tasks[key] = asyncio.create_task(self._run(key), name=f"podsup-poller-{key[0]}/{key[1]}")

    async def _run(self, key: tuple[str, str]) -> None:
        namespace, name = key
        rt = self.runtime()

        def emit(type_: str, reason: str, message: str) -> None:
            body = self.bodies.get(key)
            if body is not None:
                self.post(body, type_, reason, message)

        poller = PoolPoller(namespace, name, rt.registry, rt.provider, rt.kube, emit, leading=self.leading)
        try:
            while key in self.bodies:
                try:
                    interval = await poller.tick(self.bodies[key])
                except Exception as exc:  # noqa: BLE001 - one failed tick (API hiccup) must not end polling
                    log.warning("queue poll of %s/%s failed: %s: %s", namespace, name, type(exc).__name__, exc)
                    interval = 5.0
                await asyncio.sleep(interval)
        finally:
            poller.forget()

    async def stop_all(self) -> None:
        tasks = list(self.tasks.values())
        self.bodies.clear()
        self.tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
