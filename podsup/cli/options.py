"""Configuration of ``podsup run``: one table of options, one parser.

Every option of the run contract (DESIGN.md) is declared once in
:data:`OPTIONS`, with the function that validates it. The same functions
read the value whether it comes from a flag, a ``PODSUP_<FLAG>`` environment
variable or the YAML ``--config`` file, and the precedence is
flag > env > file > default. A bad value raises :class:`ConfigError` whose
message is one line naming the field, where it came from and what is
allowed; the CLI prints it and exits 2.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import os
import re
import signal
import stat
import sys
from typing import Any, Callable, Mapping, Sequence

from podsup import names

EXIT_USAGE = 2
#: The most workers one podsup runs (--workers, `podsup scale`, TTIN): beyond
#: this a typo would fork-bomb the pod and stall the master loop.
MAX_WORKERS = 1024
#: The longest duration an option takes (seconds): a year.
MAX_DURATION = 365 * 24 * 3600.0
#: The largest byte size an option takes (--max-rss).
MAX_BYTES = 2**63 - 1


class ConfigError(Exception):
    """A bad value: the message is the single line shown to the user."""


# --- value parsers: str (or YAML scalar) -> value, ValueError(allowed) ---------

def _int_min(minimum: int, maximum: int | None = None) -> Callable[[Any], int]:
    allowed = f"an integer >= {minimum}" if maximum is None else f"an integer {minimum}..{maximum}"

    def parse(raw: Any) -> int:
        text = str(raw).strip()
        if isinstance(raw, bool) or not re.fullmatch(r"[+-]?[0-9]{1,20}", text, re.ASCII):
            raise ValueError(f"must be {allowed}")
        value = int(text)
        if value < minimum or (maximum is not None and value > maximum):
            raise ValueError(f"must be {allowed}")
        return value
    return parse


#: Duration units: Go's (time.ParseDuration, Kubernetes' metav1.Duration) from
#: ms up, plus ``d`` (24h) as Prometheus has it. A bare number is seconds.
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_PART = re.compile(r"([0-9]*\.?[0-9]+)(ms|s|m|h|d)", re.ASCII)
_DURATION_RE = re.compile(r"(?:[0-9]*\.?[0-9]+(?:ms|s|m|h|d))+", re.ASCII)
_NUMBER_RE = re.compile(r"[0-9]*\.?[0-9]+", re.ASCII)


def parse_seconds(raw: Any) -> float | None:
    """``30``, ``1.5``, ``500ms``, ``2m``, ``1h30m``, ``1d`` -> seconds; None if malformed.

    Go's duration syntax (a sequence of number+unit, as ``kubectl --timeout``
    takes), with ``d`` added; no sign (durations here are never negative) and
    no ``us``/``ns`` (below what a supervisor's timers resolve)."""
    if isinstance(raw, bool):
        return None
    text = str(raw).strip()
    if len(text) > 64:  # a duration is short; do not run regexes over pasted megabytes
        return None
    if _NUMBER_RE.fullmatch(text):
        return float(text)
    if not _DURATION_RE.fullmatch(text):
        return None
    return sum(float(number) * _DURATION_UNITS[unit] for number, unit in _DURATION_PART.findall(text))


def _duration(positive: bool = False) -> Callable[[Any], float]:
    allowed = (("seconds > 0" if positive else "seconds >= 0")
               + " or a duration with units ms, s, m, h, d (e.g. 30, 1.5, 500ms, 2m, 1h30m, 1d)")

    def parse(raw: Any) -> float:
        value = parse_seconds(raw)
        if value is None or not math.isfinite(value) or (positive and value <= 0):
            raise ValueError(f"must be {allowed}")
        if value > MAX_DURATION:  # timers past this overflow the OS's (and are typos anyway)
            raise ValueError(f"must be {allowed}, at most {int(MAX_DURATION)} (a year)")
        return value
    return parse


_SIZE_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2,
               "g": 1000**3, "gb": 1000**3, "ki": 1024, "kib": 1024, "mi": 1024**2,
               "mib": 1024**2, "gi": 1024**3, "gib": 1024**3}


