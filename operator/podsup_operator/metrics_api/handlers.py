"""kopf wiring of the metrics API: the HTTPS server's lifetime and a poller
task per WorkerPool (no kopf daemon: no finalizer on pools).

:func:`register` puts the handlers into a kopf registry; importing
:mod:`podsup_operator.metrics_api.kopf_handlers` (listed in the CLI's
HANDLER_MODULES) registers them in kopf's default registry for
``podsup-operator run``. Nothing registers at import of this module, so tests
of other handler modules never start a metrics server by accident.

The server starts with the operator (``on.startup``) and stops with it
(``on.cleanup``): while the APIService exists the endpoint must answer, or
the aggregator marks the group unavailable and namespace deletion blocks
cluster-wide. It is a part that may fail on its own (``lifecycle``): the
startup activity only launches its supervisor, so a port already taken or a
bad certificate never holds back reconciliation (kopf starts no resource
handler before every startup activity succeeded). A failure is one log line,
``podsup_operator_metrics_api_up`` 0 plus a failure count on the operator's
/metrics, and a Warning Event on the operator's own Pod (when POD_NAME and
POD_NAMESPACE say which; out of a cluster there is no Pod, so the log line
and the metrics are all); it is retried with capped exponential backoff. The pollers (one per pool not
being deleted: every pool gets live figures and deletion costs, a pool with
a queue its broker reads) run whether or not the server is enabled (status
and scale to zero need them either way). Settings come from
``podsup-operator run`` flags via :data:`SETTINGS`.
"""
from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable

import kopf

from podsup import names

from .. import config, metrics
from . import certs, lifecycle, pollers, renewal, serving_secret
from .auth import Authenticator, RequestHeaderConfig
from .authz import Authorizer
from .kube import Kube, api_client
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
#: How often the serving certificate is checked: renewed in its Secret when due
#: (serving_secret), reloaded when its files changed (cert-manager, another replica).
CERTIFICATE_CHECK_SECONDS = 600.0
#: Retries of a metrics API that did not start: 1 s, 2 s, 4 s … every 30 s.
BACKOFF = lifecycle.Backoff(first=1.0, factor=2.0, cap=30.0)


@dataclass
class Settings:
    enabled: bool = True
    host: str = "0.0.0.0"
    port: int = names.METRICS_API_PORT
    cert_file: str | None = None
    key_file: str | None = None
    #: The operator-managed certificate: a Secret of its own namespace
    #: (serving_secret), and the APIServices whose caBundle trusts it.
    tls_secret: str | None = None
    apiservices: list[str] = field(default_factory=list)
    #: Names for the self-signed fallback certificate (when no files are given).
    service: str = field(default_factory=lambda: os.environ.get(ENV_SERVICE, "podsup-operator-metrics-api"))
    namespace: str = field(default_factory=lambda: os.environ.get(ENV_NAMESPACE, "podsup-system"))


SETTINGS = Settings()


def configure(enabled: bool, port: int, cert_file: str | None, key_file: str | None,
              tls_secret: str | None = None, apiservices: list[str] | None = None) -> None:
    """Apply ``podsup-operator run``'s metrics API flags (the port was
    checked by the parser, as every port flag is: ``cli.port``)."""
    if bool(cert_file) != bool(key_file):
        raise ValueError("--tls-cert-file and --tls-key-file go together")
    if tls_secret and cert_file:
        raise ValueError("--tls-secret (the operator keeps the certificate) and --tls-cert-file exclude each other")
    if apiservices and not tls_secret:
        raise ValueError("--apiservice needs --tls-secret (the CA whose bundle it is given)")
    for path in (cert_file, key_file):
        if path and not os.path.isfile(path):
            raise ValueError(f"metrics API TLS file {path!r} does not exist")
    SETTINGS.enabled, SETTINGS.port = enabled, port
    SETTINGS.cert_file, SETTINGS.key_file = cert_file, key_file
    SETTINGS.tls_secret, SETTINGS.apiservices = tls_secret, list(apiservices or [])


