"""Queue-depth probe (``--queue URL``): polls a broker and exports
``podsup_queue_depth{queue=NAME}`` and ``podsup_queue_up{queue=NAME}``.

Supported URLs (one probe per ``--queue``)::

    redis://[:password@]host:port/db?list=NAME       length of a Redis list (LLEN)
    rediss://...                                     the same over TLS
    amqp://user:pass@host:port/vhost?queue=NAME      RabbitMQ message count
    amqps://...                                      (passive queue.declare)

The client libraries are optional extras (``podsup[redis]``, ``podsup[amqp]``);
a URL whose library is missing is refused at start with one line naming the
extra. Probing runs in its own thread so a slow broker never stalls the master
loop. A broker that does not answer makes the depth series disappear and
``podsup_queue_up`` go 0 — a stale depth would mislead the HPA — and is logged
once per outage. The URL's password never reaches logs or metrics: logs use
:func:`redact` and exception texts pass through :meth:`QueueTarget.scrub`.
"""
from __future__ import annotations

import dataclasses
import importlib
import threading
import urllib.parse
from typing import Any, Callable, Mapping

from podsup.core.eventlog import EventLog, StdLog
from podsup.core.plugin import Extension, LoopHandle
from podsup.core.protocol import MAX_QUEUE_NAME, is_queue_name

#: scheme → (query parameter naming the queue, Python module, extra)
SCHEMES = {
    "redis": ("list", "redis", "redis"),
    "rediss": ("list", "redis", "redis"),
    "amqp": ("queue", "pika", "amqp"),
    "amqps": ("queue", "pika", "amqp"),
}
#: Seconds a probe may take before the broker counts as down.
PROBE_TIMEOUT = 5.0


class QueueConfigError(ValueError):
    """A --queue URL podsup cannot use; the message is one line for the user."""


def redact(url: str) -> str:
    """The URL with its password replaced by ``***``."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@dataclasses.dataclass(frozen=True)
class QueueTarget:
    scheme: str
    name: str          #: the list/queue name, the metric's ``queue`` label
    #: the URL without our query parameter, for the client library (never printed)
    broker_url: str = dataclasses.field(repr=False)
    display: str = ""  #: the URL with the password redacted, for logs
    secrets: tuple[str, ...] = dataclasses.field(default=(), repr=False)

    @property
    def kind(self) -> str:
        return "redis" if self.scheme.startswith("redis") else "amqp"

    def scrub(self, text: str) -> str:
        """``text`` with every credential of the URL replaced by ``***``."""
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, "***")
        return text


def parse_queue_url(url: str) -> QueueTarget:
    """Validate one --queue URL (no I/O, no imports of client libraries)."""
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise QueueConfigError(f"--queue {redact_safe(url)}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise QueueConfigError(f"--queue: scheme must be one of {', '.join(SCHEMES)} (got {scheme or 'none'!r})")
    param = SCHEMES[scheme][0]
    if not parts.hostname:
        raise QueueConfigError(f"--queue {redact(url)}: missing host")
    query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
    names = query.pop(param, [])
    if len(names) != 1 or not names[0]:
        raise QueueConfigError(f"--queue {redact(url)}: needs exactly one ?{param}=NAME")
    name = names[0]
    if not is_queue_name(name):
        # the name is a label value of podsup_queue_depth: printable UTF-8, bounded
        raise QueueConfigError(f"--queue {redact(url)}: ?{param}= must be printable UTF-8 text of at most "
                               f"{MAX_QUEUE_NAME} characters")
    if scheme.startswith("redis"):
        db = parts.path.strip("/")
        if db and not (db.isascii() and db.isdigit()):
            raise QueueConfigError(f"--queue {redact(url)}: the path must be a database number (got {db!r})")
    rest = urllib.parse.urlencode(query, doseq=True)
    broker_url = urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, rest, ""))
    secrets = tuple(s for s in (parts.password, urllib.parse.unquote(parts.password or "")) if s)
    return QueueTarget(scheme=scheme, name=name, broker_url=broker_url, display=redact(url), secrets=secrets)


def _option_error(exc: Exception) -> str:
    """redis-py's complaint about a URL option, in the user's terms."""
    import re

    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    unknown = re.search(r"unexpected keyword argument '([^']+)'", text)
    return f"unknown option {unknown.group(1)!r} in the URL" if unknown else text


def redact_safe(url: str) -> str:
    """Best-effort redaction for URLs too broken to parse: drop the userinfo."""
    head, sep, tail = url.rpartition("@")
    if not sep:
        return url
    scheme, _, _ = head.partition("://")
    return f"{scheme}://***@{tail}"


def require_library(target: QueueTarget) -> Any:
    """Import the broker's client library or refuse with the extra to install."""
    _, module, extra = SCHEMES[target.scheme]
    try:
        return importlib.import_module(module)
    except ImportError:
        raise QueueConfigError(
            f"--queue {target.display}: needs the Python package {module!r}; install podsup[{extra}]") from None


class RedisProbe:
    """LLEN of a Redis list; redis-py reconnects by itself after an outage."""

    def __init__(self, target: QueueTarget, timeout: float = PROBE_TIMEOUT):
        redis = require_library(target)
        self.target = target
        try:
            self.client = redis.Redis.from_url(target.broker_url, socket_timeout=timeout,
                                               socket_connect_timeout=timeout, retry_on_timeout=False)
            pool = self.client.connection_pool
            pool.connection_class(**pool.connection_kwargs)  # an unknown option fails here, not at every probe
        except (ValueError, TypeError) as exc:
            raise QueueConfigError(f"--queue {target.display}: {_option_error(exc)}") from None

    def depth(self) -> float:
        return float(self.client.llen(self.target.name))

    def close(self) -> None:
        self.client.close()