def parse_bytes(raw: Any) -> int:
    """``268435456``, ``256Mi``, ``1G``, ``512MB`` -> bytes (0 = off)."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", str(raw))
    unit = match.group(2).lower() if match else ""
    if isinstance(raw, bool) or not match or unit not in _SIZE_UNITS:
        raise ValueError("must be bytes >= 0, optionally with a unit (e.g. 268435456, 256Mi, 1G)")
    value = float(match.group(1)) * _SIZE_UNITS[unit]
    if not math.isfinite(value) or value > MAX_BYTES:
        raise ValueError(f"must be bytes >= 0, at most {MAX_BYTES} (8 EiB), optionally with a unit (e.g. 256Mi)")
    return int(value)


def parse_signal(raw: Any) -> int:
    """``TERM``, ``SIGTERM``, ``term`` or a number -> signal number."""
    text = str(raw).strip().upper()
    allowed = "must be a signal name such as TERM, INT, QUIT, HUP, USR1, USR2, WINCH or a number"
    if text.isascii() and text.isdigit():
        number = int(text[:4]) if len(text) <= 4 else -1  # no signal has 5 digits
        if number in {int(s) for s in signal.valid_signals()} and number != signal.SIGSTOP:
            return number
        raise ValueError(allowed)
    if not text.startswith("SIG"):
        text = "SIG" + text
    sig = getattr(signal.Signals, text, None) if text.isidentifier() else None
    if sig is None or sig == signal.SIGSTOP:
        raise ValueError(allowed)
    return int(sig)


def parse_exit_codes(raw: Any) -> frozenset[int]:
    """``0``, ``0,3`` (or a YAML list) -> a set of exit codes 0..255."""
    items = raw if isinstance(raw, (list, tuple)) else [p for p in str(raw).split(",") if p.strip()]
    codes = set()
    for item in items:
        text = str(item).strip()
        if isinstance(item, bool) or not (text.isascii() and text.isdigit()) or len(text) > 3 or int(text) > 255:
            raise ValueError("must be a comma-separated list of exit codes 0..255 (e.g. 0 or 0,3)")
        codes.add(int(text))
    return frozenset(codes)


def parse_http(raw: Any) -> tuple[str, int] | None:
    """``ADDR:PORT`` -> (addr, port); ``off`` or empty disables the server."""
    if raw is False or raw is None:  # YAML reads `http: off` as false
        return None
    text = str(raw).strip()
    if text.lower() in ("", "off", "none", "false", "no"):
        return None
    match = re.fullmatch(r"\[?([^\[\]]*?)\]?:([0-9]{1,5})", text)
    if not match or int(match.group(2)) > 65535:
        raise ValueError("must be ADDR:PORT with a port 0..65535 (e.g. 0.0.0.0:9090, [::]:9090) or 'off'")
    return match.group(1) or "0.0.0.0", int(match.group(2))


def default_control_path() -> str:
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    return os.path.join(runtime or "/tmp", "podsup.sock")


def parse_control(raw: Any) -> str | None:
    if raw is False or raw is None:  # YAML reads `control: off` as false
        return None
    if not isinstance(raw, str):  # a YAML list or number is no path
        raise ValueError("must be a Unix socket path shorter than 108 bytes, or 'off'")
    text = raw.strip()
    if text.lower() in ("", "off", "none", "false", "no"):
        return None
    if "\0" in text or len(os.fsencode(text)) > 107:
        raise ValueError("must be a Unix socket path shorter than 108 bytes, or 'off'")
    return text


QUEUE_SCHEMES = ("redis", "rediss", "amqp", "amqps")


def parse_queue(raw: Any) -> str | None:
    text = str(raw).strip()
    if not text:
        return None
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme not in QUEUE_SCHEMES:
        raise ValueError("must be a URL redis://HOST:PORT/DB?list=NAME or amqp://USER:PASS@HOST:PORT/VHOST?queue=NAME")
    return text


def parse_log_format(raw: Any) -> str:
    text = str(raw).strip().lower()
    if text not in ("text", "json"):
        raise ValueError("must be one of: text, json")
    return text


def parse_preload(raw: Any) -> str | None:
    text = str(raw).strip()
    if not text:
        return None
    if not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", text):
        raise ValueError("must be MODULE:FUNC (e.g. myapp.worker:main)")
    return text


def parse_path(raw: Any) -> str | None:
    text = str(raw).strip()
    return text or None


# --- the table ------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Option:
    name: str                        #: flag name without the dashes
    parse: Callable[[Any], Any]
    default: Any                     #: parsed default, or a callable computing it
    help: str
    metavar: str = "VALUE"

    @property
    def flag(self) -> str:
        return "--" + self.name

    @property
    def env(self) -> str:
        return "PODSUP_" + self.name.upper().replace("-", "_")

    @property
    def field(self) -> str:
        return self.name.replace("-", "_")


def _default_workers() -> int:
    from podsup.host import cgroup
    return cgroup.cpu_count()


OPTIONS: tuple[Option, ...] = (
    Option("workers", _int_min(0, MAX_WORKERS), _default_workers, "number of workers (default: CPUs the cgroup allows)", "N"),
    Option("stop-signal", parse_signal, int(signal.SIGTERM), "signal sent to each worker's process group to stop it", "SIG"),
    Option("graceful-timeout", _duration(), 30.0, "seconds a stopping worker gets before SIGKILL", "S"),
    Option("drain-delay", _duration(), 0.0, "seconds readiness is off before workers are signalled on TERM", "S"),
    Option("normal-exit-codes", parse_exit_codes, frozenset(), "exit codes meaning 'done, do not respawn' (job mode), e.g. 0", "CODES"),
    Option("backoff-max", _duration(), 10.0, "upper bound of the respawn backoff in seconds", "S"),
    Option("crashloop-threshold", _int_min(0), 10, "more exits than this within --crashloop-interval is a crash storm (0: off)", "N"),
    Option("crashloop-interval", _duration(positive=True), 60.0, "window of the crash-storm count in seconds", "S"),
    Option("max-requests", _int_min(0), 0, "recycle a worker after this many requests (0: off)", "N"),
    Option("max-requests-jitter", _int_min(0), 0, "random 0..J added to --max-requests per worker", "J"),
    Option("max-lifetime", _duration(), 0.0, "recycle a worker older than this (0: off)", "S"),
    Option("max-rss", parse_bytes, 0, "recycle a worker whose RSS exceeds this, e.g. 256Mi (0: off)", "BYTES"),
    Option("heartbeat-timeout", _duration(), 0.0, "kill a worker that sent heartbeats and then none for this long (0: off)", "S"),
    Option("request-timeout", _duration(), 0.0, "kill a worker busy longer than this (0: off)", "S"),
    Option("slow-request", _duration(), 0.0, "log requests slower than this (0: off)", "S"),
    Option("http", parse_http, parse_http(names.DEFAULT_HTTP),
           f"metrics and health endpoint ADDR:PORT, or 'off' (default {names.DEFAULT_HTTP}: every "
           f"interface, port {names.DEFAULT_HTTP_PORT}, what a pod's probes and Prometheus need; on a "
           "laptop where something owns that port, e.g. 127.0.0.1:9091). The bound address is "
           "podsup's first log line", "ADDR:PORT"),
    Option("control", parse_control, lambda: default_control_path(), "Unix control socket path, or 'off' (default $XDG_RUNTIME_DIR/podsup.sock or /tmp/podsup.sock); "
           "its directory must exist (missing ones are created only under $XDG_RUNTIME_DIR)", "PATH"),
    Option("queue", parse_queue, None, "queue-depth probe URL: redis://HOST:PORT/DB?list=NAME or amqp://...?queue=NAME", "URL"),
    Option("queue-interval", _duration(positive=True), 5.0, "seconds between queue-depth probes", "S"),
    Option("min-ready", _int_min(0), None, "running workers needed for /readyz (default: all, at least 1; 0: always)", "N"),
    Option("log-format", parse_log_format, "text", "text (lines prefixed with the slot) or json (one object per line)", "FORMAT"),
    Option("preload", parse_preload, None, "import MODULE once in the master and fork workers calling FUNC (instead of COMMAND)", "MODULE:FUNC"),
    Option("config", parse_path, None, "YAML file with any of these options (keys as flag names)", "FILE"),
)
OPTIONS_BY_NAME = {o.name: o for o in OPTIONS}


@dataclasses.dataclass(frozen=True)
class Config:
    """The resolved configuration, passed to everything (never mutated)."""

    command: tuple[str, ...] = ()
    workers: int = 1
    stop_signal: int = int(signal.SIGTERM)
    graceful_timeout: float = 30.0
    drain_delay: float = 0.0
    normal_exit_codes: frozenset[int] = frozenset()
    backoff_max: float = 10.0
    crashloop_threshold: int = 10
    crashloop_interval: float = 60.0
    max_requests: int = 0
    max_requests_jitter: int = 0
    max_lifetime: float = 0.0
    max_rss: int = 0
    heartbeat_timeout: float = 0.0
    request_timeout: float = 0.0
    slow_request: float = 0.0
    http: tuple[str, int] | None = parse_http(names.DEFAULT_HTTP)
    control: str | None = None  #: load() fills in default_control_path()
    queue: str | None = None
    queue_interval: float = 5.0
    min_ready: int | None = None
    log_format: str = "text"
    preload: str | None = None
    config: str | None = None

    def ready_needed(self, desired: int) -> int:
        """Running workers /readyz needs when ``desired`` are wanted: all of
        them (or --min-ready, capped by ``desired``), and at least one — a pod
        scaled to 0 workers serves nothing, so it must not count as ready.
        Only an explicit ``--min-ready 0`` means ready with no worker up."""
        if self.min_ready == 0:
            return 0
        needed = desired if self.min_ready is None else min(self.min_ready, desired)
        return max(needed, 1)


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit code 2."""

    def error(self, message: str):  # noqa: D102
        raise ConfigError(f"{self.prog}: {message} (see {self.prog} --help)")