@dataclass
class Runtime:
    kube: Any
    registry: QueueRegistry
    provider: MetricsProvider
    api: MetricsAPI | None = None
    port: int | None = None
    header_config: RequestHeaderConfig | None = None
    refresher: asyncio.Task | None = None
    #: Starts the server, retrying with backoff (lifecycle.Supervisor.run).
    supervisor: asyncio.Task | None = None
    #: The self-signed fallback's files, made once (not again on every retry).
    self_signed: tuple[str, str] | None = None
    #: The files served (the operator-managed Secret's are written here).
    serving: tuple[str, str] | None = None
    #: Picks up a renewed certificate (the Secret's, or new files) while serving.
    renewer: asyncio.Task | None = None
    header_config_warned: bool = False


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


def _managed_files(rt: Runtime) -> tuple[str, str]:
    """The managed certificate (created or renewed in its Secret, caBundle set), written to our files."""
    serving = serving_secret.ensure(rt.kube, SETTINGS.namespace, SETTINGS.tls_secret, SETTINGS.service,
                                    SETTINGS.apiservices)
    if rt.serving is None:
        d = tempfile.mkdtemp(prefix="podsup-metrics-api-")
        rt.serving = (os.path.join(d, "tls.crt"), os.path.join(d, "tls.key"))
    certs.KeyPair(serving.cert_pem, serving.key_pem).write(*rt.serving)
    return rt.serving


def _serving_files(rt: Runtime) -> tuple[str, str]:
    if SETTINGS.tls_secret:
        try:
            return _managed_files(rt)
        except Exception as exc:  # noqa: BLE001 - a start failure like any other: reported, retried
            raise lifecycle.StartError(f"its certificate Secret {SETTINGS.namespace}/{SETTINGS.tls_secret} "
                                       f"cannot be read or written ({lifecycle.reason(exc)})") from exc
    if SETTINGS.cert_file and SETTINGS.key_file:
        return SETTINGS.cert_file, SETTINGS.key_file
    if rt.self_signed is None:
        log.warning("metrics API: no --tls-cert-file/--tls-key-file; serving a self-signed certificate for "
                    "%s.%s.svc (the APIService's caBundle will not match it: use the chart's certificate Secret)",
                    SETTINGS.service, SETTINGS.namespace)
        _, serving = certs.self_signed_serving(SETTINGS.service, SETTINGS.namespace)
        d = tempfile.mkdtemp(prefix="podsup-metrics-api-")
        rt.self_signed = (os.path.join(d, "tls.crt"), os.path.join(d, "tls.key"))
        serving.write(*rt.self_signed)
    return rt.self_signed


async def _start_server(rt: Runtime) -> int:
    """One attempt: front-proxy settings, certificate, listen. Raises on failure."""
    try:
        header_config = await asyncio.to_thread(rt.kube.request_header_config)
    except Exception as exc:  # noqa: BLE001 - without it only bearer tokens are accepted
        if not rt.header_config_warned:  # once, not on every retry of a start
            log.warning("metrics API: cannot read kube-system/extension-apiserver-authentication (%s); "
                        "front-proxy requests will be refused, bearer tokens only", lifecycle.reason(exc))
            rt.header_config_warned = True
        header_config = RequestHeaderConfig()
    cert_file, key_file = await asyncio.to_thread(_serving_files, rt)
    try:
        ctx = tls_context(cert_file, key_file, header_config.client_ca_pem)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        raise lifecycle.StartError(f"its TLS certificate {cert_file} and key {key_file} cannot be used "
                                   f"({lifecycle.reason(exc)})") from exc
    api = MetricsAPI(Authenticator(header_config, rt.kube.review_token), Authorizer(rt.kube.review_access),
                     rt.provider)
    port = await api.start(SETTINGS.host, SETTINGS.port, ctx)
    rt.api, rt.port, rt.header_config = api, port, header_config
    rt.refresher = asyncio.create_task(_refresh_request_header(rt))
    refresh = (lambda: _managed_files(rt)) if SETTINGS.tls_secret else None
    rt.renewer = asyncio.create_task(renewal.run(api, cert_file, key_file, refresh, CERTIFICATE_CHECK_SECONDS))
    return port


