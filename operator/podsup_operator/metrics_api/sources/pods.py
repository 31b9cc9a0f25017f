"""Per-pod rates from podsup's own ``/metrics`` on the pool's ready pods.

The HPA asks for a ``Pods`` metric over a label selector; we list the pods,
keep the Running + Ready ones (the HPA itself only uses those), scrape them
concurrently with a bounded timeout, and cache each pod's scrape briefly so
the two metrics (requests/s, busy ratio) and the HPA's repeated asks cost one
scrape per pod per :attr:`PodScraper.ttl`. The exposition is parsed with
prometheus_client's parser, never by hand.

A pod whose scrape fails or lacks the metric is left out of the answer (the
HPA treats a missing pod conservatively) and reported; it is never a 0.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Iterable

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from podsup import names

from .figures import PodFigures, parse_page

#: The pod-list seam: (namespace, label selector string) → pod dicts (API JSON).
PodLister = Callable[[str, str], Awaitable[list[dict]]]


@dataclass(frozen=True)
class PodTarget:
    namespace: str
    name: str
    url: str
    labels: dict = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Scrape:
    timestamp: float
    values: dict[str, float] | None = None
    error: str | None = None
    #: the rest of the page (workers by state, restarts, memory …): scale-in
    #: order and the pool's live status read them from the same scrape
    figures: PodFigures | None = None


def is_ready(pod: dict) -> bool:
    """Running, Ready, not terminating, with an IP: what the HPA counts."""
    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    if meta.get("deletionTimestamp") or status.get("phase") != "Running" or not status.get("podIP"):
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or ())


def metrics_port(pod: dict, port_name: str = names.METRICS_PORT_NAME) -> int | None:
    for container in (pod.get("spec") or {}).get("containers") or ():
        for port in container.get("ports") or ():
            if port.get("name") == port_name and port.get("containerPort"):
                return int(port["containerPort"])
    return None


def targets(pods: Iterable[dict]) -> tuple[list[PodTarget], list[str]]:
    """Scrape targets of the ready pods, and why others were skipped."""
    out, skipped = [], []
    for pod in pods:
        meta = pod.get("metadata") or {}
        if not is_ready(pod):
            continue
        port = metrics_port(pod)
        if port is None:
            skipped.append(f"pod {meta.get('name')} has no container port named {names.METRICS_PORT_NAME!r}")
            continue
        out.append(_target(pod, port))
    return out, skipped


def _target(pod: dict, port: int) -> PodTarget:
    meta, ip = pod.get("metadata") or {}, pod["status"]["podIP"]
    host = f"[{ip}]" if ":" in ip else ip
    return PodTarget(meta.get("namespace", ""), meta.get("name", ""), f"http://{host}:{port}{names.METRICS_PATH}",
                     dict(meta.get("labels") or {}))


def unready_targets(pods: Iterable[dict]) -> list[PodTarget]:
    """Scrape targets of the Running pods that are not Ready: a podsup in a
    crash storm fails /readyz but still serves /metrics, which says so. Never
    counted in the HPA's answers; read for the pool's crash-storm condition."""
    out = []
    for pod in pods:
        meta, status = pod.get("metadata") or {}, pod.get("status") or {}
        if (is_ready(pod) or meta.get("deletionTimestamp") or status.get("phase") != "Running"
                or not status.get("podIP")):
            continue
        port = metrics_port(pod)
        if port is not None:
            out.append(_target(pod, port))
    return out


def parse_exposition(text: str, wanted: Iterable[str]) -> dict[str, float]:
    """Values of the wanted unlabelled gauges in a Prometheus text exposition."""
    wanted = set(wanted)
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in wanted and not sample.labels:
                found[sample.name] = float(sample.value)
    return found


class PodScraper:
    """Concurrent, bounded, briefly cached scrapes of podsup ``/metrics``."""

    METRICS = (names.METRIC_REQUESTS_PER_SECOND, names.METRIC_BUSY_RATIO, names.METRIC_POOL_SATURATION)

    def __init__(self, timeout: float = 2.0, ttl: float = 5.0, concurrency: int = 32,
                 clock: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic):
        self.timeout = timeout
        self.ttl = ttl
        self._sem = asyncio.Semaphore(concurrency)
        self._clock = clock
        self._mono = monotonic
        self._cache: dict[str, tuple[float, Scrape]] = {}
        self._inflight: dict[str, asyncio.Task] = {}
        self._session: aiohttp.ClientSession | None = None
        self.scrapes = 0  # HTTP fetches made (observability, tests)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=30))
        return self._session

    async def _fetch(self, target: PodTarget) -> Scrape:
        async with self._sem:
            self.scrapes += 1
            try:
                async with self._get_session().get(target.url) as resp:
                    if resp.status != 200:
                        return Scrape(self._clock(), error=f"pod {target.name}: {target.url} answered HTTP {resp.status}")
                    text = await resp.text()
            except asyncio.TimeoutError:
                return Scrape(self._clock(), error=f"pod {target.name}: {target.url} timed out after {self.timeout:g}s")
            except aiohttp.ClientError as exc:
                return Scrape(self._clock(), error=f"pod {target.name}: {target.url}: {type(exc).__name__}: {exc}")
        try:
            values, figures = parse_page(text, self.METRICS)
        except ValueError as exc:
            return Scrape(self._clock(), error=f"pod {target.name}: unparsable /metrics: {exc}")
        return Scrape(self._clock(), values=values, figures=figures)

    async def scrape(self, target: PodTarget) -> Scrape:
        now = self._mono()
        cached = self._cache.get(target.url)
        if cached and cached[0] > now:
            return cached[1]
        task = self._inflight.get(target.url)
        if task is None:
            task = asyncio.ensure_future(self._fetch(target))
            self._inflight[target.url] = task
            try:
                result = await asyncio.shield(task)
            finally:
                self._inflight.pop(target.url, None)
            self._cache[target.url] = (self._mono() + self.ttl, result)
            if len(self._cache) > 10000:
                self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
            return result
        return await asyncio.shield(task)

    async def scrape_all(self, targets_: list[PodTarget]) -> list[tuple[PodTarget, Scrape]]:
        results = await asyncio.gather(*(self.scrape(t) for t in targets_))
        return list(zip(targets_, results))