def _default_text(option: Option) -> str:
    """``; default X`` for --help where the default is a plain value that the
    help text does not already give (computed ones, like --workers, say it)."""
    value = option.default
    if callable(value) or value is None or "default" in option.help:
        return ""
    if option.name == "stop-signal":
        shown = signal.Signals(value).name.removeprefix("SIG")
    elif isinstance(value, frozenset):
        shown = ",".join(str(v) for v in sorted(value)) or "none"
    elif isinstance(value, float):
        shown = f"{value:g}"
    else:
        shown = str(value)
    return f"; default {shown}"


def build_parser(prog: str = "podsup run") -> argparse.ArgumentParser:
    parser = _Parser(
        prog=prog,
        usage=f"{prog} [options] -- COMMAND [ARGS...]  |  {prog} [options] --preload MODULE:FUNC",
        description="Supervise N workers of COMMAND. Every option is also read from "
                    "PODSUP_<OPTION> (e.g. PODSUP_GRACEFUL_TIMEOUT) and from the YAML "
                    "--config file; precedence: flag > env > file > default.",
        allow_abbrev=False,
    )
    for option in OPTIONS:
        # raw strings: validated below with the same function for every source
        parser.add_argument(option.flag, dest=option.field, default=argparse.SUPPRESS,
                            metavar=option.metavar, help=f"{option.help} [env {option.env}{_default_text(option)}]")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the worker command (after --)")
    return parser


