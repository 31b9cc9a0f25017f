"""A small HTTP/1.1 server on one selector thread: what /metrics, /healthz and /readyz need, no more.

Why not http.server: importing it (with socketserver, email, http.client)
costs the supervisor ~7 MB of RSS in every pod (issue 13's profile), and its
threading server starts a thread per connection. podsup answers a handful of
GET/HEAD paths to Prometheus, the kubelet and load balancers, so one thread
with a selector serves them all, one request at a time (a scrape renders in
about a millisecond, a probe in microseconds), and never runs in the master
loop.

What it keeps of the old server's behaviour (tests/unit/plugins/test_http.py):
a client has ``request_timeout`` seconds from its connection being accepted to
send its request head (idle and trickling connections are dropped), and as
long again to take the response; at most ``max_connections`` are open at once
and one more is answered 503 and closed by the accepting code at once. HEAD
is answered like GET without the body (its Content-Length is the GET's).
Connections are kept alive between requests (HTTP/1.1, or 1.0 with
``Connection: keep-alive``), idle at most ``request_timeout`` seconds, so a
Prometheus scraping every 15 s opens one connection, not one per scrape. A
request with a body (which no endpoint reads) is answered, then the connection
closed. Anything but GET and HEAD is 501, a malformed request 400, a head over
:data:`MAX_HEAD` bytes 431.
"""
from __future__ import annotations

import logging
import os
import selectors
import socket
import threading
import time
from typing import Callable, NamedTuple

log = logging.getLogger("podsup.http")

#: Bytes a request head (request line and headers) may take.
MAX_HEAD = 16384
#: Listen backlog.
BACKLOG = 64
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 431: "Request Header Fields Too Large",
           500: "Internal Server Error", 501: "Not Implemented", 503: "Service Unavailable"}
#: What a connection beyond max_connections is sent before it is closed.
BUSY = (b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Length: 21\r\nConnection: close\r\n\r\ntoo many connections\n")
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class Request(NamedTuple):
    method: str
    path: str
    query: str
    headers: dict[str, str]  #: names in lower case


#: (status, headers, body) of an answer; the server adds Content-Length, Date and Connection.
Answer = tuple[int, list[tuple[str, str]], bytes]


def http_date(now: float) -> str:
    t = time.gmtime(now)
    return f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} " \
           f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"


def parse_head(head: bytes) -> tuple[Request, str, bool] | int:
    """(request, HTTP version, whether a body follows) of a request head, or the error status."""
    try:
        lines = head.decode("latin-1").split("\n")
        parts = lines[0].strip().split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            return 400
        method, target, version = parts
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.strip().partition(":")
            if not sep or not name or name != name.strip():
                return 400
            name = name.lower()
            headers[name] = f"{headers[name]}, {value.strip()}" if name in headers else value.strip()
    except UnicodeError:  # pragma: no cover - latin-1 decodes any byte
        return 400
    path, _, query = target.partition("?")
    body = headers.get("content-length", "0").strip() not in ("", "0") or "transfer-encoding" in headers
    return Request(method, path, query, headers), version, body


def keep_alive(version: str, headers: dict[str, str]) -> bool:
    tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    if version == "HTTP/1.1":
        return "close" not in tokens
    return version == "HTTP/1.0" and "keep-alive" in tokens


