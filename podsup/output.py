"""Log lines: podsup's own events and its workers' output, in one format.

``--log-format text`` prefixes every worker line with its slot
(``[worker 3] ...``) and podsup's events with ``[podsup]``; ``json`` writes
one object per line (``source``, ``slot``, ``pid``, ``stream``, ``line`` for
workers; ``source``, ``level``, ``msg`` and fields for events), so a log
collector can split them. Worker stdout goes to podsup's stdout, worker
stderr and podsup's events to its stderr.

:class:`LinePump` turns a worker's pipe into whole lines without ever
blocking the master loop: it reads what is there, keeps the partial tail and
flushes it at EOF (or when it exceeds ``MAX_LINE``).
"""
from __future__ import annotations

import contextlib
import datetime
import json
import os
import sys
import threading
from typing import Any, BinaryIO, Callable, Iterator

MAX_LINE = 64 * 1024


def _timestamp() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _text_value(value: Any) -> str:
    text = str(value)
    return json.dumps(text) if (not text or any(c in text for c in ' "=')) else text


class Log:
    """Thread-safe writer shared by the loop and extensions (``arbiter.log``)."""

    def __init__(self, fmt: str = "text", out: BinaryIO | None = None, err: BinaryIO | None = None) -> None:
        self.format = fmt
        self.out = out if out is not None else sys.stdout.buffer
        self.err = err if err is not None else sys.stderr.buffer
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold every writer off (the master forks a --preload worker inside
        this, so no other thread is half-way through a stdio write whose lock
        the child would inherit held)."""
        with self._lock:
            yield

    # --- podsup's own events ------------------------------------------------
    def event(self, msg: str, level: str = "info", **fields: Any) -> None:
        if self.format == "json":
            record = {"ts": _timestamp(), "source": "podsup", "level": level, "msg": msg}
            record.update(fields)
            line = json.dumps(record, default=str)
        else:
            extra = "".join(f" {k}={_text_value(v)}" for k, v in fields.items() if v is not None)
            marker = "" if level == "info" else f"{level}: "
            line = f"[podsup] {marker}{msg}{extra}"
        self._write(self.err, line)

    def info(self, msg: str, **fields: Any) -> None:
        self.event(msg, "info", **fields)

    def warning(self, msg: str, **fields: Any) -> None:
        self.event(msg, "warning", **fields)

    def error(self, msg: str, **fields: Any) -> None:
        self.event(msg, "error", **fields)

    # --- worker output ------------------------------------------------------
    def worker_line(self, slot: int, pid: int, stream: str, data: bytes) -> None:
        text = data.decode("utf-8", "replace").rstrip("\r\n")
        if self.format == "json":
            line = json.dumps({"ts": _timestamp(), "source": "worker", "slot": slot, "pid": pid,
                               "stream": stream, "line": text})
        else:
            line = f"[worker {slot}] {text}"
        self._write(self.out if stream == "stdout" else self.err, line)

    def _write(self, target: BinaryIO, line: str) -> None:
        data = (line + "\n").encode("utf-8", "replace")
        with self._lock:
            try:
                target.write(data)
                target.flush()
            except (BrokenPipeError, ValueError):
                pass  # nobody reads our output any more: keep supervising


class LinePump:
    """Non-blocking reader of one worker pipe that emits whole lines."""

    def __init__(self, fd: int, emit: Callable[[bytes], None]) -> None:
        self.fd = fd
        self.emit = emit
        self.buffer = b""
        os.set_blocking(fd, False)

    def read(self) -> bool:
        """Consume what is readable; False at EOF (then the caller closes)."""
        try:
            chunk = os.read(self.fd, 65536)
        except BlockingIOError:
            return True
        except OSError:
            chunk = b""
        if not chunk:
            self.flush()
            return False
        self.buffer += chunk
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            self.emit(line)
        while len(self.buffer) >= MAX_LINE:  # a line without end: cut it, never hoard
            self.emit(self.buffer[:MAX_LINE])
            self.buffer = self.buffer[MAX_LINE:]
        return True

    def flush(self) -> None:
        if self.buffer:
            data, self.buffer = self.buffer, b""
            self.emit(data)