#: Options whose value may carry credentials: shown without the URL's userinfo.
SECRET_OPTIONS = ("queue",)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _short_repr(value: Any) -> str:
    """repr() cut to a readable length (a 5,000-digit value, a YAML alias bomb)."""
    import reprlib

    shorter = reprlib.Repr()
    shorter.maxstring = shorter.maxother = 80
    return shorter.repr(value)


def _shown(option: Option, raw: Any) -> str:
    if option.field in SECRET_OPTIONS:
        from podsup.plugins.queueprobe import redact_safe
        return _short_repr(redact_safe(str(raw)))
    return _short_repr(raw)


def _validate(option: Option, raw: Any, source: str) -> Any:
    try:
        return option.parse(raw)
    except ValueError as exc:
        raise ConfigError(f"podsup run: invalid {option.flag} {_shown(option, raw)} (from {source}): {exc}") from None


def _load_file(path: str) -> dict[str, Any]:
    import yaml

    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO would block start-up, a directory fails later
            raise ConfigError(f"podsup run: invalid --config {path!r}: not a regular file")
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except OSError as exc:
        raise ConfigError(f"podsup run: invalid --config {path!r}: cannot read it ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"podsup run: invalid --config {path!r}: not UTF-8 text") from None
    except RecursionError:
        raise ConfigError(f"podsup run: invalid --config {path!r}: nested too deeply") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"podsup run: invalid --config {path!r}: not valid YAML{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"podsup run: invalid --config {path!r}: must be a mapping of option names to values")
    values: dict[str, Any] = {}
    allowed = sorted(o.name for o in OPTIONS if o.name != "config") + ["command"]
    for key, value in data.items():
        name = str(key).replace("_", "-")
        if name == "command":
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) and not isinstance(v, bool)
                                                      for v in value):
                raise ConfigError(f"podsup run: invalid 'command' in {path}: must be a list of strings")
            values["command"] = [str(v) for v in value]
        elif name in OPTIONS_BY_NAME and name != "config":
            if not _is_scalar(value) and not (name == "normal-exit-codes" and isinstance(value, list)
                                              and all(_is_scalar(v) for v in value)):
                raise ConfigError(f"podsup run: invalid {name!r} in {path}: must be a single value, "
                                  f"not a {type(value).__name__}")
            values[name] = "" if value is None else value
        else:
            raise ConfigError(f"podsup run: unknown key {_short_repr(key)} in {path} (allowed: {', '.join(allowed)})")
    return values


