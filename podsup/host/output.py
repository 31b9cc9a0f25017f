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

Writing must not block the loop either: a slow or stopped reader of podsup's
stdout (a wedged log shipper, a full pipe) would otherwise freeze reaping,
respawns and the graceful-timeout SIGKILL. With ``background=True`` (what
the arbiter uses) lines go to a bounded queue that one writer thread drains,
many lines per write; when the queue is full, lines are dropped and counted,
and a warning says how many once output flows again.
"""
from __future__ import annotations

import contextlib
import json
import os
import queue
import sys
import threading
import time
from typing import Any, BinaryIO, Callable, Iterator

MAX_LINE = 64 * 1024
#: Lines waiting for the writer thread before new ones are dropped.
MAX_PENDING = 20000
#: Lines the writer joins into one write.
WRITE_BATCH = 512
#: How long close() waits for pending lines to be written.
CLOSE_TIMEOUT = 5.0


def _timestamp() -> str:
    """UTC, ISO 8601 with milliseconds (``2026-01-02T03:04:05.678Z``); time, not
    datetime, whose import costs every pod ~0.4 MB."""
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


def _text_value(value: Any) -> str:
    text = str(value)
    return json.dumps(text) if (not text or any(c in text for c in ' "=')) else text


class Log:
    """Thread-safe writer shared by the loop and extensions (``arbiter.log``)."""

    def __init__(self, fmt: str = "text", out: BinaryIO | None = None, err: BinaryIO | None = None,
                 background: bool = False) -> None:
        self.format = fmt
        self.out = out if out is not None else sys.stdout.buffer
        self.err = err if err is not None else sys.stderr.buffer
        self._lock = threading.Lock()
        self.dropped = 0  #: lines dropped because output was blocked (background mode)
        self._pending: queue.Queue[tuple[BinaryIO, bytes] | None] | None = None
        self._writer: threading.Thread | None = None
        #: lines the holding thread wrote inside held(), handed over at its end
        self._held: list[tuple[BinaryIO, bytes]] | None = None
        self._holder: int | None = None
        if background:
            self._pending = queue.Queue(MAX_PENDING)
            self._writer = threading.Thread(target=self._drain, name="podsup-log", daemon=True)
            self._writer.start()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold every writer off (the master forks a --preload worker inside
        this, so no other thread is half-way through a stdio write whose lock
        the child would inherit held)."""
        with self._lock:
            yield

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Lines this thread writes inside are handed to the writer thread at
        the end, in order (background mode; a no-op otherwise). The master
        loop holds its lines for one iteration: waking the writer mid-way
        would hand it the GIL in the middle of a respawn (issue 13: the
        crash -> replacement path waited for the writer inside bind())."""
        if self._pending is None or self._holder is not None:
            yield
            return
        self._held, self._holder = [], threading.get_ident()
        try:
            yield
        finally:
            held, self._held, self._holder = self._held, None, None
            for item in held:
                self._enqueue(item)

    # --- podsup's own events ------------------------------------------------
    def event(self, msg: str, level: str = "info", **fields: Any) -> None:
        self._write(self.err, self._event_line(msg, level, fields))

    def _event_line(self, msg: str, level: str, fields: dict[str, Any]) -> str:
        if self.format == "json":
            record = {"ts": _timestamp(), "source": "podsup", "level": level, "msg": msg}
            record.update(fields)
            return json.dumps(record, default=str)
        extra = "".join(f" {k}={_text_value(v)}" for k, v in fields.items() if v is not None)
        marker = "" if level == "info" else f"{level}: "
        return f"[podsup] {marker}{msg}{extra}"

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
        if self._pending is None:
            with self._lock:
                self._emit(target, data)
            return
        if self._holder is not None and self._holder == threading.get_ident() and self._held is not None:
            self._held.append((target, data))
            return
        self._enqueue((target, data))

    def _enqueue(self, item: tuple[BinaryIO, bytes]) -> None:
        assert self._pending is not None
        try:
            self._pending.put_nowait(item)
        except queue.Full:
            self.dropped += 1  # output is blocked: lose a line, never the loop

    def _emit(self, target: BinaryIO, data: bytes) -> None:
        try:
            target.write(data)
            target.flush()
        except (BrokenPipeError, ValueError):
            pass  # nobody reads our output any more: keep supervising

    def _emit_raw(self, target: BinaryIO, data: bytes) -> None:
        """The writer thread's write: straight to the file descriptor, so it
        holds no Python stream lock a --preload fork could inherit, and a
        blocked reader stalls only this thread (never ``exclusive()``)."""
        try:
            fd = target.fileno()
        except (AttributeError, OSError, ValueError):  # an in-memory stream (tests)
            with self._lock:
                self._emit(target, data)
            return
        view = memoryview(data)
        while view:
            try:
                written = os.write(fd, view)
            except InterruptedError:
                continue
            except OSError:
                return  # nobody reads our output any more: keep supervising
            view = view[written:]

    def _drain(self) -> None:
        """The writer thread: batches of lines, one write per target each."""
        assert self._pending is not None
        reported = 0
        while True:
            item = self._pending.get()
            batch = [item]
            while item is not None and len(batch) < WRITE_BATCH:
                try:
                    item = self._pending.get_nowait()
                except queue.Empty:
                    break
                batch.append(item)
            for target, chunk in _join(b for b in batch if b is not None):
                self._emit_raw(target, chunk)
            if self.dropped != reported:
                lost, reported = self.dropped - reported, self.dropped
                self._emit_raw(self.err, (self._event_line(
                    "output lines dropped: podsup's stdout/stderr was not being read", "warning",
                    {"lines": lost}) + "\n").encode())
            if batch[-1] is None:
                return

    def close(self) -> None:
        """Write what is pending (at most CLOSE_TIMEOUT) and stop the writer."""
        if self._pending is None or self._writer is None:
            return
        writer, self._writer = self._writer, None
        try:
            self._pending.put(None, timeout=CLOSE_TIMEOUT)
        except queue.Full:
            return
        writer.join(CLOSE_TIMEOUT)


def _join(items) -> Iterator[tuple[BinaryIO, bytes]]:
    """Consecutive lines for the same target joined (order kept across targets)."""
    target, chunks = None, []
    for t, data in items:
        if t is not target and chunks:
            yield target, b"".join(chunks)
            chunks = []
        target = t
        chunks.append(data)
    if chunks:
        yield target, b"".join(chunks)


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
