"""``podsup`` command line: a table of subcommands, each ``func(argv) -> exit code``.

``run`` lives here; the control subcommands (status, scale, reload, drain)
live in podsup.cli.control and talk to the control socket through
podsup.cli.control_client.
Entries are ``"module:function"`` strings imported on use, so ``podsup run``
never imports what it does not need.
"""
from __future__ import annotations

import importlib
import os
import signal
import sys
from typing import Callable, Sequence

import podsup
from podsup.cli import options as config_mod

#: name -> ("module:function", one-line help). Add subcommands here.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "run": ("podsup.cli:run", "supervise N workers of COMMAND"),
    "status": ("podsup.cli.control:status_main", "show the pool (table, --json, --watch)"),
    "scale": ("podsup.cli.control:scale_main", "change the worker count live: N, +K or -K"),
    "reload": ("podsup.cli.control:reload_main", "rolling restart, one worker at a time"),
    "drain": ("podsup.cli.control:drain_main", "preStop: readiness off, stop workers gracefully (--wait)"),
}


def _usage() -> str:
    lines = [f"usage: podsup {{{','.join(SUBCOMMANDS)}}} ...", "", "subcommands:"]
    lines += [f"  {name:<8} {help_}" for name, (_target, help_) in SUBCOMMANDS.items()]
    lines.append("\nrun 'podsup SUBCOMMAND --help' for its options")
    return "\n".join(lines)


def _resolve(target: str) -> Callable[[list[str]], int]:
    module, _, func = target.partition(":")
    return getattr(importlib.import_module(module), func)


#: Exit code for SIGINT before the pool started (the shell's 128 + SIGINT).
EXIT_INTERRUPTED = 130
#: Exit code for SIGTERM before the pool started (128 + SIGTERM).
EXIT_TERMINATED = 143


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:  # Ctrl-C while Python is still importing podsup's modules
        print("podsup: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _main(argv: Sequence[str] | None = None) -> int:
    for name in ("PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir"):
        if name in os.environ and not os.environ[name].strip():
            # set but empty: prometheus-client would write its files into the working
            # directory; podsup reads it as unset (a private directory), so must the client
            del os.environ[name]
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(_usage())
        return 0 if args else config_mod.EXIT_USAGE
    if args[0] == "--version":
        print(f"podsup {podsup.__version__}")
        return 0
    entry = SUBCOMMANDS.get(args[0])
    if entry is None:
        print(f"podsup: unknown subcommand {args[0]!r} (allowed: {', '.join(SUBCOMMANDS)})", file=sys.stderr)
        return config_mod.EXIT_USAGE
    return _resolve(entry[0])(args[1:])


def load_preload(spec: str) -> Callable[[], object]:
    """Import MODULE of ``MODULE:FUNC`` (once, in the master) and return FUNC."""
    module_name, _, func_name = spec.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # like gunicorn: the app is found from where podsup runs
    try:
        module = importlib.import_module(module_name)
    except (KeyboardInterrupt, _StartupTerminated):
        raise  # Ctrl-C or SIGTERM during a slow import: run() ends quietly
    except SystemExit as exc:  # the module called sys.exit() at import: nothing to fork from
        raise config_mod.ConfigError(
            f"podsup run: invalid --preload {spec!r}: importing {module_name!r} called sys.exit({exc.code!r})") from None
    except BaseException as exc:  # noqa: BLE001 - any import failure is the user's module
        raise config_mod.ConfigError(
            f"podsup run: invalid --preload {spec!r}: cannot import {module_name!r}: "
            f"{type(exc).__name__}: {exc}".splitlines()[0]) from None
    func = getattr(module, func_name, None)
    if not callable(func):
        raise config_mod.ConfigError(
            f"podsup run: invalid --preload {spec!r}: module {module_name!r} has no callable {func_name!r}")
    return func


class _StartupTerminated(Exception):
    """SIGTERM arrived before the master loop existed."""


def _close_quietly(extensions: list) -> None:
    for ext in extensions:
        try:
            ext.close()
        except Exception:  # noqa: BLE001 - on the way out
            pass


def run(argv: list[str]) -> int:
    """``podsup run [options] -- COMMAND [ARGS...]``."""
    from podsup.host import spawn
    from podsup.loop.arbiter import Arbiter
    from podsup.cli.assemble import build_extensions

    if any(a in ("-h", "--help") for a in argv[: argv.index("--") if "--" in argv else len(argv)]):
        config_mod.build_parser().print_help()
        return 0
    def term_while_starting(_signum: int, _frame: object) -> None:
        raise _StartupTerminated()  # nothing runs yet: there is nothing to drain

    # as PID 1 an unhandled SIGTERM would be ignored, elsewhere it would kill podsup
    # without a word: both wrong while a slow --preload import or a bind is under way
    signal.signal(signal.SIGTERM, term_while_starting)
    # blocked by the parent, SIGTERM (or Ctrl-C) would wait unseen until the loop unblocks it
    signal.pthread_sigmask(signal.SIG_UNBLOCK, (signal.SIGTERM, signal.SIGINT))
    extensions: list = []
    try:
        config = config_mod.load(argv)
        preload = load_preload(config.preload) if config.preload else None
        keep_fds = spawn.open_fds() if preload else frozenset()
        spawn.raise_fd_limit(config_mod.MAX_WORKERS)  # scale/TTIN may go up to the maximum later
        capacity, limit = spawn.fd_capacity()
        if config.workers > capacity:
            raise config_mod.ConfigError(
                f"podsup run: invalid --workers {config.workers}: the open-files limit ({limit}) fits at most "
                f"{capacity} workers, at {spawn.FDS_PER_WORKER} descriptors each: raise it (ulimit -n, or the "
                "container runtime's nofile limit)")
        extensions = build_extensions(config)
        arbiter = Arbiter(config, extensions=extensions, preload=preload, keep_fds=keep_fds)
        # from here a SIGTERM is the loop's, queued until it installs its own handlers
        signal.signal(signal.SIGTERM, arbiter.record_signal)
    except config_mod.ConfigError as exc:
        return config_mod.print_error(exc)
    except KeyboardInterrupt:  # Ctrl-C before anything was started
        _close_quietly(extensions)
        print("podsup run: interrupted while starting; nothing was started", file=sys.stderr)
        return EXIT_INTERRUPTED
    except _StartupTerminated:
        _close_quietly(extensions)
        print("podsup run: SIGTERM while starting; nothing was started", file=sys.stderr)
        return EXIT_TERMINATED
    from podsup.host.memory import release_free_memory
    release_free_memory()  # what starting up allocated and freed: ~0.5 MB per pod
    try:
        return arbiter.run()
    except KeyboardInterrupt:  # pragma: no cover - SIGINT is handled by the loop
        return 1
