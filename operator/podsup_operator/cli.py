"""``podsup-operator``: ``run`` the operator, ``render`` a WorkerPool offline,
print the ``crd``, show a pool's live ``status`` (:mod:`.status_cmd`).

Handler modules are imported from HANDLER_MODULES only when ``run`` starts,
so adding a module (e.g. the metrics API) is a one-line edit, and ``render``
works without kopf or a cluster. Run options are added in
``add_run_arguments`` to keep the parser easy to extend.

Bad input is one line and exit 2, never a traceback: a bad flag (the
parser's ``error``), a missing operator extra (``pip install
'podsup[operator]'`` named, whichever module the command reached first), no
cluster credentials for ``run``, an unreadable manifest for ``render``.
"""
from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import re
import socket
import sys

import yaml

from podsup import names

from . import config, status_cmd
from .leader_election import DEFAULT_LEASE_NAME, LEASE_DURATION, RENEW_DEADLINE, RETRY_PERIOD, Timings, check_timings
from .metrics_api.lifecycle import describe

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")

#: Exit code of bad input (flags, files, environment), as ``podsup``'s.
EXIT_USAGE = 2

#: Top-level modules of the ``[operator]`` extra (pyproject.toml): a
#: ModuleNotFoundError naming one of them means the extra is not installed.
OPERATOR_EXTRA_MODULES = frozenset({"kopf", "kubernetes", "cryptography", "celpy", "aiohttp", "redis", "pika"})
INSTALL_HINT = "pip install 'podsup[operator]'"

#: Modules whose import registers kopf handlers for ``run``.
HANDLER_MODULES = [
    "podsup_operator.handlers",
    "podsup_operator.metrics_api.kopf_handlers",
]
#: With --leader-elect the metrics API and its pollers run outside kopf on
#: every replica (metrics_api.serving), not as kopf handlers of the leader.
OUTSIDE_KOPF_WITH_LEADER_ELECTION = {"podsup_operator.metrics_api.kopf_handlers"}


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit code 2 (no
    usage dump), as ``podsup``'s parsers do."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def port(text: str) -> int:
    """A TCP port flag (``--health-port``, ``--metrics-port``,
    ``--metrics-api-port``): 1..65535, one rule for all of them."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r} (expected 1..65535)") from None
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"port must be 1..65535 (got {value})")
    return value


def image(text: str) -> str:
    """``--operator-image``: a non-empty image reference without whitespace
    (an empty one would render ``image: ''``, which the API server refuses)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty (an image reference, e.g. "
                                         f"{config.DEFAULT_OPERATOR_IMAGE})")
    if any(c.isspace() for c in text):
        raise argparse.ArgumentTypeError(f"an image reference has no whitespace: {text!r}")
    return text


