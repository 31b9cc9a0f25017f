"""kopf wiring of the metrics API: the HTTPS server's lifetime and a poller
task per WorkerPool with a queue or with autoscaling on (no kopf daemon: no
finalizer on pools).

:func:`register` puts the handlers into a kopf registry; importing
:mod:`podsup_operator.metrics_api.kopf_handlers` (listed in the CLI's
HANDLER_MODULES) registers them in kopf's default registry for
``podsup-operator run``. Nothing registers at import of this module, so tests
of other handler modules never start a metrics server by accident.

The server starts with the operator (``on.startup``) and stops with it
(``on.cleanup``): while the APIService exists the endpoint must answer, or
the aggregator marks the group unavailable and namespace deletion blocks
cluster-wide. The pollers (one per pool with a queue or with autoscaling
on) run whether or not the server is enabled (status
and scale to zero need the queue depth either way). Settings come from
``podsup-operator run`` flags via :data:`SETTINGS`.
"""
from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any

import kopf

from podsup import names

from . import certs
from .auth import Authenticator, RequestHeaderConfig
from .authz import Authorizer
from .kube import Kube, api_client
from .poller import PoolPoller
from .provider import MetricsProvider
from .server import MetricsAPI, tls_context
from .sources.pods import PodScraper
from .sources.queue import QueueRegistry

log = logging.getLogger("podsup_operator.metrics_api")

WORKERPOOLS = (names.API_GROUP, names.API_VERSION, names.PLURAL)
ENV_SERVICE = "PODSUP_METRICS_API_SERVICE"
ENV_NAMESPACE = "POD_NAMESPACE"
#: How often the front-proxy settings are re-read (the kube-apiserver rewrites
#: the ConfigMap when its request-header CA rotates).
REQUEST_HEADER_REFRESH_SECONDS = 60.0


@dataclass
class Settings:
    enabled: bool = True
    host: str = "0.0.0.0"
    port: int = names.METRICS_API_PORT
    cert_file: str | None = None
    key_file: str | None = None
    #: Names for the self-signed fallback certificate (when no files are given).
    service: str = field(default_factory=lambda: os.environ.get(ENV_SERVICE, "podsup-operator-metrics-api"))
    namespace: str = field(default_factory=lambda: os.environ.get(ENV_NAMESPACE, "podsup-system"))


SETTINGS = Settings()


def configure(enabled: bool, port: int, cert_file: str | None, key_file: str | None) -> None:
    """Apply ``podsup-operator run``'s metrics API flags (the port was
    checked by the parser, as every port flag is: ``cli.port``)."""
    if bool(cert_file) != bool(key_file):
        raise ValueError("--tls-cert-file and --tls-key-file go together")
    for path in (cert_file, key_file):
        if path and not os.path.isfile(path):
            raise ValueError(f"metrics API TLS file {path!r} does not exist")
    SETTINGS.enabled, SETTINGS.port = enabled, port
    SETTINGS.cert_file, SETTINGS.key_file = cert_file, key_file


@dataclass
class Runtime:
    kube: Any
    registry: QueueRegistry
    provider: MetricsProvider
    api: MetricsAPI | None = None
    port: int | None = None
    header_config: RequestHeaderConfig | None = None
    refresher: asyncio.Task | None = None


_runtime: Runtime | None = None


def runtime(kube: Any | None = None) -> Runtime:
    """The process-wide registry/provider (created on first use)."""
    global _runtime
    if _runtime is None:
        kube = kube or Kube(api_client())
        registry = QueueRegistry()
        _runtime = Runtime(kube, registry, MetricsProvider(registry, kube.list_pods, PodScraper()))
    return _runtime


def reset() -> None:
    """Forget the runtime and the pollers (tests start operators against fresh emulators)."""
    global _runtime, POLLERS
    _runtime = None
    POLLERS = Pollers()


def _serving_files() -> tuple[str, str]:
    if SETTINGS.cert_file and SETTINGS.key_file:
        return SETTINGS.cert_file, SETTINGS.key_file
    log.warning("metrics API: no --tls-cert-file/--tls-key-file; serving a self-signed certificate for %s.%s.svc "
                "(the APIService's caBundle will not match it: use the chart's certificate Secret)",
                SETTINGS.service, SETTINGS.namespace)
    _, serving = certs.self_signed_serving(SETTINGS.service, SETTINGS.namespace)
    d = tempfile.mkdtemp(prefix="podsup-metrics-api-")
    paths = (os.path.join(d, "tls.crt"), os.path.join(d, "tls.key"))
    serving.write(*paths)
    return paths


