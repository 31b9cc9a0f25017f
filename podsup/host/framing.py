"""Wire format of the control socket.

Every message, in both directions, is one frame: a 4-byte big-endian unsigned
length followed by that many bytes of UTF-8 JSON encoding one object.

Requests:  ``{"command": "status"}``
           ``{"command": "scale", "value": "3" | "+2" | "-1"}``
           ``{"command": "reload"}``
           ``{"command": "drain"}``
Responses: ``{"ok": true, "result": {...}}`` or ``{"ok": false, "error": "one line"}``

A length prefix (rather than newline-delimited JSON) lets a reader know when a
message is complete without scanning, and bounds memory: frames larger than
:data:`MAX_FRAME` are refused before anything is allocated.
"""
from __future__ import annotations

import json
import socket
import struct
import time
from typing import Any

HEADER = struct.Struct(">I")
#: Largest frame either side accepts (a status of thousands of workers fits).
MAX_FRAME = 16 * 1024 * 1024


class FramingError(Exception):
    """The peer sent something that is not a valid frame."""


def encode(message: dict[str, Any]) -> bytes:
    """One frame holding ``message``."""
    body = json.dumps(message, separators=(",", ":")).encode("utf-8")
    if len(body) > MAX_FRAME:
        raise FramingError(f"message of {len(body)} bytes exceeds {MAX_FRAME}")
    return HEADER.pack(len(body)) + body


def decode_body(body: bytes) -> dict[str, Any]:
    """Parse a frame's body; anything but a JSON object is a FramingError.

    Whatever the JSON decoder raises on hostile input is a FramingError too:
    ``ValueError`` (bad UTF-8, bad JSON, an integer of too many digits) and
    ``RecursionError`` (``[[[[...]]]]`` nested deeper than the interpreter's
    stack allows), so a reader answers with one line instead of dying.
    """
    try:
        message = json.loads(body.decode("utf-8"))
    except RecursionError:
        raise FramingError("frame is not UTF-8 JSON: nested too deeply") from None
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        detail = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise FramingError(f"frame is not UTF-8 JSON: {detail}") from None
    if not isinstance(message, dict):
        raise FramingError("frame is not a JSON object")
    return message


def _recv_exact(sock: socket.socket, size: int, deadline: float | None = None) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("timed out")
            sock.settimeout(remaining)
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise FramingError("connection closed mid-frame" if chunks else "connection closed")
        chunks += chunk
    return bytes(chunks)


def send_message(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.sendall(encode(message))


def recv_message(sock: socket.socket, max_size: int = MAX_FRAME,
                 deadline: float | None = None) -> dict[str, Any]:
    """Read one frame; FramingError on EOF, oversize or bad JSON.

    ``max_size`` lowers the size limit (a server expects small requests);
    ``deadline`` (a ``time.monotonic()`` value) bounds the whole read, not
    each ``recv``: a peer trickling a byte at a time cannot hold the reader
    (``TimeoutError`` when it passes; the socket's timeout is changed).
    """
    (size,) = HEADER.unpack(_recv_exact(sock, HEADER.size, deadline))
    if size > max_size:
        raise FramingError(f"frame of {size} bytes exceeds {max_size}")
    return decode_body(_recv_exact(sock, size, deadline))