def response(status: int, headers: list[tuple[str, str]], body: bytes, send_body: bool, keep: bool,
             now: float) -> bytes:
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}"]
    lines += [f"{name}: {value}" for name, value in headers]
    lines += [f"Content-Length: {len(body)}", f"Date: {http_date(now)}"]
    if not keep:
        lines.append("Connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + body if send_body else head


def _text(status: int, text: str) -> Answer:
    return status, [("Content-Type", "text/plain; charset=utf-8")], text.encode()


class _Connection:
    __slots__ = ("sock", "inbuf", "out", "deadline", "keep")

    def __init__(self, sock: socket.socket, deadline: float):
        self.sock, self.deadline = sock, deadline
        self.inbuf = bytearray()
        self.out: memoryview | None = None
        self.keep = True


class Server:
    """Binds at construction (a taken port fails at once); serves from ``start`` on a daemon thread."""

    def __init__(self, address: tuple[str, int], handler: Callable[[Request], Answer],
                 request_timeout: float, max_connections: int, name: str = "podsup-http"):
        host, port = address
        self.handler, self.timeout, self.max_connections = handler, request_timeout, max_connections
        self._sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._sock.bind((host, port))
            self._sock.listen(BACKLOG)
            self._sock.setblocking(False)
        except BaseException:
            self._sock.close()
            raise
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._stopping = False
        self._conns: dict[int, _Connection] = {}
        self._selector = selectors.DefaultSelector()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)

    @property
    def port(self) -> int:
        return self._sock.getsockname()[1]

    @property
    def connections(self) -> int:
        return len(self._conns)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stopping = True
        if self._thread.is_alive():
            try:
                os.write(self._wake_w, b"\0")
            except OSError:
                pass
            self._thread.join(timeout=5)
        for conn in list(self._conns.values()):
            self._drop(conn)
        self._selector.close()
        self._sock.close()
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass

    # ------------------------------------------------------------ the thread
    def _serve(self) -> None:
        self._selector.register(self._sock, selectors.EVENT_READ, None)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        while not self._stopping:
            now = time.monotonic()
            deadline = min((c.deadline for c in self._conns.values()), default=None)
            events = self._selector.select(None if deadline is None else max(0.0, deadline - now))
            for key, mask in events:
                if key.data is not None:
                    try:
                        self._ready(key.data, mask)
                    except Exception:  # noqa: BLE001 - one connection's surprise must not end the server
                        log.exception("http: connection failed")
                        self._drop(key.data)
                elif key.fileobj is self._sock:
                    self._accept()
                else:
                    try:
                        os.read(self._wake_r, 64)
                    except OSError:
                        pass
            now = time.monotonic()
            for conn in [c for c in self._conns.values() if c.deadline <= now]:
                self._drop(conn)  # an idle, trickling or unread client

    def _accept(self) -> None:
        for _ in range(BACKLOG):
            try:
                sock, _addr = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. EMFILE: try again at the next wake-up
                log.debug("accept: %s", exc)
                return
            sock.setblocking(False)
            if len(self._conns) >= self.max_connections:
                try:
                    sock.send(BUSY)  # the accepting code never waits on a client
                except OSError:
                    pass
                sock.close()
                continue
            conn = _Connection(sock, time.monotonic() + self.timeout)
            self._conns[sock.fileno()] = conn
            self._selector.register(sock, selectors.EVENT_READ, conn)

    def _drop(self, conn: _Connection) -> None:
        if self._conns.pop(conn.sock.fileno(), None) is not None:
            try:
                self._selector.unregister(conn.sock)
            except (KeyError, ValueError):
                pass
        conn.sock.close()

    def _ready(self, conn: _Connection, mask: int) -> None:
        if mask & selectors.EVENT_WRITE:
            self._write(conn)
            return
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(conn)
            return
        if not data:
            self._drop(conn)
            return
        conn.inbuf += data
        self._process(conn)

    def _process(self, conn: _Connection) -> None:
        """Answer the request in ``conn``'s buffer, if its head is complete."""
        if conn.out is not None:
            return
        end, sep = conn.inbuf.find(b"\r\n\r\n"), 4
        bare = conn.inbuf.find(b"\n\n")
        if bare >= 0 and (end < 0 or bare < end):
            end, sep = bare, 2
        if end < 0:
            if len(conn.inbuf) > MAX_HEAD:
                self._answer(conn, _text(431, "request head too large\n"), True, False)
            return
        head = bytes(conn.inbuf[:end]).replace(b"\r\n", b"\n")
        del conn.inbuf[:end + sep]
        parsed = parse_head(head)
        if isinstance(parsed, int):
            self._answer(conn, _text(parsed, "bad request\n"), True, False)
            return
        request, version, body = parsed
        keep = keep_alive(version, request.headers) and not body
        if request.method not in ("GET", "HEAD"):
            self._answer(conn, _text(501, f"unsupported method {request.method!r}\n"), True, False)
            return
        try:
            answer = self.handler(request)
        except Exception:  # noqa: BLE001 - a failing handler must not kill the server
            log.exception("http: %s %s failed", request.method, request.path)
            answer = _text(500, "internal error\n")
        self._answer(conn, answer, request.method != "HEAD", keep)

    def _answer(self, conn: _Connection, answer: Answer, send_body: bool, keep: bool) -> None:
        status, headers, body = answer
        conn.keep = keep
        conn.out = memoryview(response(status, headers, body, send_body, keep, time.time()))
        conn.deadline = time.monotonic() + self.timeout  # to take the response
        self._write(conn)

    def _write(self, conn: _Connection) -> None:
        assert conn.out is not None
        try:
            sent = conn.sock.send(conn.out)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._drop(conn)
            return
        conn.out = conn.out[sent:]
        if len(conn.out):
            self._selector.modify(conn.sock, selectors.EVENT_WRITE, conn)
            return
        conn.out = None
        if not conn.keep:
            self._drop(conn)
            return
        self._selector.modify(conn.sock, selectors.EVENT_READ, conn)
        conn.deadline = time.monotonic() + self.timeout  # for its next request
        if conn.inbuf:
            self._process(conn)  # a pipelined request
