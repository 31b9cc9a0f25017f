"""The Lease elector (leader_election) against a fake LeaseStore (our seam:
a dict world with the API server's optimistic concurrency) and a fake clock:
acquire, wait while held, take over after the lease duration as seen on our
own clock, renew, lose after the renew deadline, release on stop, and the
flags' rules."""
from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from podsup_operator.leader_election import Elector, LeaseRecord, State, Timings, check_timings


class Store:
    """One Lease; a write at a stale resourceVersion is refused (409 -> False)."""

    def __init__(self):
        self.lease: LeaseRecord | None = None
        self.version = 0
        self.fail: Exception | None = None
        self.writes = 0

    def get(self):
        if self.fail:
            raise self.fail
        return self.lease

    def create(self, record):
        if self.fail:
            raise self.fail
        if self.lease is not None:
            return False
        return self._store(record)

    def update(self, record):
        if self.fail:
            raise self.fail
        if self.lease is None or record.resource_version != self.lease.resource_version:
            return False
        return self._store(record)

    def _store(self, record):
        self.version += 1
        self.writes += 1
        self.lease = replace(record, resource_version=str(self.version))
        return True


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


async def direct(fn, *args):
    return fn(*args)


def elector(store, name, clock, timings=Timings()):
    async def no_sleep(_):
        await asyncio.sleep(0)
    return Elector(store, name, timings, monotonic=clock, wall=lambda: 1_800_000_000.0 + clock.t,
                   sleep=no_sleep, call=direct)


async def test_first_candidate_creates_the_lease_the_second_waits_until_it_expires():
    store, clock = Store(), Clock()
    a, b = elector(store, "a", clock), elector(store, "b", clock)
    assert await a.try_acquire_or_renew()
    assert store.lease.holder == "a" and store.lease.duration_seconds == 15
    assert not await b.try_acquire_or_renew()
    clock.t += 14
    assert not await b.try_acquire_or_renew()  # not yet: 15 s since b saw the record change
    clock.t += 2
    assert await b.try_acquire_or_renew()
    assert store.lease.holder == "b" and store.lease.transitions == 1


async def test_a_renewing_leader_is_never_taken_over():
    store, clock = Store(), Clock()
    a, b = elector(store, "a", clock), elector(store, "b", clock)
    await a.try_acquire_or_renew()
    for _ in range(20):
        clock.t += 2
        assert await a.try_acquire_or_renew()
        assert not await b.try_acquire_or_renew()
    assert store.lease.holder == "a" and store.lease.transitions == 0


async def test_a_racing_write_loses_on_the_resource_version():
    store, clock = Store(), Clock()
    a, b = elector(store, "a", clock), elector(store, "b", clock)
    store.lease = LeaseRecord("", 1, None, None, 0, "0")  # released: both may take it
    real_get = store.get
    seen = real_get()
    store.get = lambda: seen  # both read the same version
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()  # its write carries the old version: 409
    assert store.lease.holder == "a"


async def test_leader_that_cannot_renew_loses_after_the_renew_deadline_and_only_then():
    store, clock = Store(), Clock()
    a = elector(store, "a", clock)
    task = asyncio.create_task(a.run())
    await asyncio.wait_for(a.acquired.wait(), 5)
    store.fail = ConnectionRefusedError("the API server is gone")  # not an ApiException: counts as a failure
    for _ in range(4):
        clock.t += 2
        for _ in range(5):
            await asyncio.sleep(0)
    assert a.state is State.LEADING and a.leading  # 8 s < 10 s
    clock.t += 3
    await asyncio.wait_for(a.lost.wait(), 5)
    assert a.state is State.LOST and not a.leading
    await asyncio.wait_for(task, 5)


async def test_stopping_a_leader_releases_the_lease_for_the_next_at_once():
    store, clock = Store(), Clock()
    a, b = elector(store, "a", clock), elector(store, "b", clock)
    task = asyncio.create_task(a.run())
    await asyncio.wait_for(a.acquired.wait(), 5)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert store.lease.holder == "" and store.lease.duration_seconds == 1
    assert a.state is State.RELEASED and not a.leading
    assert await b.try_acquire_or_renew()  # no wait for the lease duration


async def test_stopping_a_candidate_writes_nothing():
    store, clock = Store(), Clock()
    holder = elector(store, "a", clock)
    await holder.try_acquire_or_renew()
    writes = store.writes
    b = elector(store, "b", clock)
    task = asyncio.create_task(b.run())
    for _ in range(10):
        await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert store.writes == writes and store.lease.holder == "a" and b.state is State.RELEASED


@pytest.mark.parametrize("timings,message", [
    (Timings(10, 10, 2), "--leader-elect-lease-duration (10s) must be longer than --leader-elect-renew-deadline"),
    (Timings(15, 2, 2), "must be longer than 1.2 x --leader-elect-retry-period"),
    (Timings(15, 10, 0), "--leader-elect-retry-period must be more than 0"),
])
def test_timings_follow_client_go_rules(timings, message):
    assert message in check_timings(timings)
    assert check_timings(Timings()) is None
