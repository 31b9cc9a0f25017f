"""Configuration of ``podsup run`` from the command line: one table of options, one parser.

Every option of the run contract (DESIGN.md) is declared once in
:data:`OPTIONS`, with the function that validates it. The same functions
read the value whether it comes from a flag, a ``PODSUP_<FLAG>`` environment
variable or the YAML ``--config`` file, and the precedence is
flag > env > file > default. A bad value raises :class:`ConfigError` whose
message is one line naming the field, where it came from and what is
allowed; the CLI prints it and exits 2. The model (:class:`Config`) and the
value parsers are pure and live in podsup.core.config and podsup.core.values.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import stat
import sys
from typing import Any, Callable, Mapping, Sequence

from podsup import names
from podsup.core.config import EXIT_USAGE, MAX_WORKERS, Config, ConfigError
from podsup.core.values import (duration_parser, int_parser, parse_bytes, parse_control, parse_exit_codes, parse_http,
                                parse_log_format, parse_path, parse_preload, parse_queue, parse_signal)


def default_control_path() -> str:
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    return os.path.join(runtime or "/tmp", "podsup.sock")


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
    Option("workers", int_parser(0, MAX_WORKERS), _default_workers, "number of workers (default: CPUs the cgroup allows)", "N"),
    Option("max-workers", int_parser(0, MAX_WORKERS), 0, "dynamic mode: grow up to N workers while busy, shrink when idle; --workers is then the start count (0: off, fixed size)", "N"),
    Option("min-workers", int_parser(0, MAX_WORKERS), 1, "dynamic mode: never fewer workers than this", "N"),
    Option("spare-workers", int_parser(1, MAX_WORKERS), 1, "dynamic mode: idle workers kept ready for the next job (pm.min_spare_servers)", "N"),
    Option("idle-timeout", duration_parser(), 10.0, "dynamic mode: an idle worker above min + spare retires after this long", "S"),
    Option("start-period", duration_parser(), 1.0, "a worker that never reports counts as running after this long", "S"),
    Option("start-timeout", duration_parser(), 60.0, "once workers report, a new worker silent this long after its start is replaced (0: wait for ever)", "S"),
    Option("stop-signal", parse_signal, int(signal.SIGTERM), "signal sent to each worker's process group to stop it", "SIG"),
    Option("graceful-timeout", duration_parser(), 30.0, "seconds a stopping worker gets before SIGKILL", "S"),
    Option("drain-delay", duration_parser(), 0.0, "seconds readiness is off before workers are signalled on TERM", "S"),
    Option("normal-exit-codes", parse_exit_codes, frozenset(), "exit codes meaning 'done, do not respawn' (job mode), e.g. 0", "CODES"),
    Option("backoff-max", duration_parser(), 10.0, "upper bound of the respawn backoff in seconds", "S"),
    Option("crashloop-threshold", int_parser(0), None, "more exits than this within --crashloop-interval is a crash storm: not ready, respawns slowed (default: 2 per worker, at least 10; 0: off)", "N"),
    Option("crashloop-interval", duration_parser(positive=True), 60.0, "window of the crash-storm count in seconds", "S"),
    Option("crashloop-restart-after", duration_parser(), 300.0, "a crash storm fails liveness (the kubelet restarts the pod) only once it has lasted this long (0: never)", "S"),
    Option("max-requests", int_parser(0), 0, "recycle a worker after this many requests (0: off)", "N"),
    Option("max-requests-jitter", int_parser(0), 0, "random 0..J added to --max-requests per worker", "J"),
    Option("max-lifetime", duration_parser(), 0.0, "recycle a worker older than this (0: off)", "S"),
    Option("max-rss", parse_bytes, 0, "recycle a worker whose RSS exceeds this, e.g. 256Mi (0: off)", "BYTES"),
    Option("heartbeat-timeout", duration_parser(), 0.0, "kill a worker that sent heartbeats and then none for this long (0: off)", "S"),
    Option("request-timeout", duration_parser(), 0.0, "kill a worker busy longer than this (0: off)", "S"),
    Option("slow-request", duration_parser(), 0.0, "log requests slower than this (0: off)", "S"),
    Option("http", parse_http, parse_http(names.DEFAULT_HTTP),
           f"metrics and health endpoint ADDR:PORT, or 'off' (default {names.DEFAULT_HTTP}: every "
           f"interface, port {names.DEFAULT_HTTP_PORT}, what a pod's probes and Prometheus need; on a "
           "laptop where something owns that port, e.g. 127.0.0.1:9091). The bound address is "
           "podsup's first log line", "ADDR:PORT"),
    Option("control", parse_control, lambda: default_control_path(), "Unix control socket path, or 'off' (default $XDG_RUNTIME_DIR/podsup.sock or /tmp/podsup.sock); "
           "its directory must exist (missing ones are created only under $XDG_RUNTIME_DIR)", "PATH"),
    Option("queue", parse_queue, None, "queue-depth probe URL: redis://HOST:PORT/DB?list=NAME or amqp://...?queue=NAME", "URL"),
    Option("queue-interval", duration_parser(positive=True), 5.0, "seconds between queue-depth probes", "S"),
    Option("min-ready", int_parser(0), None, "running workers needed for /readyz (default: all, at least 1; 0: always)", "N"),
    Option("log-format", parse_log_format, "text", "text (lines prefixed with the slot) or json (one object per line)", "FORMAT"),
    Option("preload", parse_preload, None, "import MODULE once in the master and fork workers calling FUNC (instead of COMMAND)", "MODULE:FUNC"),
    Option("config", parse_path, None, "YAML file with any of these options (keys as flag names)", "FILE"),
)
OPTIONS_BY_NAME = {o.name: o for o in OPTIONS}


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit code 2."""

    def error(self, message: str):  # noqa: D102
        raise ConfigError(f"{self.prog}: {message} (see {self.prog} --help)")


