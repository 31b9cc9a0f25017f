"""``podsup-operator status NAME [-n NS] [--watch] [--json]``: the pool's
live table (:mod:`.pool_view`) from one scrape of each ready pod
(:mod:`.pool_fetch`). ``--watch`` redraws every ``--interval`` seconds until
Ctrl-C; with ``--json`` each refresh is one JSON line. Bad input (flags, no
credentials, no such pool) is one line and exit 2."""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Callable

EXIT_USAGE = 2
CLEAR = "\x1b[H\x1b[2J"


def positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0 (got {text})")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME", help="the WorkerPool")
    p.add_argument("-n", "--namespace", help="its namespace (default: the kubeconfig context's, else 'default')")
    p.add_argument("--watch", "-w", action="store_true", help="refresh until Ctrl-C")
    p.add_argument("--interval", type=positive, default=2.0, help="seconds between refreshes with --watch (2)")
    p.add_argument("--json", action="store_true", help="JSON instead of the table (one line per refresh)")
    p.add_argument("--via", choices=("auto", "proxy", "direct"), default="auto",
                   help="how pods are scraped: the API server's pod proxy, or the pod IP directly "
                        "(auto: direct inside a cluster, proxy outside)")


def _namespace(args: argparse.Namespace, source: str) -> str:
    if args.namespace:
        return args.namespace
    if source.startswith("kubeconfig"):
        from kubernetes import config as kconfig

        try:
            _, active = kconfig.list_kube_config_contexts()
            ns = ((active or {}).get("context") or {}).get("namespace")
            if ns:
                return ns
        except Exception:  # noqa: BLE001 - no context namespace: the default
            pass
    else:
        try:
            with open("/var/run/secrets/kubernetes.io/serviceaccount/namespace") as f:
                return f.read().strip() or "default"
        except OSError:
            pass
    return "default"


def run(args: argparse.Namespace, out=None, sleep: Callable[[float], None] = time.sleep) -> int:
    import kubernetes

    from .credentials import NoCredentials, find
    from .pool_fetch import FetchError, fetch, scrape_direct, scrape_via_proxy
    from .pool_view import as_json, render

    out = out or sys.stdout
    try:
        source = find()
    except NoCredentials as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    namespace = _namespace(args, source)
    with kubernetes.client.ApiClient() as client:
        scrape = {"auto": None, "direct": scrape_direct,
                  "proxy": scrape_via_proxy(kubernetes.client.CoreV1Api(client))}[args.via]
        try:
            while True:
                try:
                    pool, rows = fetch(client, namespace, args.name, scrape)
                except FetchError as exc:
                    print(f"error: {exc}", file=sys.stderr)
                    return EXIT_USAGE
                if args.json:
                    out.write(json.dumps(as_json(pool, rows)) + "\n")
                else:
                    out.write((CLEAR if args.watch and out.isatty() else "") + render(pool, rows))
                out.flush()
                if not args.watch:
                    return 0
                sleep(args.interval)
        except KeyboardInterrupt:
            return 0
