"""A pod's live figures from podsup's ``/metrics`` text (pure).

The pods scrape (:mod:`.pods`) keeps a handful of unlabelled gauges for the
HPA; scale-in ordering (:mod:`podsup_operator.deletion_cost`), the pool's
live status and ``podsup-operator status`` need more of the same page: the
workers by state, desired and running, restarts, exits, memory, the queues.
One parse of the text the scraper already fetched gives all of them, with
prometheus_client's parser (never by hand).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from prometheus_client.parser import text_string_to_metric_families

from podsup import names

P = names.METRIC_PREFIX


@dataclass(frozen=True)
class PodFigures:
    """What one podsup reports about its pool at one scrape."""
    desired: int = 0
    running: int = 0
    busy: int = 0
    idle: int = 0
    starting: int = 0
    requests_per_second: float = 0.0
    busy_ratio: float = 0.0
    rss_bytes: float = 0.0
    restarts: int = 0
    queue_depth: float | None = None
    draining: bool = False
    crash_loop: bool = False
    #: how long the storm has lasted (podsup_crash_loop_seconds), and whether
    #: it fails liveness by now (podsup_crash_loop_unhealthy)
    crash_loop_seconds: float = 0.0
    crash_loop_unhealthy: bool = False
    #: exit kind ("exit 1", "signal SIGKILL", "oom") → count since podsup started
    exits: dict[str, int] = field(default_factory=dict, hash=False)


def parse_figures(text: str) -> PodFigures:
    """The figures in one podsup exposition; absent families count as 0."""
    return parse_page(text, ())[1]


def parse_page(text: str, wanted: Iterable[str]) -> tuple[dict[str, float], PodFigures]:
    """One parse for both uses of a scrape: the ``wanted`` unlabelled gauges
    that are present (the HPA's values; a missing one stays missing) and the
    figures (the parser costs ~0.8 ms for an 8-worker page: not twice)."""
    states: dict[str, float] = {}
    single: dict[str, float] = {}
    rss = restarts = 0.0
    depth: float | None = None
    exits: dict[str, int] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == f"{P}workers" and "state" in s.labels:
                states[s.labels["state"]] = states.get(s.labels["state"], 0) + s.value
            elif s.name == f"{P}worker_rss_bytes":
                rss += s.value
            elif s.name == f"{P}worker_restarts_total":
                restarts += s.value
            elif s.name == f"{P}worker_exits_total" and s.value:
                key = " ".join(x for x in (s.labels.get("kind", ""), s.labels.get("code", "")) if x)
                exits[key] = exits.get(key, 0) + int(s.value)
            elif s.name == names.METRIC_QUEUE_DEPTH:
                depth = (depth or 0.0) + s.value
            elif not s.labels:
                single[s.name] = float(s.value)
    values = {name: single[name] for name in wanted if name in single}
    return values, PodFigures(
        desired=int(single.get(f"{P}workers_desired", 0)),
        running=int(single.get(f"{P}workers_running", 0)),
        busy=int(states.get("busy", 0)), idle=int(states.get("idle", 0)),
        starting=int(states.get("starting", 0)),
        requests_per_second=single.get(names.METRIC_REQUESTS_PER_SECOND, 0.0),
        busy_ratio=single.get(names.METRIC_BUSY_RATIO, 0.0),
        rss_bytes=rss, restarts=int(restarts), queue_depth=depth,
        draining=bool(single.get(f"{P}draining", 0)), crash_loop=bool(single.get(f"{P}crash_loop", 0)),
        crash_loop_seconds=single.get(f"{P}crash_loop_seconds", 0.0),
        crash_loop_unhealthy=bool(single.get(f"{P}crash_loop_unhealthy", 0)), exits=exits)
