"""May this user do this: a SubjectAccessReview per request, cached briefly.

The aggregator authorizes the *proxying*, not what our API returns, so the
metrics server must ask the cluster itself (like every aggregated apiserver's
delegated authorizer). Answers are cached for a few seconds keyed by the full
user identity and the request attributes: the HPA controller asks the same
question every sync for every pool, and a SAR per query would double the
latency. Denials are cached shorter than grants so a fixed RoleBinding takes
effect quickly.
"""
from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Awaitable, Callable

from .auth import User
from .paths import RequestInfo


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""


#: The SAR seam: (user, spec attributes) → Decision.
AccessReviewer = Callable[[User, dict], Awaitable[Decision]]


class Authorizer:
    def __init__(self, review: AccessReviewer, allowed_ttl: float = 10.0, denied_ttl: float = 2.0,
                 clock: Callable[[], float] = time.monotonic, max_entries: int = 10000):
        self._review = review
        self._allowed_ttl = allowed_ttl
        self._denied_ttl = denied_ttl
        self._clock = clock
        self._max = max_entries
        self._cache: dict[tuple, tuple[float, Decision]] = {}
        self._inflight: dict[tuple, asyncio.Future] = {}
        self.reviews = 0  # how many SARs were sent (observability, tests)

    async def authorize(self, user: User, info: RequestInfo) -> Decision:
        attrs = info.sar_attributes()
        key = (user.cache_key(), json.dumps(attrs, sort_keys=True))
        now = self._clock()
        cached = self._cache.get(key)
        if cached and cached[0] > now:
            return cached[1]
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        fut = asyncio.get_running_loop().create_future()
        self._inflight[key] = fut
        try:
            self.reviews += 1
            decision = await self._review(user, attrs)
            ttl = self._allowed_ttl if decision.allowed else self._denied_ttl
            if len(self._cache) >= self._max:
                self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
            self._cache[key] = (self._clock() + ttl, decision)
            fut.set_result(decision)
            return decision
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        finally:
            del self._inflight[key]