def seconds(text: str) -> float:
    """A duration flag in seconds (the leader election's timings)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value < 3600:
        raise argparse.ArgumentTypeError(f"must be more than 0 and less than 3600 seconds (got {text})")
    return value


def dns_name(text: str) -> str:
    """A Lease name or namespace: a lowercase RFC 1123 label (at most 63 characters)."""
    if not _DNS_LABEL.fullmatch(text) or len(text) > 63:
        raise argparse.ArgumentTypeError(f"{text!r} is not a lowercase RFC 1123 name (a-z, 0-9, '-', "
                                         "at most 63 characters, starting and ending alphanumeric)")
    return text


def add_run_arguments(run: argparse.ArgumentParser) -> None:
    scope = run.add_mutually_exclusive_group()
    scope.add_argument("--namespace", "-n", action="append", default=[], metavar="NS",
                       help="watch this namespace (repeatable)")
    scope.add_argument("--all-namespaces", "-A", action="store_true",
                       help="watch all namespaces (the default when no --namespace is given)")
    run.add_argument("--log-format", choices=["text", "json"], default="text")
    run.add_argument("--operator-image", type=image, default=config.default_operator_image(),
                     help=f"image of the init container copying podsup into worker pods "
                          f"(env {config.ENV_OPERATOR_IMAGE}; default %(default)s)")
    run.add_argument("--health-port", type=port, default=names.OPERATOR_HEALTH_PORT,
                     help="liveness endpoint port (/healthz)")
    run.add_argument("--metrics-port", type=port, default=names.OPERATOR_METRICS_PORT,
                     help="Prometheus /metrics port of the operator")
    run.add_argument("--verbose", "-v", action="store_true", help="debug logging")
    # The aggregated external/custom metrics API (issue 6; podsup_operator.metrics_api).
    run.add_argument("--metrics-api", action=argparse.BooleanOptionalAction, default=True,
                     help="serve external.metrics.k8s.io/v1beta1 and custom.metrics.k8s.io/v1beta2 over HTTPS "
                          "(turn off when KEDA or prometheus-adapter owns those APIs)")
    run.add_argument("--metrics-api-port", type=port, default=names.METRICS_API_PORT,
                     help="HTTPS port of the metrics API (default %(default)s)")
    run.add_argument("--tls-cert-file", help="serving certificate (PEM) of the metrics API; its CA is the "
                                             "APIService caBundle (default: a self-signed one)")
    run.add_argument("--tls-key-file", help="private key (PEM) of --tls-cert-file")
    run.add_argument("--tls-secret", metavar="NAME",
                     help="keep the metrics API's CA and serving certificate in this Secret of the operator's "
                          "namespace: created once, renewed before expiry (instead of --tls-cert-file)")
    run.add_argument("--apiservice", action="append", default=[], metavar="NAME",
                     help="APIService whose caBundle is set to --tls-secret's CA (repeatable)")
    # Several replicas (leader_run): every one serves the metrics API, the Lease holder reconciles.
    run.add_argument("--leader-elect", action="store_true",
                     help="run as one of several replicas: only the holder of a coordination.k8s.io Lease "
                          "reconciles and writes; every replica serves the metrics API from its own poll")
    run.add_argument("--leader-elect-lease-name", type=dns_name, default=DEFAULT_LEASE_NAME, metavar="NAME",
                     help="the Lease's name (default %(default)s)")
    run.add_argument("--leader-elect-lease-namespace", type=dns_name, metavar="NS",
                     help=f"the Lease's namespace (default: ${config.ENV_POD_NAMESPACE}, the operator's own)")
    for flag, default, what in (("lease-duration", LEASE_DURATION, "a candidate waits this long after the last "
                                                                   "renewal it saw before taking over"),
                                ("renew-deadline", RENEW_DEADLINE, "the leader gives up (exits 1) when it could "
                                                                   "not renew for this long"),
                                ("retry-period", RETRY_PERIOD, "between attempts to acquire or renew")):
        run.add_argument(f"--leader-elect-{flag}", type=seconds, default=default, metavar="SECONDS",
                         help=f"{what} (default %(default)gs)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="podsup-operator", description="The podsup WorkerPool operator.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the operator")
    add_run_arguments(run)
    render = sub.add_parser("render", help="print the children a WorkerPool manifest produces (no cluster)")
    render.add_argument("-f", "--filename", required=True, help="WorkerPool manifest (YAML; - for stdin)")
    render.add_argument("--operator-image", type=image, default=config.default_operator_image(),
                        help=f"image of the init container (env {config.ENV_OPERATOR_IMAGE}; default %(default)s)")
    sub.add_parser("crd", help="print the WorkerPool CustomResourceDefinition")
    status_cmd.add_arguments(sub.add_parser("status", help="a pool's live workers, busy, RPS, queue per pod"))
    return parser


def cmd_render(args: argparse.Namespace) -> int:
    from .render import RenderError, decode, dump, load_documents, render_children

    source = "<stdin>" if args.filename == "-" else args.filename
    try:
        if args.filename == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(args.filename, "rb") as stream:
                data = stream.read()
        children = render_children(load_documents(decode(data, source), source), args.operator_image)
    except OSError as exc:
        print(f"error: cannot read {source}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    except RenderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    sys.stdout.write(dump(children))
    return 0


def cmd_crd(args: argparse.Namespace) -> int:
    from .crd import workerpool_crd

    sys.stdout.write(yaml.safe_dump(workerpool_crd(), sort_keys=False, width=100))
    return 0


#: Where the liveness endpoint and the operator's /metrics listen.
BIND_HOST = "0.0.0.0"


def _run_ports(args: argparse.Namespace) -> list[tuple[str, int]]:
    ports = [("--health-port", args.health_port), ("--metrics-port", args.metrics_port)]
    return ports + ([("--metrics-api-port", args.metrics_api_port)] if args.metrics_api else [])


def _same_port(args: argparse.Namespace) -> str | None:
    """Two of the operator's listeners on one port: the second could never start."""
    seen: dict[int, str] = {}
    for flag, port in _run_ports(args):
        if port in seen:
            return f"{seen[port]} and {flag} are both {port}: each listener needs a port of its own"
        seen[port] = flag
    return None


