"""Leader election over a coordination.k8s.io/v1 Lease, as client-go does it.

Only the leader runs the reconcile (kopf) and the pollers' writes; every
replica serves the metrics API. The rules are client-go's
(``k8s.io/client-go/tools/leaderelection``):

- a candidate takes the Lease when it does not exist, when its holder is
  empty (released), or when the record has not changed for the Lease's
  ``leaseDurationSeconds`` as measured on *this* replica's monotonic clock
  since it last saw the record change (no trust in other hosts' clocks);
- the leader renews every ``retry_period``; when no renewal succeeded for
  ``renew_deadline`` (< lease duration) it has lost, and knows it before any
  other replica may take over;
- every write carries the resourceVersion it read (optimistic concurrency:
  two candidates racing, one wins, the other gets a 409);
- a leader stopping gracefully releases the Lease (holder empty, duration
  1 s) so a rolling update hands over in one retry period, not a full lease.

Why not ``kubernetes.leaderelection`` (kubernetes 37): it never releases the
Lease (every upgrade waits the whole lease duration), catches only
ApiException (a refused connection escapes the renew loop and ends the
election thread without calling ``onstopped_leading``, while the work it
guards runs on), sets no request timeout (a hung renewal never reaches the
renew deadline), cannot be stopped (``run`` loops in ``time.sleep``), and uses
the global default client.

The Lease's reads and writes are behind :class:`LeaseStore` (the real one:
:mod:`.lease_api`); the clock behind ``monotonic``/``wall``/``sleep``. No
kubernetes import here.
"""
from __future__ import annotations

import asyncio
import datetime
import enum
import logging
from dataclasses import dataclass, replace
from typing import Awaitable, Callable, Protocol

log = logging.getLogger("podsup_operator.leader")

#: client-go's defaults (and kube-controller-manager's): seconds.
LEASE_DURATION, RENEW_DEADLINE, RETRY_PERIOD = 15.0, 10.0, 2.0
#: client-go's JitterFactor: the renew deadline must leave room for a retry.
JITTER_FACTOR = 1.2
DEFAULT_LEASE_NAME = "podsup-operator"


class State(enum.Enum):
    CANDIDATE = "candidate"  # not leading (yet): reads only
    LEADING = "leading"
    LOST = "lost"            # was leading, could not renew in time: stop acting, exit
    RELEASED = "released"    # stopped gracefully (lease handed back if it was ours)


@dataclass(frozen=True)
class Timings:
    lease_duration: float = LEASE_DURATION
    renew_deadline: float = RENEW_DEADLINE
    retry_period: float = RETRY_PERIOD


def check_timings(t: Timings) -> str | None:
    """client-go's rules, as one line naming the flags; None when valid."""
    for flag, value in (("--leader-elect-lease-duration", t.lease_duration),
                        ("--leader-elect-renew-deadline", t.renew_deadline),
                        ("--leader-elect-retry-period", t.retry_period)):
        if not value > 0:
            return f"{flag} must be more than 0 seconds (got {value:g})"
    if t.lease_duration <= t.renew_deadline:
        return (f"--leader-elect-lease-duration ({t.lease_duration:g}s) must be longer than "
                f"--leader-elect-renew-deadline ({t.renew_deadline:g}s)")
    if t.renew_deadline <= JITTER_FACTOR * t.retry_period:
        return (f"--leader-elect-renew-deadline ({t.renew_deadline:g}s) must be longer than "
                f"{JITTER_FACTOR:g} x --leader-elect-retry-period ({t.retry_period:g}s)")
    return None


@dataclass(frozen=True)
class LeaseRecord:
    """The Lease's spec as we use it, plus the version it was read at."""
    holder: str = ""
    duration_seconds: int = 0
    acquire_time: str | None = None
    renew_time: str | None = None
    transitions: int = 0
    resource_version: str | None = None


class LeaseStore(Protocol):
    """The Lease's API calls (blocking; run in a thread). ``create`` and
    ``update`` answer False when another writer got there first (409);
    any other failure raises."""

    def get(self) -> LeaseRecord | None: ...
    def create(self, record: LeaseRecord) -> bool: ...
    def update(self, record: LeaseRecord) -> bool: ...


