"""``podsup status | scale | reload | drain``: thin clients of the control socket.

Each ``*_main(argv)`` parses its own flags, talks to podsup over
``--control PATH`` (env ``PODSUP_CONTROL``, same default as ``podsup run``),
prints the answer and returns the exit status. A missing or dead socket and a
refused command print one line on stderr and return 1; bad arguments return 2.
"""
from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import time
from typing import Callable

from podsup.cli.control_client import ControlError, PodsupGone, request
from podsup.core import status_view
from podsup.plugins.control.handlers import CommandError, parse_scale

#: How often ``drain --wait`` looks whether the workers are gone.
DRAIN_POLL = 0.2
#: Extra time ``drain --wait`` allows beyond podsup's own drain budget.
DRAIN_SLACK = 5.0
#: Longest ``status --watch --interval`` (time.sleep overflows on huge values).
MAX_INTERVAL = 86400.0


def default_control_path() -> str:
    """Where ``podsup run`` listens unless told otherwise (shared with config)."""
    try:
        from podsup.cli.options import default_control_path as shared  # the run side's default
        return shared()
    except (ImportError, AttributeError):
        pass
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return os.path.join(runtime, "podsup.sock")
    return f"/tmp/podsup-{os.getuid()}/control.sock"


class _Parser(argparse.ArgumentParser):
    """argparse that exits 2 with one line (no usage dump) on bad input."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"podsup {self.prog.split()[-1]}: {message}\n")


def _parser(name: str, description: str) -> _Parser:
    parser = _Parser(prog=f"podsup {name}", description=description)
    parser.add_argument("--control", default=os.environ.get("PODSUP_CONTROL") or None,
                        help="podsup's control socket (env PODSUP_CONTROL)")
    return parser


def _interval(text: str) -> float:
    """``--interval``: finite seconds in (0, MAX_INTERVAL] (not nan, inf, 0, negative)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 < value <= MAX_INTERVAL):
        raise argparse.ArgumentTypeError(
            f"must be a number of seconds > 0 and <= {MAX_INTERVAL:g} (got {text!r})")
    return value


def _interruptible() -> None:
    """``status --watch`` only ends by a signal: make Ctrl-C (SIGINT) end it
    even when it was started with SIGINT ignored (``nohup make test &``, a
    background job of a non-interactive shell), as it would from a terminal.
    Otherwise its parent's SIGINT is lost and it refreshes until SIGKILL."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, (signal.SIGINT, signal.SIGTERM))


def _stdout_closed() -> None:
    """The reader of stdout went away (``podsup status --watch | head -1``):
    point stdout at /dev/null so the interpreter's final flush of what is
    still buffered does not fail with "Exception ignored ... BrokenPipeError"."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        finally:
            os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass  # stdout is not a real file: nothing will be flushed to a pipe


def _printable(text: str) -> str:
    """One line, no terminal escapes: an error text comes from the other end of a socket."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _run(call: Callable[[], int]) -> int:
    try:
        return call()
    except ControlError as exc:
        print(f"podsup: {_printable(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError, IndexError) as exc:
        # a well-framed answer podsup would never give: whatever listens there is not podsup
        print(f"podsup: unexpected answer on the control socket (is it podsup's?): "
              f"{type(exc).__name__}: {_printable(str(exc))[:200]}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # like `yes | head`: the reader has all it wanted, which is not an error
        _stdout_closed()
        return 0


def status_main(argv: list[str]) -> int:
    parser = _parser("status", "Show the pool like Workerman's status.")
    parser.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    parser.add_argument("--watch", action="store_true", help="refresh until interrupted")
    parser.add_argument("--interval", type=_interval, default=None,
                        help=f"seconds between refreshes with --watch (> 0, <= {MAX_INTERVAL:g}; default 1)")
    args = parser.parse_args(argv)
    if args.interval is None:
        args.interval = 1.0
    elif not args.watch:  # a refresh period without refreshes is a mistake, not a no-op
        parser.error("--interval only applies with --watch")
    path = args.control or default_control_path()
    render = status_view.render_json if args.json else status_view.render_table

    def once() -> None:
        text = render(request(path, {"command": "status"}))
        if args.watch and not args.json and sys.stdout.isatty():
            sys.stdout.write("\x1b[H\x1b[2J")
        sys.stdout.write(text)
        sys.stdout.flush()

    if args.watch:
        _interruptible()

    def call() -> int:
        once()
        while args.watch:
            time.sleep(args.interval)  # a refresh period, not a wait for a condition
            once()
        return 0

    return _run(call)


def scale_main(argv: list[str]) -> int:
    parser = _parser("scale", "Change the worker count live: N, +K or -K.")
    parser.add_argument("value", help="N (absolute), +K or -K")
    args, rest = parser.parse_known_args(argv)
    if rest:  # "-1" looks like an option to argparse when given after other args
        parser.error(f"unexpected arguments: {' '.join(rest)}")
    try:
        parse_scale(args.value)
    except CommandError as exc:  # one line: "podsup scale: value must be N ..., +K ... or -K ..."
        parser.error(str(exc))
    path = args.control or default_control_path()

    def call() -> int:
        result = request(path, {"command": "scale", "value": args.value})
        desired = result.get("desired")
        print(f"podsup: scaled to {desired} workers" if desired is not None else "podsup: scale accepted")
        return 0

    return _run(call)


def reload_main(argv: list[str]) -> int:
    parser = _parser("reload", "Rolling restart, one worker at a time.")
    args = parser.parse_args(argv)
    path = args.control or default_control_path()

    def call() -> int:
        request(path, {"command": "reload"})
        print("podsup: reload started")
        return 0

    return _run(call)


def _workers_gone(path: str) -> bool:
    """True once podsup has no worker process left — nor a process group a
    stopped worker left still finishing its work — or has exited. Only a
    socket nobody listens on says it exited: a slow answer (a loaded node) or a
    busy refusal says nothing, so the caller polls again, within its deadline."""
    try:
        status = request(path, {"command": "status"}, timeout=5.0)
    except PodsupGone:
        return True  # podsup finished its drain and exited
    except ControlError:
        return False
    return all(w.get("pid") is None for w in status.get("workers") or []) and not status.get("lingering")


def drain_main(argv: list[str]) -> int:
    parser = _parser("drain", "Stop readiness, then stop workers gracefully (preStop).")
    parser.add_argument("--wait", action="store_true",
                        help="return only when workers have exited or the grace period ended")
    args = parser.parse_args(argv)
    path = args.control or default_control_path()

    def call() -> int:
        result = request(path, {"command": "drain"})
        if not args.wait:
            print("podsup: draining")
            return 0
        deadline = time.monotonic() + float(result.get("budget", 60.0)) + DRAIN_SLACK
        while time.monotonic() < deadline:
            if _workers_gone(path):
                print("podsup: drained")
                return 0
            time.sleep(DRAIN_POLL)  # polling podsup's state against a deadline
        print("podsup: grace period over, workers may still be stopping", file=sys.stderr)
        return 0

    return _run(call)


#: Subcommands this module provides to podsup.cli's table.
COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "status": status_main,
    "scale": scale_main,
    "reload": reload_main,
    "drain": drain_main,
}