def _taken_port(args: argparse.Namespace) -> str | None:
    """The liveness and /metrics ports, probed before kopf starts: a taken one
    would otherwise end the operator with a traceback from deep in kopf or
    prometheus-client. (The metrics API's port is not probed: that part
    retries on its own, see metrics_api.lifecycle.)"""
    held = []
    try:
        for flag, port in _run_ports(args)[:2]:
            probe = socket.socket()
            held.append(probe)
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as both servers bind
            try:
                probe.bind((BIND_HOST, port))
            except OSError as exc:
                return f"{flag}: {describe(exc, BIND_HOST, port, flag)}"
    finally:
        for probe in held:
            probe.close()
    return None


def _timings(args: argparse.Namespace) -> Timings:
    return Timings(args.leader_elect_lease_duration, args.leader_elect_renew_deadline, args.leader_elect_retry_period)


def _leader_election_problem(args: argparse.Namespace) -> str | None:
    """The leader election's flags that cannot work together (one line), or None."""
    if not args.leader_elect:
        return None
    if not (args.leader_elect_lease_namespace or os.environ.get(config.ENV_POD_NAMESPACE)):
        return (f"--leader-elect needs the Lease's namespace: set --leader-elect-lease-namespace "
                f"(or ${config.ENV_POD_NAMESPACE}, as the chart does)")
    return check_timings(_timings(args))


def cmd_run(args: argparse.Namespace) -> int:
    from .metrics_api import handlers as metrics_api

    try:
        metrics_api.configure(args.metrics_api, args.metrics_api_port, args.tls_cert_file, args.tls_key_file,
                              args.tls_secret, args.apiservice)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    clash = _same_port(args) or _leader_election_problem(args)
    if clash:
        print(f"error: {clash}", file=sys.stderr)
        return EXIT_USAGE

    from .credentials import NoCredentials, find

    try:
        find()
    except NoCredentials as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    problem = _taken_port(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_USAGE

    import kopf

    from . import metrics

    kopf.configure(verbose=args.verbose,
                   log_format=kopf.LogFormat.JSON if args.log_format == "json" else kopf.LogFormat.FULL)
    config.CONFIG.operator_image = args.operator_image
    config.CONFIG.namespaces = list(args.namespace)
    for module in HANDLER_MODULES:
        if not (args.leader_elect and module in OUTSIDE_KOPF_WITH_LEADER_ELECTION):
            importlib.import_module(module)
    settings = kopf.OperatorSettings()
    config.configure_settings(settings)
    try:
        metrics.serve(args.metrics_port)
    except OSError as exc:  # taken since _taken_port looked
        print(f"error: --metrics-port: {describe(exc, BIND_HOST, args.metrics_port, '--metrics-port')}",
              file=sys.stderr)
        return EXIT_USAGE
    namespaces = args.namespace
    if args.leader_elect:
        from . import leader_run

        def operator(stop_flag: asyncio.Event):  # liveness: leader_run's /healthz, on every replica
            return kopf.operator(standalone=True, clusterwide=not namespaces, namespaces=namespaces,
                                 settings=settings, stop_flag=stop_flag)

        lease_namespace = args.leader_elect_lease_namespace or os.environ[config.ENV_POD_NAMESPACE]
        return asyncio.run(leader_run.run(lease_namespace, args.leader_elect_lease_name, _timings(args),
                                          (BIND_HOST, args.health_port), namespaces, operator))
    asyncio.run(kopf.operator(
        standalone=True,
        clusterwide=not namespaces,
        namespaces=namespaces,
        settings=settings,
        liveness_endpoint=f"http://{BIND_HOST}:{args.health_port}/healthz",
    ))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = {"run": cmd_run, "render": cmd_render, "crd": cmd_crd, "status": status_cmd.run}[args.command]
    try:
        return handler(args)
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] not in OPERATOR_EXTRA_MODULES:
            raise  # not the extra: a real bug, keep its traceback
        print(f"error: podsup-operator {args.command} needs the operator extras (module {exc.name!r} is not "
              f"installed): {INSTALL_HINT}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