def micro_time(seconds: float) -> str:
    """A metav1.MicroTime (RFC 3339, microseconds, UTC)."""
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Elector:
    """One candidate. :meth:`run` competes until cancelled (then releases a
    Lease it holds) or until leadership is lost. ``leading`` is what the
    leader-only work checks; ``acquired`` / ``lost`` are what the process
    waits on."""

    def __init__(self, store: LeaseStore, identity: str, timings: Timings = Timings(), *,
                 monotonic: Callable[[], float], wall: Callable[[], float],
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 call: Callable[..., Awaitable] | None = None):
        self.store, self.identity, self.timings = store, identity, timings
        self._mono, self._wall, self._sleep = monotonic, wall, sleep
        self._call = call or asyncio.to_thread
        self.state = State.CANDIDATE
        self.acquired, self.lost = asyncio.Event(), asyncio.Event()
        #: the record last read, and when (our monotonic clock) it last changed
        self._observed: LeaseRecord | None = None
        self._observed_at = 0.0
        self._last_renew = 0.0
        self._noted_holder: str | None = None

    @property
    def leading(self) -> bool:
        return self.state is State.LEADING

    # --- one attempt -------------------------------------------------------------

    async def try_acquire_or_renew(self) -> bool:
        """One read and at most one write; True when we hold the Lease now."""
        now_wall = micro_time(self._wall())
        duration = max(1, round(self.timings.lease_duration))
        current = await self._call(self.store.get)
        if current is None:
            mine = LeaseRecord(self.identity, duration, now_wall, now_wall, 0)
            if not await self._call(self.store.create, mine):
                return False
            self._observe(mine)
            return True
        self._observe(current)
        if current.holder and current.holder != self.identity:
            held_for = current.duration_seconds or duration
            if self._observed_at + held_for > self._mono():
                self._note_holder(current.holder)
                return False
        ours = current.holder == self.identity
        mine = replace(current, holder=self.identity, duration_seconds=duration, renew_time=now_wall,
                       acquire_time=current.acquire_time if ours else now_wall,
                       transitions=current.transitions if ours else current.transitions + 1)
        if not await self._call(self.store.update, mine):
            return False
        self._observe(mine)
        return True

    def _observe(self, record: LeaseRecord) -> None:
        key = (record.holder, record.renew_time, record.resource_version)
        seen = self._observed
        if seen is None or key != (seen.holder, seen.renew_time, seen.resource_version):
            self._observed_at = self._mono()
        self._observed = record

    def _note_holder(self, holder: str) -> None:
        if holder != self._noted_holder:
            self._noted_holder = holder
            log.info("leader election: %s leads; %s waits as a candidate", holder, self.identity)

    async def _attempt(self) -> bool:
        try:
            return await self.try_acquire_or_renew()
        except Exception as exc:  # noqa: BLE001 - any failure is a failed attempt; the deadline decides
            log.warning("leader election: reading or writing the Lease failed: %s: %s", type(exc).__name__, exc)
            return False

    # --- the loop ------------------------------------------------------------------

    async def run(self) -> None:
        try:
            while self.state is State.CANDIDATE:
                if await self._attempt():
                    self.state, self._last_renew = State.LEADING, self._mono()
                    log.info("leader election: %s acquired the Lease; leading", self.identity)
                    self.acquired.set()
                    break
                await self._sleep(self.timings.retry_period)
            while self.state is State.LEADING:
                await self._sleep(self.timings.retry_period)
                if await self._attempt():
                    self._last_renew = self._mono()
                elif self._mono() - self._last_renew >= self.timings.renew_deadline:
                    self.state = State.LOST
                    log.error("leader election: %s could not renew the Lease for %gs: leadership lost",
                              self.identity, self.timings.renew_deadline)
                    self.lost.set()
        finally:
            if self.state is State.LEADING:  # cancelled while leading: hand it over now
                self.state = State.RELEASED
                await self.release()
            elif self.state is State.CANDIDATE:
                self.state = State.RELEASED

    async def release(self) -> None:
        """Hand the Lease back (holder empty, 1 s): the next candidate takes
        it on its next retry instead of waiting out the lease duration. Only
        called once nothing acts as leader any more."""
        try:
            record = await self._call(self.store.get)  # its current version: ours was written since
            if record is None or record.holder != self.identity:
                return
            now_wall = micro_time(self._wall())
            released = replace(record, holder="", duration_seconds=1, acquire_time=now_wall, renew_time=now_wall)
            if await self._call(self.store.update, released):
                log.info("leader election: %s released the Lease", self.identity)
            else:
                log.warning("leader election: the Lease changed while releasing it; it expires in %gs",
                            self.timings.lease_duration)
        except Exception as exc:  # noqa: BLE001 - the Lease then expires on its own
            log.warning("leader election: releasing the Lease failed (%s: %s); it expires in %gs",
                        type(exc).__name__, exc, self.timings.lease_duration)