class StartReport:
    """What a failed start does (lifecycle.Report): one log line — no
    traceback, the reason is known —, the operator's metrics, and a Warning
    Event on the operator's own Pod when the reason is new (not one per
    retry); a Normal Event once it serves after failing. Out of a cluster
    (no POD_NAME/POD_NAMESPACE) there is no Pod: the log and metrics are all."""

    def __init__(self, kube: Any) -> None:
        self.kube = kube
        self._posted: str | None = None

    async def failed(self, message: str, failures: int, retry_in: float) -> None:
        metrics.METRICS_API_UP.set(0)
        metrics.METRICS_API_START_FAILURES.inc()
        log.warning("metrics API not serving: %s; retrying in %gs (attempt %d); WorkerPools reconcile meanwhile",
                    message, retry_in, failures)
        if message != self._posted:
            self._posted = message
            await self._pod_event("Warning", "MetricsAPIUnavailable",
                                  f"metrics API not serving: {message}; retrying with backoff "
                                  "(WorkerPools reconcile meanwhile)")

    async def serving(self, port: int, failures: int) -> None:
        metrics.METRICS_API_UP.set(1)
        log.info("metrics API serving external.metrics.k8s.io/v1beta1 and custom.metrics.k8s.io/v1beta2 "
                 "on https://%s:%d", SETTINGS.host, port)
        if failures:
            await self._pod_event("Normal", "MetricsAPIServing",
                                  f"metrics API serving on port {port} after {failures} failed attempt(s)")

    async def _pod_event(self, type_: str, reason: str, message: str) -> None:
        pod = config.own_pod()
        if pod is None:
            return
        try:
            await asyncio.to_thread(self.kube.post_event, pod, type_, reason, message)
        except Exception as exc:  # noqa: BLE001 - an Event is a courtesy; the log line and metrics stand
            log.warning("metrics API: cannot post the %s Event on Pod %s/%s: %s", reason,
                        pod["metadata"]["namespace"], pod["metadata"]["name"], lifecycle.reason(exc))


async def start_metrics_api(logger: Any, **_: Any) -> None:
    """Launch the metrics API's supervisor and return at once (see the
    module docstring: a failing metrics API never holds back reconciliation)."""
    rt = runtime()
    if not SETTINGS.enabled:
        logger.info("metrics API disabled (--no-metrics-api): queue pollers only")
        return
    metrics.enable_metrics_api_metrics()
    supervisor = lifecycle.Supervisor(
        lambda: _start_server(rt), lambda exc: lifecycle.describe(exc, SETTINGS.host, SETTINGS.port),
        StartReport(rt.kube), BACKOFF)
    rt.supervisor = asyncio.create_task(supervisor.run(), name="podsup-metrics-api")


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
    if rt is not None and rt.supervisor is not None:
        rt.supervisor.cancel()  # still retrying: stop; already serving: a finished task
        await asyncio.gather(rt.supervisor, return_exceptions=True)
        rt.supervisor = None
    if rt is not None and rt.refresher is not None:
        rt.refresher.cancel()
        rt.refresher = None
    if rt is not None and rt.renewer is not None:
        rt.renewer.cancel()
        rt.renewer = None
    if rt is not None and rt.api is not None:
        await rt.api.stop()
        rt.api = None


def _kopf_event(body: dict, type_: str, reason: str, message: str) -> None:
    kopf.event(body, type=type_, reason=reason, message=message)


def Pollers(leading: Callable[[], bool] = lambda: True, post: pollers.Post = _kopf_event) -> pollers.Pollers:
    """The pollers of this process's runtime; under kopf (standalone) their
    Events go through kopf's poster, outside kopf (``--leader-elect``)
    through :meth:`.kube.Kube.post_event` (:mod:`.serving`)."""
    return pollers.Pollers(runtime, post, leading)


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
