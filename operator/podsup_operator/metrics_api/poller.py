"""One WorkerPool's poller: broker → registry, scale to zero, the pods'
scrape → deletion cost and ``status.live``, status.

Run by a task per pool (``handlers``; every pool not being deleted), one
:meth:`tick` per ``queue.pollIntervalSeconds`` (5 s without a queue). Each tick:

1. reads the queue depth from the broker (the probe is rebuilt when the queue
   settings or the Secret's URL change) into the registry the HTTPS API serves;
2. feeds the scale-to-zero state machine (:mod:`podsup_operator.scale_to_zero`)
   and applies its decision through the Deployment's scale subresource — the
   only replica writes the operator ever makes while autoscaling is on;
3. scrapes the pool's ready pods (the scrape the HPA's Pods metrics share)
   and sets their ``controller.kubernetes.io/pod-deletion-cost`` so a
   scale-in removes the idlest pods first (:mod:`.scale_in`); scrapes its
   Running pods that are not Ready too, for crash storms (:mod:`..crash_storms`);
4. writes ``status.live`` (the pods' figures summed, :mod:`..live_status`)
   when they moved beyond a hysteresis, at most every 10 s, and
   ``status.queueDepth`` and the ``MetricsAvailable`` / ``ScaledToZero`` /
   ``WorkersCrashLooping`` conditions (through the shared ``set_condition``,
   other writers' types untouched) only when they change, and posts Events
   when metrics become unreadable or readable again, on scale to/from zero
   and when a crash storm starts or ends.

A pool without a queue (autoscaled on requests/s or busy workers only, or
whose queue was just removed) gets the same ticks minus the broker: the
``MetricsAvailable`` condition then follows its Pods metrics (``Unknown``
until the HPA has asked for one), and a scale to zero it had made is undone.
A fixed-size pool (no queue, no autoscaling) has no metrics for anyone to
read: its ticks are the scrape alone (deletion cost, ``status.live``), and a
``MetricsAvailable`` condition left from before is removed.

Steps 2-4 write (and post Events) only while ``leading()`` says this
replica leads (``--leader-elect``); step 1 and the scrape run on every
replica, which all serve the metrics API from their own poll.

The Deployment is the pool's name (the builders name every child after the
pool). Blocking client calls run in threads; decisions stay pure.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable

from podsup import names

from .. import crash_storms, crd, live_status, scale_to_zero
from ..conditions import FALSE, TRUE, UNKNOWN, get_condition, now_rfc3339, set_condition
from ..status import workers_in_ready_pods
from .provider import MetricsProvider
from .scale_in import DeletionCoster
from .sources.pods import targets, unready_targets
from .sources.queue import QueueProbe, QueueReading, QueueRegistry, QueueSpecError, broker_url, poll_interval

log = logging.getLogger("podsup_operator.metrics_api")

METRICS_AVAILABLE = "MetricsAvailable"
#: status.queueDepth is rewritten at most this often (conditions and a change
#: to or from 0 are written at once): a busy queue must not mean a status
#: write per poll per pool.
QUEUE_DEPTH_WRITE_INTERVAL = 10.0
#: A pods-metrics failure older than this no longer marks the pool unavailable.
POD_HEALTH_MAX_AGE = 120.0

Emit = Callable[[str, str, str], None]


def has_metrics(spec: dict) -> bool:
    """A queue to read or autoscaling on: metrics the HPA (or scale to zero)
    reads, whose health the ``MetricsAvailable`` condition reports."""
    return bool(spec.get("queue")) or bool((spec.get("autoscaling") or {}).get("enabled"))


class PoolPoller:
    def __init__(self, namespace: str, name: str, registry: QueueRegistry, provider: MetricsProvider,
                 kube: Any, emit: Emit, monotonic: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time, leading: Callable[[], bool] = lambda: True):
        self.namespace, self.name = namespace, name
        #: Only the leader writes (leader_election): a follower reads the broker
        #: and scrapes for the metrics API it serves, and writes nothing.
        self.leading = leading
        self.registry, self.provider, self.kube, self.emit = registry, provider, kube, emit
        self._mono, self._wall = monotonic, wall
        self.state = scale_to_zero.State()
        self._probe: QueueProbe | None = None
        self._probe_url: str | None = None
        self._last_depth_write = -1e18
        self.last_reading: QueueReading | None = None
        self.coster = DeletionCoster(namespace, kube, monotonic)
        self.restarts = live_status.RestartWindow()
        self.live_throttle = live_status.Throttle()
        #: status.live of the last scrape (None: unknown, nothing to write)
        self.live: dict | None = None
        self.crash_watch = crash_storms.CrashWatch()

    # --- 1. the broker ---------------------------------------------------------

    async def _read(self, queue: dict) -> QueueReading:
        try:
            secret = None
            ref = queue.get("urlSecretRef")
            if ref:
                secret = await asyncio.to_thread(self.kube.secret_value, self.namespace, ref["name"], ref["key"])
            url = broker_url(queue, secret)
            if url != self._probe_url:
                self.close()
                self._probe = await asyncio.to_thread(QueueProbe, url)
                self._probe_url = url
        except QueueSpecError as exc:
            self.close()
            return QueueReading(None, str(exc), self._wall())
        except Exception as exc:  # noqa: BLE001 - e.g. the Secret cannot be read
            return QueueReading(None, f"reading the queue settings failed: {type(exc).__name__}: {exc}", self._wall())
        return await asyncio.to_thread(self._probe.read, self._wall)

    # --- 2. scale to zero --------------------------------------------------------

    async def _busy(self) -> bool | None:
        """Any busy worker in the pool's ready pods (None = cannot tell)."""
        pods = await self.provider.list_pods(self.namespace, f"{names.POOL_LABEL}={self.name}")
        found, _ = targets(pods)
        for _, scrape in await self.provider.scraper.scrape_all(found):
            if scrape.error or names.METRIC_BUSY_RATIO not in scrape.values:
                return None
            if scrape.values[names.METRIC_BUSY_RATIO] > 0:
                return True
        return False

    async def _scale_to_zero(self, spec: dict, reading: QueueReading) -> scale_to_zero.Transition | None:
        enabled = scale_to_zero.enabled(spec)
        if not enabled and self.state.phase is scale_to_zero.Phase.DISABLED:
            return None
        replicas = await asyncio.to_thread(self.kube.deployment_replicas, self.namespace, self.name)
        busy: bool | None = False
        if enabled and reading is not None and reading.ok and reading.value == 0 and replicas:
            try:
                busy = await self._busy()
            except Exception as exc:  # noqa: BLE001 - unknown busy holds the phase
                log.warning("pool %s/%s: reading busy workers failed: %s", self.namespace, self.name, exc)
                busy = None
        obs = scale_to_zero.Observation(
            now=self._mono(), enabled=enabled,
            cooldown=scale_to_zero.cooldown(spec, crd.DEFAULT_IDLE_COOLDOWN),
            replicas=replicas, queue_depth=reading.value if reading is not None and reading.ok else None, busy=busy)
        transition = scale_to_zero.step(self.state, obs)
        if transition.scale_to is not None:
            await asyncio.to_thread(self.kube.scale_deployment, self.namespace, self.name, transition.scale_to)
        self.state = transition.state
        if transition.event:
            self.emit(transition.event.type, transition.event.reason, transition.event.message)
        return transition

    # --- 2b. the live scrape: scale-in order, status.live ------------------------

    async def _live(self, leading: bool) -> None:
        """Scrape the pool's ready pods (cached: shared with the HPA's asks),
        set their deletion cost when leading (:mod:`.scale_in`) and compute
        ``status.live`` (:mod:`..live_status`; None when no pod could be read); scrape the
        Running pods that are not Ready too, for crash storms
        (:mod:`..crash_storms`: a storming podsup fails readiness)."""
        self.live = None
        try:
            pods = await self.provider.list_pods(self.namespace, f"{names.POOL_LABEL}={self.name}")
            found, _ = targets(pods)
            scraped = await self.provider.scraper.scrape_all(found + unready_targets(pods))
            scrapes = scraped[:len(found)]
            read = {t.name: s.figures for t, s in scrapes if s.error is None and s.figures is not None}
            storms = self.crash_watch.observe(
                crash_storms.readings(pods, {t.name: s.figures for t, s in scraped if s.error is None}),
                self._mono(), self._wall())
            if read or not found:
                restarts = self.restarts.observe(self._mono(), {pod: f.restarts for pod, f in read.items()})
                self.live = live_status.aggregate(read.values(), restarts, len(storms))
            if leading:
                await self.coster.run(pods, scrapes)
        except Exception as exc:  # noqa: BLE001 - the queue and status work of the tick go on
            log.warning("pool %s/%s: live scrape failed: %s: %s", self.namespace, self.name,
                        type(exc).__name__, exc)

    # --- 3. status ---------------------------------------------------------------

    def _metrics_condition(self, reading: QueueReading | None) -> tuple[str, str, str]:
        if reading is not None and not reading.ok:
            return FALSE, "QueueDepthUnavailable", reading.error
        health = self.provider.health.get((self.namespace, self.name, "pods"))
        recent = health is not None and self._wall() - health.timestamp < POD_HEALTH_MAX_AGE
        if recent and not health.ok:
            return FALSE, "PodMetricsUnavailable", health.message
        if reading is not None:
            display = self._probe.target.display if self._probe else "the broker"
            return TRUE, "MetricsReadable", f"queue depth read from {display}"
        if recent:
            return TRUE, "MetricsReadable", health.message
        return UNKNOWN, "NotReadYet", "no queue; no Pods metric of this pool has been asked for recently"

    async def _write_status(self, body: dict, reading: QueueReading | None,
                            transition: scale_to_zero.Transition | None) -> None:
        current = body.get("status") or {}
        generation = (body.get("metadata") or {}).get("generation")
        now = now_rfc3339()
        conds = current.get("conditions") or []
        old_metrics = get_condition(conds, METRICS_AVAILABLE)
        metered = has_metrics(body.get("spec") or {})
        status, reason, message = self._metrics_condition(reading)
        if metered:
            conds = set_condition(conds, METRICS_AVAILABLE, status, reason, message, generation, now)
        else:  # nothing reads this pool's metrics: no condition about them
            conds = [c for c in conds if c.get("type") != METRICS_AVAILABLE]
        if transition is not None and transition.condition is not None:
            c = transition.condition
            conds = set_condition(conds, scale_to_zero.CONDITION_TYPE, c.status, c.reason, c.message,
                                  generation, now)
        old_crash = get_condition(conds, crash_storms.CONDITION_TYPE)
        crash = self.crash_watch.condition()
        if crash is not None:
            conds = set_condition(conds, crash_storms.CONDITION_TYPE, *crash, generation, now)
        patch: dict = {}
        if conds != (current.get("conditions") or []):
            patch["conditions"] = conds
        depth = int(reading.value) if reading is not None and reading.ok else None
        old_depth = current.get("queueDepth")
        if depth != old_depth:
            crossing = (depth == 0) != (old_depth == 0) or depth is None or old_depth is None
            if patch or crossing or self._mono() - self._last_depth_write >= QUEUE_DEPTH_WRITE_INTERVAL:
                patch["queueDepth"] = depth  # None removes the field: no stale backlog shown
        old_live = current.get("live") or {}
        live = self.live_throttle.due(old_live, self.live, self._mono())
        if live is not None:
            patch["live"] = {**live, **{k: None for k in old_live if k not in live}}  # merge patch: None removes
            if (body.get("spec") or {}).get("dynamicProcesses"):  # status.workers follows the live count
                workers = workers_in_ready_pods({**body, "status": {**current, "live": live}},
                                                current.get("readyReplicas", 0))
                if workers != current.get("workers"):
                    patch["workers"] = workers
        if not patch:
            return
        version = (body.get("metadata") or {}).get("resourceVersion")
        if not await asyncio.to_thread(self.kube.patch_pool_status, self.namespace, self.name, patch, version):
            log.debug("pool %s/%s changed while polling: status written next tick", self.namespace, self.name)
            return
        if "queueDepth" in patch:
            self._last_depth_write = self._mono()
        if "live" in patch:
            self.live_throttle.wrote(self._mono())
        if metered and (old_metrics is None or old_metrics.get("status") != status):
            if status == FALSE:
                self.emit("Warning", "MetricsUnavailable", message)
            elif status == TRUE and old_metrics is not None:
                self.emit("Normal", "MetricsAvailable", message)
        self._crash_events(old_crash, crash)

    def _crash_events(self, old: dict | None, new: tuple[str, str, str] | None) -> None:
        """A Warning Event when a crash storm starts in the pool, a Normal one when it ends."""
        was = (old or {}).get("status")
        if new is None or new[0] == was:
            return
        if new[0] == TRUE:
            self.emit("Warning", crash_storms.EVENT_STARTED, new[2])
        elif was == TRUE:
            self.emit("Normal", crash_storms.EVENT_ENDED, f"{crash_storms.CALM_MESSAGE} any more")

    # --- the tick ----------------------------------------------------------------

    async def tick(self, body: dict) -> float:
        """One poll; returns the seconds to wait before the next."""
        spec = body.get("spec") or {}
        queue = spec.get("queue") or {}
        interval = poll_interval(queue)
        reading: QueueReading | None = None
        if not queue:
            self.forget()  # a removed queue's depth is no longer served
            self.last_reading = None
        else:
            reading = await self._read(queue)
            self.last_reading = reading
            self.registry.put(self.namespace, self.name, reading, interval)
            self.provider.record_queue(self.namespace, self.name, reading.ok, reading.error or "ok")
        leading = self.leading()  # once per tick: the writes below all or none
        transition = await self._scale_to_zero(spec, reading) if leading else None
        await self._live(leading)
        if leading:
            await self._write_status(body, reading, transition)
        return interval

    def close(self) -> None:
        if self._probe is not None:
            self._probe.close()
        self._probe, self._probe_url = None, None

    def forget(self) -> None:
        """The pool lost its queue or is gone: stop serving its depth."""
        self.close()
        self.registry.remove(self.namespace, self.name)

