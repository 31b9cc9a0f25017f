"""The event-log interface extensions write to: ``log.info/warning/error(msg, **fields)``.

Inside ``podsup run`` that is ``arbiter.log`` (podsup.host.output.Log: one line per
event in the configured --log-format, thread-safe). Before an extension is
attached, or in unit tests, :class:`StdLog` renders the same calls to a
standard ``logging`` logger as ``msg key=value ...``.
"""
from __future__ import annotations

import logging
from typing import Any, Protocol


class EventLog(Protocol):
    def info(self, msg: str, **fields: Any) -> None: ...
    def warning(self, msg: str, **fields: Any) -> None: ...
    def error(self, msg: str, **fields: Any) -> None: ...


class StdLog:
    def __init__(self, name: str):
        self.logger = logging.getLogger(name)

    def _emit(self, level: int, msg: str, fields: dict[str, Any]) -> None:
        extra = "".join(f" {k}={v}" for k, v in fields.items() if v is not None)
        self.logger.log(level, "%s%s", msg, extra)

    def info(self, msg: str, **fields: Any) -> None:
        self._emit(logging.INFO, msg, fields)

    def warning(self, msg: str, **fields: Any) -> None:
        self._emit(logging.WARNING, msg, fields)

    def error(self, msg: str, **fields: Any) -> None:
        self._emit(logging.ERROR, msg, fields)
