"""The worker report protocol: one line per datagram, parsed by a pure function.

``heartbeat``, ``busy``, ``idle``, ``done <seconds>`` (``done`` alone is
accepted: duration unknown) or ``queue <name> <depth>``. Shared by the loop
(podsup.loop.intake), the sockets that carry it (podsup.host.reports) and the
worker-side helper (podsup.client).
"""
from __future__ import annotations

import dataclasses
import math

KINDS = ("heartbeat", "busy", "idle", "done", "queue")
#: A reported queue name becomes a label value: printable, at most this long.
MAX_QUEUE_NAME = 200


class MalformedReport(ValueError):
    """Not one of the report lines of the protocol."""


@dataclasses.dataclass(frozen=True)
class Report:
    kind: str                       #: one of KINDS
    seconds: float | None = None    #: ``done``: the request's duration
    queue: str | None = None        #: ``queue``: the queue's name
    depth: float | None = None      #: ``queue``: its backlog


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise MalformedReport(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise MalformedReport(f"not a number >= 0: {text!r}")
    return value


def is_queue_name(name: str) -> bool:
    """A queue name becomes a label value of podsup_queue_depth (reported by a
    worker or named by --queue): printable UTF-8, at most MAX_QUEUE_NAME long."""
    if len(name) > MAX_QUEUE_NAME or not name.isprintable():
        return False
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: a non-UTF-8 byte in the command line
        return False
    return True


#: The argument-less reports as workers send them (half of a busy pool's
#: datagrams): one shared, frozen Report each, no parsing.
_PLAIN = {kind.encode(): Report(kind) for kind in ("heartbeat", "busy", "idle")}


def parse_report(data: bytes) -> Report:
    """One datagram -> a :class:`Report`, or :class:`MalformedReport`."""
    plain = _PLAIN.get(data)
    if plain is not None:
        return plain
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedReport("not UTF-8") from None
    parts = text.strip().split()
    if not parts or parts[0] not in KINDS:
        raise MalformedReport(f"unknown report {text[:40]!r}")
    kind, args = parts[0], parts[1:]
    if kind in ("heartbeat", "busy", "idle") and not args:
        return Report(kind)
    if kind == "done" and len(args) <= 1:
        return Report(kind, seconds=_number(args[0]) if args else None)
    if kind == "queue" and len(args) == 2:
        name = args[0]
        if not is_queue_name(name):
            raise MalformedReport(f"queue name not printable or over {MAX_QUEUE_NAME} characters")
        return Report(kind, queue=name, depth=_number(args[1]))
    raise MalformedReport(f"bad arguments for {kind!r}: {text[:40]!r}")