def load(argv: Sequence[str], environ: Mapping[str, str] | None = None,
         check_command: bool = True) -> Config:
    """Resolve the configuration of ``podsup run`` (flag > env > file > default)."""
    environ = os.environ if environ is None else environ
    parsed = vars(build_parser().parse_args(list(argv)))
    command = list(parsed.pop("command", []))
    if command and command[0] == "--":
        command = command[1:]

    config_path = parsed.get("config")
    config_source = "flag"
    if config_path is None and environ.get(OPTIONS_BY_NAME["config"].env):
        config_path, config_source = environ[OPTIONS_BY_NAME["config"].env], OPTIONS_BY_NAME["config"].env
    from_file = _load_file(config_path) if config_path else {}

    values: dict[str, Any] = {}
    for option in OPTIONS:
        if option.field in parsed:
            values[option.field] = _validate(option, parsed[option.field], option.flag)
        elif option.env in environ:
            values[option.field] = _validate(option, environ[option.env], f"env {option.env}")
        elif option.name in from_file:
            values[option.field] = _validate(option, from_file[option.name], f"config file {config_path}")
        else:
            values[option.field] = option.default() if callable(option.default) else option.default
    values["config"] = config_path
    preload_from_file = "preload" not in parsed and OPTIONS_BY_NAME["preload"].env not in environ
    if not command and "command" in from_file and (values["preload"] is None or preload_from_file):
        # the file's command, unless a flag (or env) --preload says how workers start:
        # flags win over the file, for the worker as for every option
        command = from_file["command"]

    if command and values["preload"]:
        raise ConfigError("podsup run: give either a COMMAND after -- or --preload MODULE:FUNC, not both")
    if not command and not values["preload"]:
        raise ConfigError("podsup run: missing the worker command: podsup run [options] -- COMMAND [ARGS...] (or --preload MODULE:FUNC)")
    if command and check_command:
        check_executable(command[0])
    return Config(command=tuple(command), **values)


def check_executable(program: str) -> str:
    """Resolve ``program`` like execvp would, or raise ConfigError."""
    import shutil

    if os.sep in program:
        found = program if os.path.isfile(program) and os.access(program, os.X_OK) else None
    else:
        found = shutil.which(program)
    if not found:
        raise ConfigError(f"podsup run: COMMAND {program!r} cannot be executed: "
                          "not found or not executable (give a path or a program on PATH)")
    problem = _unrunnable(found)
    if problem:
        raise ConfigError(f"podsup run: COMMAND {program!r} cannot be executed: {problem}")
    return found


def _unrunnable(path: str) -> str | None:
    """Why the kernel would refuse to exec ``path`` every time (so podsup would
    only crash-loop), or None: an empty file, or a ``#!`` line naming an
    interpreter that is not there (a PHP script in an image without php)."""
    import shutil

    try:
        with open(path, "rb") as handle:
            head = handle.read(256)
    except OSError:
        return None  # executable but unreadable (mode 711): let exec decide
    if not head:
        return "the file is empty"
    if not head.startswith(b"#!"):
        return None
    words = head[2:].split(b"\n", 1)[0].split()
    if not words:
        return "its #! line names no interpreter"
    interpreter = os.fsdecode(words[0])
    if not (os.path.isfile(interpreter) and os.access(interpreter, os.X_OK)):
        return f"its #! interpreter {interpreter} does not exist (install it in the image, or fix the #! line)"
    if os.path.basename(interpreter) == "env" and len(words) > 1 and not words[1].startswith(b"-"):
        name = os.fsdecode(words[1])
        if shutil.which(name) is None:
            return f"its #! line runs '{name}' through env, and {name} is not on PATH"
    return None


def print_error(error: ConfigError) -> int:
    print(str(error), file=sys.stderr)
    return EXIT_USAGE