def terminal_columns() -> int:
    """``shutil.get_terminal_size().columns`` (COLUMNS, else the terminal on
    stdout, else 80) without importing shutil, which argparse's help formatter
    does (with bz2 and lzma: ~0.6 MB of RSS every pod would keep)."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class _Formatter(argparse.HelpFormatter):
    """argparse's own help layout, the width found by :func:`terminal_columns`."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None):
        super().__init__(prog, indent_increment, max_help_position,
                         terminal_columns() - 2 if width is None else width)


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
        formatter_class=_Formatter,
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
    sources: dict[str, str] = {}  # option name -> where its value came from (given ones only)
    for option in OPTIONS:
        if option.field in parsed:
            sources[option.name] = option.flag
            values[option.field] = _validate(option, parsed[option.field], option.flag)
        elif option.env in environ:
            sources[option.name] = f"env {option.env}"
            values[option.field] = _validate(option, environ[option.env], sources[option.name])
        elif option.name in from_file:
            sources[option.name] = f"config file {config_path}"
            values[option.field] = _validate(option, from_file[option.name], sources[option.name])
        else:
            values[option.field] = option.default() if callable(option.default) else option.default
    _check_dynamic(values, sources)
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


DYNAMIC_OPTIONS = ("min-workers", "spare-workers", "idle-timeout")


def _check_dynamic(values: dict[str, Any], sources: Mapping[str, str]) -> None:
    """Dynamic mode's options agree with each other (one line each), and the
    start count fits the bounds: a --workers given outside them is refused,
    the default (the CPU count) is clamped into them."""
    def given(name: str) -> str:
        return f"--{name} {values[name.replace('-', '_')]} (from {sources[name]})"
    maximum = values["max_workers"]
    if not maximum:
        for name in DYNAMIC_OPTIONS:
            if name in sources:
                raise ConfigError(f"podsup run: {given(name)} needs --max-workers N (it only applies in dynamic mode)")
        return
    minimum, spare = values["min_workers"], values["spare_workers"]
    if minimum > maximum:
        raise ConfigError(f"podsup run: invalid {given('min-workers')}: must be at most --max-workers {maximum}")
    if spare > maximum:
        raise ConfigError(f"podsup run: invalid {given('spare-workers')}: must be at most --max-workers {maximum}")
    if values["normal_exit_codes"]:
        raise ConfigError("podsup run: --max-workers (dynamic mode) and --normal-exit-codes (job mode) "
                          "cannot be combined: a finished worker's slot would only be refilled")
    if "workers" in sources:
        if not minimum <= values["workers"] <= maximum:
            raise ConfigError(f"podsup run: invalid {given('workers')}: in dynamic mode the start count "
                              f"must be within --min-workers {minimum} and --max-workers {maximum}")
    else:
        values["workers"] = max(minimum, min(maximum, values["workers"]))


def check_executable(program: str) -> str:
    """Resolve ``program`` like execvp would, or raise ConfigError."""
    from podsup.host.executables import which

    if os.sep in program:
        found = program if os.path.isfile(program) and os.access(program, os.X_OK) else None
    else:
        found = which(program)
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
    from podsup.host.executables import which

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
        if which(name) is None:
            return f"its #! line runs '{name}' through env, and {name} is not on PATH"
    return None


def print_error(error: ConfigError) -> int:
    print(str(error), file=sys.stderr)
    return EXIT_USAGE