class AmqpProbe:
    """Message count of a RabbitMQ queue via a passive queue.declare on a kept
    connection (reopened after any failure). A queue the broker does not know
    has no backlog: depth 0."""

    def __init__(self, target: QueueTarget, timeout: float = PROBE_TIMEOUT):
        self.pika = require_library(target)
        self.target = target
        self.timeout = timeout
        self._conn: Any = None
        self._channel: Any = None
        try:
            self.pika.URLParameters(target.broker_url)  # a bad option fails here, not at every probe
        except (ValueError, TypeError, AttributeError) as exc:
            raise QueueConfigError(f"--queue {target.display}: {str(exc).splitlines()[0]}") from None

    def _open(self) -> Any:
        params = self.pika.URLParameters(self.target.broker_url)
        params.socket_timeout = self.timeout
        params.blocked_connection_timeout = self.timeout
        params.connection_attempts = 1
        params.stack_timeout = self.timeout
        self._conn = self.pika.BlockingConnection(params)
        self._channel = self._conn.channel()
        return self._channel

    def depth(self) -> float:
        try:
            channel = self._channel if self._channel is not None and self._channel.is_open else self._open()
            frame = channel.queue_declare(queue=self.target.name, passive=True)
            return float(frame.method.message_count)
        except self.pika.exceptions.ChannelClosedByBroker as exc:
            self._channel = None
            if exc.reply_code == 404:
                return 0.0
            self.close()
            raise
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        conn, self._conn, self._channel = self._conn, None, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - the connection is already broken
                pass


def make_probe(target: QueueTarget) -> Any:
    return RedisProbe(target) if target.kind == "redis" else AmqpProbe(target)


class QueueBoard:
    """The latest reading of each probed queue, shared by the probe thread
    (writer) and /metrics (reader)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._readings: dict[str, tuple[float | None, bool]] = {}
        self._errors: dict[str, int] = {}

    def set(self, name: str, depth: float | None, up: bool) -> None:
        with self._lock:
            self._readings[name] = (depth, up)
            self._errors[name] = self._errors.get(name, 0) + (0 if up else 1)

    def errors(self) -> Mapping[str, int]:
        """Failed probes per queue since start (podsup_queue_probe_errors_total)."""
        with self._lock:
            return dict(self._errors)

    def readings(self) -> Mapping[str, tuple[float | None, bool]]:
        with self._lock:
            return dict(self._readings)


class OutageLog:
    """Logs a broker's failure once per outage and its recovery once (pure state)."""

    def __init__(self, target: QueueTarget, log: EventLog | None = None):
        self.target = target
        self.down = False
        self.log: EventLog = log or StdLog("podsup.queue")

    def failed(self, exc: BaseException) -> bool:
        """Record a failed probe; True if this starts an outage (and was logged)."""
        if self.down:
            return False
        self.down = True
        detail = self.target.scrub(f"{type(exc).__name__}: {exc}")
        self.log.error("queue broker unreachable: podsup_queue_up=0 until it answers",
                       queue=self.target.name, broker=self.target.display, error=detail)
        return True

    def succeeded(self) -> bool:
        """Record a good probe; True if this ends an outage."""
        if not self.down:
            return False
        self.down = False
        self.log.info("queue broker answers again", queue=self.target.name, broker=self.target.display)
        return True


def probe_once(probe: Any, board: QueueBoard, outage: OutageLog) -> None:
    """One poll of one queue: update the board and the outage state."""
    try:
        depth = probe.depth()
    except Exception as exc:  # noqa: BLE001 - any broker failure is an outage, never a crash
        board.set(probe.target.name, None, False)
        outage.failed(exc)
        return
    board.set(probe.target.name, depth, True)
    outage.succeeded()


class QueuePoller:
    """The probe thread: polls every queue each ``interval`` seconds until closed."""

    def __init__(self, targets: list[QueueTarget], interval: float, board: QueueBoard,
                 probe_factory: Callable[[QueueTarget], Any] = make_probe):
        if interval <= 0:
            raise QueueConfigError(f"--queue-interval: must be a positive number of seconds (got {interval})")
        self.interval = interval
        self.board = board
        self.probes = [probe_factory(t) for t in targets]  # imports happen here: missing extras fail at start
        self.outages = [OutageLog(t) for t in targets]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="podsup-queue-probe", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for probe, outage in zip(self.probes, self.outages):
                probe_once(probe, self.board, outage)
            self._stop.wait(self.interval)  # the polling period (interruptible by close)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=PROBE_TIMEOUT * 2)
        for probe in self.probes:
            try:
                probe.close()
            except Exception:  # noqa: BLE001
                pass



class QueueProbeExtension(Extension):
    """Runs the probe thread for the pool's lifetime; /metrics reads ``board``."""

    def __init__(self, urls: list[str], interval: float):
        self.board = QueueBoard()
        self.poller = QueuePoller([parse_queue_url(u) for u in urls], interval, self.board)

    def attach(self, arbiter: LoopHandle) -> None:
        log = getattr(arbiter, "log", None)
        if log is not None:
            for outage in self.poller.outages:
                outage.log = log
        self.poller.start()

    def close(self) -> None:
        self.poller.close()