async def start_metrics_api(logger: Any, **_: Any) -> None:
    rt = runtime()
    if not SETTINGS.enabled:
        logger.info("metrics API disabled (--no-metrics-api): queue pollers only")
        return
    try:
        header_config = await asyncio.to_thread(rt.kube.request_header_config)
    except Exception as exc:  # noqa: BLE001 - without it only bearer tokens are accepted
        logger.warning(f"metrics API: cannot read kube-system/extension-apiserver-authentication ({exc}); "
                       "front-proxy requests will be refused, bearer tokens only")
        header_config = RequestHeaderConfig()
    cert_file, key_file = _serving_files()
    ctx = tls_context(cert_file, key_file, header_config.client_ca_pem)
    rt.api = MetricsAPI(Authenticator(header_config, rt.kube.review_token),
                        Authorizer(rt.kube.review_access), rt.provider)
    rt.port = await rt.api.start(SETTINGS.host, SETTINGS.port, ctx)
    rt.header_config = header_config
    rt.refresher = asyncio.create_task(_refresh_request_header(rt))
    logger.info(f"metrics API serving external.metrics.k8s.io/v1beta1 and custom.metrics.k8s.io/v1beta2 "
                f"on https://{SETTINGS.host}:{rt.port}")


async def refresh_request_header_once(rt: Runtime) -> bool:
    """Re-read kube-system/extension-apiserver-authentication; True if it changed."""
    config = await asyncio.to_thread(rt.kube.request_header_config)
    if config == rt.header_config:
        return False
    rt.api.update_request_header(config)
    rt.header_config = config
    log.info("metrics API: front-proxy settings changed (CA or allowed names): adopted")
    return True


async def _refresh_request_header(rt: Runtime) -> None:
    while True:
        await asyncio.sleep(REQUEST_HEADER_REFRESH_SECONDS)
        try:
            await refresh_request_header_once(rt)
        except Exception as exc:  # noqa: BLE001 - keep the last good settings
            log.warning("metrics API: re-reading extension-apiserver-authentication failed: %s", exc)


async def stop_metrics_api(**_: Any) -> None:
    rt = _runtime
    if rt is not None and rt.refresher is not None:
        rt.refresher.cancel()
        rt.refresher = None
    if rt is not None and rt.api is not None:
        await rt.api.stop()
        rt.api = None


def _needs_poller(spec: Any, **_: Any) -> bool:
    """A queue to poll, or autoscaling whose metrics health (and a scale to
    zero to undo after the queue is removed) belongs in the status."""
    spec = spec or {}
    return bool(spec.get("queue")) or bool((spec.get("autoscaling") or {}).get("enabled"))


class Pollers:
    """One asyncio task per WorkerPool that needs a poller, started and
    stopped from the WorkerPool watch.

    Not a ``kopf.daemon``: kopf puts a finalizer on every object a daemon
    runs for, so deleting such a pool (or its namespace) would hang whenever
    the operator is not running. An ``on.event`` handler needs no finalizer;
    each task reads the newest body the watch delivered before every tick.
    """

    def __init__(self) -> None:
        self.bodies: dict[tuple[str, str], dict] = {}
        self.tasks: dict[tuple[str, str], asyncio.Task] = {}

    def observe(self, event_type: str | None, body: dict) -> None:
        meta = body.get("metadata") or {}
        key = (meta.get("namespace", ""), meta.get("name", ""))
        if event_type == "DELETED" or meta.get("deletionTimestamp") or not _needs_poller(body.get("spec")):
            self.bodies.pop(key, None)
            task = self.tasks.pop(key, None)
            if task is not None:
                task.cancel()
            return
        self.bodies[key] = body
        task = self.tasks.get(key)
        if task is None or task.done():
            self.tasks[key] = asyncio.create_task(self._run(key), name=f"podsup-poller-{key[0]}/{key[1]}")

    async def _run(self, key: tuple[str, str]) -> None:
        namespace, name = key
        rt = runtime()

        def emit(type_: str, reason: str, message: str) -> None:
            body = self.bodies.get(key)
            if body is not None:
                kopf.event(body, type=type_, reason=reason, message=message)

        poller = PoolPoller(namespace, name, rt.registry, rt.provider, rt.kube, emit)
        try:
            while key in self.bodies:
                try:
                    interval = await poller.tick(self.bodies[key])
                except Exception as exc:  # noqa: BLE001 - one failed tick (API hiccup) must not end polling
                    log.warning("queue poll of %s/%s failed: %s: %s", namespace, name, type(exc).__name__, exc)
                    interval = 5.0
                await asyncio.sleep(interval)
        finally:
            poller.forget()

    async def stop_all(self) -> None:
        tasks = list(self.tasks.values())
        self.bodies.clear()
        self.tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


POLLERS = Pollers()


async def pool_event(event: Any, body: Any, **_: Any) -> None:
    """Every WorkerPool watch event: start, refresh or stop its poller."""
    import copy

    POLLERS.observe(event.get("type"), copy.deepcopy(dict(body)))


async def stop_pollers(**_: Any) -> None:
    await POLLERS.stop_all()


def register(registry: kopf.OperatorRegistry) -> None:
    kopf.on.startup(registry=registry, id="metrics-api-start")(start_metrics_api)
    kopf.on.cleanup(registry=registry, id="metrics-api-stop")(stop_metrics_api)
    kopf.on.event(*WORKERPOOLS, registry=registry, id="metrics-api-pollers")(pool_event)
    kopf.on.cleanup(registry=registry, id="metrics-api-pollers-stop")(stop_pollers)
