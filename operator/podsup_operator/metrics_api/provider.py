"""Values for one metrics request, from the queue registry and the pod scraper.

Errors are :class:`MetricError` with an HTTP code and a message the HPA shows
in its events (``FailedGetExternalMetric``) — never a 0 standing in for a
value we could not read. Each outcome is also recorded per pool in
:attr:`MetricsProvider.health`, which the kopf wiring turns into the
WorkerPool's ``MetricsAvailable`` condition and Events.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable

from podsup import names
from podsup.plugins.metrics import RATE_WINDOW

from . import selectors, types
from .discovery import EXTERNAL_METRICS, POD_METRICS
from .sources.pods import PodLister, PodScraper, targets
from .sources.queue import QueueRegistry

log = logging.getLogger("podsup_operator.metrics_api")


class MetricError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Health:
    ok: bool
    message: str
    timestamp: float


class MetricsProvider:
    def __init__(self, queues: QueueRegistry, list_pods: PodLister, scraper: PodScraper,
                 clock: Callable[[], float] = time.time):
        self.queues = queues
        self.list_pods = list_pods
        self.scraper = scraper
        self._clock = clock
        #: (namespace, pool, source) → last outcome; source is "queue" or "pods".
        self.health: dict[tuple[str, str, str], Health] = {}

    def _record(self, namespace: str, pool: str, source: str, ok: bool, message: str) -> None:
        self.health[(namespace, pool, source)] = Health(ok, message, self._clock())

    @staticmethod
    def _selector(text: str, what: str) -> tuple[selectors.Requirement, ...]:
        try:
            return selectors.parse(text)
        except selectors.SelectorError as exc:
            raise MetricError(400, f"invalid {what}: {exc}") from None

    async def external(self, namespace: str, metric: str, label_selector: str) -> dict:
        """ExternalMetricValueList for the pools in ``namespace`` the selector picks."""
        if metric not in EXTERNAL_METRICS:
            raise MetricError(404, f"external metric {metric!r} is not served here; "
                                   f"served: {', '.join(EXTERNAL_METRICS)}")
        reqs = self._selector(label_selector, "labelSelector")
        if not any(r.key == names.EXTERNAL_SELECTOR_LABEL for r in reqs):
            raise MetricError(400, f"labelSelector must name the WorkerPool, e.g. "
                                   f"{names.EXTERNAL_SELECTOR_LABEL}=<pool> (got {label_selector!r})")
        picked = {pool: reading for pool, reading in self.queues.pools(namespace).items()
                  if selectors.matches(reqs, {names.EXTERNAL_SELECTOR_LABEL: pool})}
        if not picked:
            raise MetricError(404, f"no WorkerPool with a queue in namespace {namespace!r} matches "
                                   f"{label_selector!r}")
        items, errors = [], []
        for pool, reading in sorted(picked.items()):
            if reading.ok:
                items.append(types.external_value(metric, {names.EXTERNAL_SELECTOR_LABEL: pool},
                                                  reading.timestamp, reading.value))
            else:
                errors.append(f"WorkerPool {namespace}/{pool}: {reading.error}")
        if errors:
            # A partial sum would understate the backlog: the whole answer fails.
            raise MetricError(503, "; ".join(errors))
        return types.external_list(items)

    async def pods(self, namespace: str, name: str, metric: str, label_selector: str,
                   metric_selector: str = "") -> dict:
        """MetricValueList of a per-pod metric for the ready pods the selector picks."""
        if metric not in POD_METRICS:
            raise MetricError(404, f"pods metric {metric!r} is not served here; served: {', '.join(POD_METRICS)}")
        reqs = self._selector(label_selector, "labelSelector")
        mreqs = self._selector(metric_selector, "metricLabelSelector")
        if not selectors.matches(mreqs, {}):
            raise MetricError(400, f"metricLabelSelector {metric_selector!r} matches no series: "
                                   f"podsup's per-pod metrics carry no labels")
        if name == "*" and not reqs:
            raise MetricError(400, "pods/* needs a labelSelector naming the pool's pods")
        try:
            pods = await self.list_pods(namespace, label_selector)
        except Exception as exc:  # noqa: BLE001 - the API error goes to the HPA, not a traceback
            raise MetricError(503, f"listing pods in {namespace!r} failed: {type(exc).__name__}: {exc}") from None
        if name != "*":
            pods = [p for p in pods if (p.get("metadata") or {}).get("name") == name]
        found, skipped = targets(pods)
        results = await self.scraper.scrape_all(found)
        items, errors = [], list(skipped)
        for target, scrape in results:
            if scrape.error:
                errors.append(scrape.error)
            elif metric not in scrape.values:
                errors.append(f"pod {target.name}: /metrics has no {metric}")
            else:
                window = int(RATE_WINDOW) if metric == names.METRIC_REQUESTS_PER_SECOND else None
                items.append(types.pod_value(namespace, target.name, metric, scrape.timestamp,
                                             scrape.values[metric], window,
                                             selectors.label_selector(mreqs)))
        pools = {t.labels.get(names.POOL_LABEL) for t in found} - {None}
        for pool in pools:
            self._record(namespace, pool, "pods", not errors,
                         "; ".join(errors) if errors else f"{metric} read from {len(items)} ready pod(s)")
        if errors:
            log.warning("metrics API: %s/%s %s: %s", namespace, label_selector, metric, "; ".join(errors))
        if found and not items:
            raise MetricError(503, f"no ready pod answered {metric}: " + "; ".join(errors))
        return types.metric_value_list(items)

    def record_queue(self, namespace: str, pool: str, ok: bool, message: str) -> None:
        self._record(namespace, pool, "queue", ok, message)
