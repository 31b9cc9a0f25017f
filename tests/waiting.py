"""Wait on a condition with a deadline instead of sleeping and hoping."""
from __future__ import annotations

import time
from typing import Any, Callable, TypeVar

T = TypeVar("T")


class Timeout(AssertionError):
    """The condition did not hold before the deadline."""


def wait_for(predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.02,
             message: str | Callable[[], str] = "condition") -> T:
    """Poll ``predicate`` until it returns a truthy value and return it.

    Raises :class:`Timeout` naming ``message`` (a string, or a callable that
    describes the last observed state) when ``timeout`` seconds pass first.
    Exceptions raised by ``predicate`` are retried until the deadline and then
    re-raised, so a flaky read of a starting server is not a failure.
    """
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
            last_exc = None
        except Exception as exc:  # noqa: BLE001 - retried until the deadline
            last_exc = exc
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            if last_exc is not None:
                raise Timeout(f"timed out after {timeout}s waiting for {text}: {last_exc!r}") from last_exc
            raise Timeout(f"timed out after {timeout}s waiting for {text}")
        time.sleep(interval)


async def stop_subprocess(proc: Any, grace: float = 30.0) -> None:
    """Stop an asyncio child still running: SIGTERM, then SIGKILL after ``grace`` seconds."""
    import asyncio

    if proc.returncode is not None:
        return
    proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), timeout=grace)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
