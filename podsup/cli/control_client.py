"""One request/response round trip over the control socket.

Every failure becomes a :class:`ControlError` whose message is one line naming
the socket path, which the CLI prints as is.
"""
from __future__ import annotations

import errno
import os
import socket
import stat
import time
from typing import Any

from podsup.host import framing


class ControlError(Exception):
    """podsup could not be reached, or refused the request."""


class PodsupGone(ControlError):
    """No podsup listens on the socket (no such file, or connection refused):
    unlike a time-out or a busy refusal, this says podsup has exited."""


def _connect(sock: socket.socket, path: str, timeout: float) -> None:
    """connect(), retried while podsup's listen backlog is full: a Unix socket
    answers that with EAGAIN at once instead of waiting, which is a busy
    podsup, not an absent one. Gives up (socket.timeout) after ``timeout``."""
    deadline = time.monotonic() + timeout
    pause = 0.005
    while True:
        try:
            sock.connect(path)
            return
        except BlockingIOError:
            if time.monotonic() + pause > deadline:
                raise socket.timeout("connect: podsup's backlog stayed full") from None
            time.sleep(pause)  # a back-off between connect attempts, bounded by the deadline
            pause = min(pause * 2, 0.2)


def _not_a_socket(path: str) -> str | None:
    """What ``path`` is, if it exists and is not a socket (connect() says
    "connection refused" for a regular file or a directory too)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISSOCK(mode):
        return None
    return "a directory" if stat.S_ISDIR(mode) else "a regular file" if stat.S_ISREG(mode) else "a special file"


def request(path: str, message: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
    """Send ``message``, return the ``result`` of an ``ok`` answer."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            _connect(sock, path, timeout)
        except FileNotFoundError:
            raise PodsupGone(f"control socket {path}: no such file (is podsup running with --control {path}?)") from None
        except ConnectionRefusedError:
            what = _not_a_socket(path)
            if what is not None:
                raise ControlError(f"control socket {path}: not a socket but {what} (is --control right?)") from None
            raise PodsupGone(f"control socket {path}: connection refused (podsup is not running)") from None
        except OSError as exc:
            if exc.errno == errno.EPROTOTYPE:  # a datagram socket: some other program's
                raise ControlError(f"control socket {path}: something else is listening there, not podsup "
                                   f"({exc.strerror})") from None
            raise ControlError(f"control socket {path}: {exc.strerror or exc}") from None
        try:
            try:
                framing.send_message(sock, message)
            except (BrokenPipeError, ConnectionResetError) as exc:
                # podsup may have answered and closed before reading the request
                # (it refuses connections beyond its limit that way): read the answer
                try:
                    response = framing.recv_message(sock)
                except (OSError, framing.FramingError):
                    raise exc from None
            else:
                response = framing.recv_message(sock)
        except socket.timeout:
            raise ControlError(f"control socket {path}: no answer within {timeout:g}s") from None
        except framing.FramingError as exc:
            # podsup always answers one well-formed frame (an error frame when busy)
            raise ControlError(f"control socket {path}: not podsup's answer ({exc}); "
                               f"is something else listening there?") from None
        except OSError as exc:
            raise ControlError(f"control socket {path}: {exc}") from None
    finally:
        sock.close()
    if not response.get("ok"):
        raise ControlError(str(response.get("error", "request refused")))
    result = response.get("result")
    return result if isinstance(result, dict) else {}
