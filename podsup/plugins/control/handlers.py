"""What each control command does.

Handlers never act on workers themselves: like the signal handlers, they turn a
request into a command object (podsup.core.commands) and hand it to the master loop
with ``Arbiter.submit``; the loop forks and kills. ``status`` only reads
``Arbiter.snapshot()``.

The arbiter is anything with ``submit(command) -> Future`` and
``snapshot() -> PoolSnapshot``, so handlers are unit-tested against a fake.
"""
from __future__ import annotations

import concurrent.futures
import re
import threading
from typing import Any, Callable, Mapping, Protocol

from podsup.core.commands import Drain, Reload, Scale
from podsup.core.config import MAX_WORKERS
from podsup.core.snapshot import PoolSnapshot

#: How long a handler waits for the loop to accept a command.
SUBMIT_TIMEOUT = 15.0

# ``scale`` sets at most MAX_WORKERS (absolute, or after a +K/-K), the bound
# --workers and TTIN share: forking is done by the master loop, so a huge
# target would stall it (health, status) for as long as the forks take.

# ASCII digits only: \d (and int()) also take "٣" or "１２".
_SCALE_RE = re.compile(r"([+-]?)([0-9]+)", re.ASCII)


class ArbiterLike(Protocol):
    def submit(self, command: Any) -> concurrent.futures.Future: ...
    def snapshot(self) -> PoolSnapshot: ...


class CommandError(Exception):
    """A request the handlers refuse. The message is one line without the
    command's name: :meth:`Handlers.handle` replies ``"<command>: <message>"``,
    and ``podsup scale`` prints it after its own ``podsup scale:`` prefix."""


#: The forms ``scale`` takes, named in every refusal of a malformed value.
SCALE_FORMS = "N (set the count), +K (add K) or -K (remove K), in ASCII digits"


def _range_error(what: str) -> CommandError:
    return CommandError(f"{what}; allowed: 0..{MAX_WORKERS} workers")


def parse_scale(value: Any) -> Scale:
    """``"3"`` → absolute 3, ``"+2"`` → delta +2, ``"-1"`` → delta -1.

    N and K are ASCII digits and at most :data:`MAX_WORKERS`; whether a +K
    lands within it is checked against the pool by :meth:`Handlers.scale`.
    """
    text = str(value).strip() if value is not None else ""
    shown = text if len(text) <= 20 else text[:17] + "..."
    match = _SCALE_RE.fullmatch(text)
    if not match:
        raise CommandError(f"value must be {SCALE_FORMS} (got {shown!r})")
    sign, digits = match.groups()
    significant = digits.lstrip("0") or "0"
    # compare lengths first: int() of thousands of digits is slow, then refused
    if len(significant) > len(str(MAX_WORKERS)) or int(significant) > MAX_WORKERS:
        raise _range_error(f"{shown} is out of range")
    number = int(significant)
    if sign == "+":
        return Scale(delta=number)
    if sign == "-":
        return Scale(delta=-number)
    return Scale(absolute=number)


class Handlers:
    """Dispatch of framed requests to the arbiter.

    ``on_drain`` runs before the Drain command is submitted, so readiness goes
    off at once, not at the loop's next turn. ``drain_budget`` (drain delay +
    graceful timeout) is returned to ``drain --wait`` clients as their deadline.
    """

    def __init__(self, arbiter: ArbiterLike, on_drain: Callable[[], None] | None = None,
                 drain_budget: float = 60.0, submit_timeout: float = SUBMIT_TIMEOUT,
                 probed_queues: Callable[[], Mapping[str, tuple[float | None, bool | None]]] | None = None):
        self.arbiter = arbiter
        #: the --queue probe's readings (name -> (depth or None, broker up)), shown beside reported depths
        self.probed_queues = probed_queues
        self.on_drain = on_drain
        self.drain_budget = drain_budget
        self.submit_timeout = submit_timeout
        # one scale at a time: a +K is checked against the count it applies to
        self._scale_lock = threading.Lock()
        self._table: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "status": self.status,
            "scale": self.scale,
            "reload": self.reload,
            "drain": self.drain,
        }

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        """Answer one request; never raises (errors become ``ok: false``)."""
        name = request.get("command")
        handler = self._table.get(name) if isinstance(name, str) else None
        if handler is None:
            allowed = ", ".join(sorted(self._table))
            return {"ok": False, "error": f"command: unknown {name!r}; allowed: {allowed}"}
        try:
            return {"ok": True, "result": handler(request)}
        except CommandError as exc:
            return {"ok": False, "error": f"{name}: {exc}"}
        except concurrent.futures.TimeoutError:
            return {"ok": False, "error": f"{name}: the master loop did not answer within {self.submit_timeout:g}s"}
        except Exception as exc:  # noqa: BLE001 - the loop refused the command
            return {"ok": False, "error": f"{name}: {exc}"}

    def _submit(self, command: Any) -> dict[str, Any]:
        result = self.arbiter.submit(command).result(timeout=self.submit_timeout)
        return dict(result) if isinstance(result, dict) else {"result": result}

    def status(self, request: dict[str, Any]) -> dict[str, Any]:
        status = self.arbiter.snapshot().to_json()
        if self.probed_queues is not None:
            from podsup.plugins.metrics import merge_queues  # server side only: the CLI never needs it

            # the broker wins over a worker's report, as on /metrics; a broker that
            # does not answer shows no depth rather than a stale one
            merged = merge_queues(status.get("queues") or {}, self.probed_queues())
            status["queues"] = {name: depth for name, (depth, _up) in merged.items() if depth is not None}
        return status

    def scale(self, request: dict[str, Any]) -> dict[str, Any]:
        command = parse_scale(request.get("value"))
        with self._scale_lock:
            if command.absolute is None and command.delta > 0:
                target = self.arbiter.snapshot().desired + command.delta
                if target > MAX_WORKERS:
                    raise _range_error(f"+{command.delta} would make {target} workers")
            return self._submit(command)

    def reload(self, request: dict[str, Any]) -> dict[str, Any]:
        return self._submit(Reload())

    def drain(self, request: dict[str, Any]) -> dict[str, Any]:
        if self.on_drain is not None:
            self.on_drain()
        if self.arbiter.snapshot().draining:
            # already draining (SIGTERM came first): a preStop hook should
            # still wait for the workers, not fail
            return {"draining": True, "already": True, "budget": self.drain_budget}
        result = self._submit(Drain())
        if "drain_delay" in result and "graceful_timeout" in result:
            result["budget"] = float(result["drain_delay"]) + float(result["graceful_timeout"])
        result.setdefault("budget", self.drain_budget)
        return result
