"""The I/O of scale-in ordering: one pass per poll of a pool.

From the pool's pod list and the scrape the poller already made
(:mod:`.sources.pods`), build the :class:`~podsup_operator.deletion_cost.Observed`
pods, ask the pure planner for the patches, and send them through the
``Kube`` seam (``patch_pod``, a merge patch of one annotation). Pods whose
scrape failed are left as they are: an unknown busy count is no reason to
make a pod cheaper. A failed patch (the pod was just deleted, a transient
API error) is logged and counts as an attempt, so the pod is retried after
the same interval, not hammered.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable

from .. import deletion_cost
from .sources.pods import PodTarget, Scrape

log = logging.getLogger("podsup_operator.metrics_api")


class DeletionCoster:
    def __init__(self, namespace: str, kube: Any, monotonic: Callable[[], float] = time.monotonic,
                 interval: float = deletion_cost.MIN_INTERVAL, limit: int = deletion_cost.MAX_PATCHES):
        self.namespace, self.kube, self._mono = namespace, kube, monotonic
        self.interval, self.limit = interval, limit
        #: pod → monotonic time of its last patch attempt
        self.last: dict[str, float] = {}

    async def run(self, pods: list[dict], scrapes: list[tuple[PodTarget, Scrape]]) -> list[deletion_cost.Patch]:
        annotations = {(p.get("metadata") or {}).get("name"): ((p.get("metadata") or {}).get("annotations") or {})
                       for p in pods}
        self.last = {pod: at for pod, at in self.last.items() if pod in annotations}
        observed = [deletion_cost.Observed(t.name, annotations.get(t.name, {}).get(deletion_cost.ANNOTATION),
                                           s.figures.busy)
                    for t, s in scrapes if s.error is None and s.figures is not None]
        now = self._mono()
        patches = deletion_cost.plan(observed, self.last, now, self.interval, self.limit)
        for patch in patches:
            self.last[patch.pod] = now
            try:
                await asyncio.to_thread(self.kube.patch_pod, self.namespace, patch.pod, deletion_cost.body(patch))
            except Exception as exc:  # noqa: BLE001 - e.g. the pod is gone; retried after the interval
                log.warning("pod %s/%s: setting %s=%d failed: %s", self.namespace, patch.pod,
                            deletion_cost.ANNOTATION, patch.cost, exc)
        return patches
