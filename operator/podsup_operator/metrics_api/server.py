"""The HTTPS server: authenticate, authorize, then answer discovery or metrics.

One aiohttp application on the operator's event loop. Every request goes
through the same gate (health paths excepted): who (``auth``), may they
(``authz``), then the route. Errors are ``metav1.Status`` bodies with the right
code — 401 without identity, 403 when RBAC says no, 400 for a malformed
selector, 404 for what we do not serve, 503 when a value cannot be read —
and an unexpected exception is a 500 Status, never a traceback to the caller.
"""
from __future__ import annotations

import json
import logging
import ssl
from aiohttp import web

from . import discovery, paths, types
from .auth import Authenticator
from .authz import Authorizer
from .provider import MetricError, MetricsProvider

log = logging.getLogger("podsup_operator.metrics_api")

def tls_context(cert_file: str, key_file: str, client_ca_pem: str = "") -> ssl.SSLContext:
    """Server TLS context; client certificates are verified against the
    request-header CA only — so a verified peer certificate *is* one that
    chains to it (what ``auth`` relies on). A client certificate from another
    CA fails the handshake, as on the kube-apiserver."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_file, key_file)
    ctx.set_alpn_protocols(["http/1.1"])
    if client_ca_pem:
        ctx.load_verify_locations(cadata=client_ca_pem)
        ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


def _json(body: dict, status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(body, separators=(",", ":")).encode(), status=status,
                        content_type="application/json")


def _error(code: int, message: str) -> web.Response:
    return _json(types.status(code, message), code)


class MetricsAPI:
    def __init__(self, authenticator: Authenticator, authorizer: Authorizer, provider: MetricsProvider):
        self.authn = authenticator
        self.authz = authorizer
        self.provider = provider
        self._runner: web.AppRunner | None = None
        self._ssl: ssl.SSLContext | None = None
        self.port: int | None = None

    def update_request_header(self, config) -> None:
        """Adopt a new front-proxy configuration (the kube-apiserver rewrote
        extension-apiserver-authentication, e.g. after rotating its CA). New
        CAs are trusted for new connections at once. A removed CA still passes
        the TLS handshake (an SSLContext can add CAs, not drop them), but the
        authenticator retires it: its certificates name no user. A removed
        allowed name is refused at once too."""
        if config.client_ca_pem and self._ssl is not None:
            self._ssl.load_verify_locations(cadata=config.client_ca_pem)
            self._ssl.verify_mode = ssl.CERT_OPTIONAL
        self.authn.rotate(config)

    def reload_certificate(self, cert_file: str, key_file: str) -> None:
        """Serve a renewed certificate: new handshakes use it at once (the
        SSLContext is the listener's own), connections open stay as they are."""
        if self._ssl is not None:
            self._ssl.load_cert_chain(cert_file, key_file)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self._handle(request)
        except Exception:  # noqa: BLE001 - logged here, a Status to the caller
            log.exception("metrics API: %s %s failed", request.method, request.path)
            return _error(500, "internal error while serving the metrics API (see the operator's log)")

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        info = paths.parse(request.raw_path, request.method)
        if info.path in paths.ALWAYS_ALLOW:
            return web.Response(text="ok")
        peercert = request.transport.get_extra_info("peercert") if request.transport else None
        ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
        peer_der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None and peercert else None
        try:
            user = await self.authn.authenticate(peercert, request.headers, peer_der)
        except Exception as exc:  # noqa: BLE001 - the TokenReview call failed: no identity, no data
            log.warning("metrics API: TokenReview failed: %s: %s", type(exc).__name__, exc)
            return _error(503, f"cannot verify the bearer token now (TokenReview failed: {type(exc).__name__})")
        if user is None:
            return _error(401, "Unauthorized: present a front-proxy client certificate with X-Remote-User, "
                               "or a bearer token")
        try:
            decision = await self.authz.authorize(user, info)
        except Exception as exc:  # noqa: BLE001 - the SubjectAccessReview call failed: no decision, no data
            log.warning("metrics API: SubjectAccessReview failed: %s: %s", type(exc).__name__, exc)
            return _error(503, f"cannot authorize the request now (SubjectAccessReview failed: {type(exc).__name__})")
        if not decision.allowed:
            what = info.sar_attributes()
            return _error(403, f"user {user.name!r} cannot {info.verb} {json.dumps(what, sort_keys=True)}"
                               + (f": {decision.reason}" if decision.reason else ""))
        return await self._route(request, info)

    async def _route(self, request: web.Request, info: paths.RequestInfo) -> web.StreamResponse:
        seg = info.segments
        if request.method not in ("GET", "HEAD"):
            return _error(405, f"{request.method} is not supported; the metrics APIs are read-only")
        if seg == ("apis",):
            return _json(discovery.group_list())
        if len(seg) == 2 and seg[0] == "apis" and discovery.group(seg[1]):
            return _json(discovery.group(seg[1]))
        if len(seg) == 3 and seg[0] == "apis":
            doc = discovery.resources(seg[1], seg[2])
            if doc:
                return _json(doc)
        q = request.query
        try:
            if (len(seg) == 6 and seg[:3] == ("apis", types.EXTERNAL_GROUP, types.EXTERNAL_VERSION)
                    and seg[3] == "namespaces"):
                return _json(await self.provider.external(seg[4], seg[5], q.get("labelSelector", "")))
            if (len(seg) == 8 and seg[:3] == ("apis", types.CUSTOM_GROUP, types.CUSTOM_VERSION)
                    and seg[3] == "namespaces"):
                if seg[5] != "pods":
                    return _error(404, f"only pods metrics are served by {types.CUSTOM_GV}, not {seg[5]!r}")
                return _json(await self.provider.pods(seg[4], seg[6], seg[7], q.get("labelSelector", ""),
                                                      q.get("metricLabelSelector", "")))
        except MetricError as exc:
            return _error(exc.code, exc.message)
        return _error(404, f"the server could not find the requested resource {info.path!r}")

    async def start(self, host: str, port: int, ssl_context: ssl.SSLContext) -> int:
        """Listen; returns the bound port (``port=0`` picks a free one)."""
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        self._ssl = ssl_context
        site = web.TCPSite(self._runner, host, port, ssl_context=ssl_context, backlog=512)
        try:
            await site.start()
        except BaseException:  # e.g. the port is taken: nothing half-started stays behind for the retry
            await self._runner.cleanup()
            self._runner = None
            raise
        self.port = self._runner.addresses[0][1]
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.provider.scraper.close()
