"""Who is calling: front-proxy request headers, or a bearer token via TokenReview.

The kube-apiserver's aggregator proxies requests to us over TLS, presenting
its front-proxy client certificate and naming the real user in
``X-Remote-User`` / ``X-Remote-Group`` / ``X-Remote-Extra-*``. Anyone can send
those headers, so they are trusted only on a connection whose client
certificate chains to the request-header CA published in
``kube-system/extension-apiserver-authentication`` (the TLS layer verifies the
chain: that CA is the only one our server context trusts for client certs)
and whose CN is in ``requestheader-allowed-names`` (empty list = any CN).
Every front-proxy user is also put in ``system:authenticated``: the
aggregator's own discovery and OpenAPI fetches carry no group header, and
without it RBAC refuses them (controllers then log stale discovery).
Any other caller must bring a bearer token, verified with a TokenReview
(cached briefly: the HPA asks every 15 s per metric).

A rotated request-header CA: the TLS context can add the new CA but never
drop the old one, so the CAs a rotation removed are kept in
:attr:`Authenticator.retired_cas`, and a client certificate issued by one of
them (and by no current CA) names no user — the TLS handshake still passes,
the headers are ignored.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Mapping
from urllib.parse import unquote

AUTHENTICATED_GROUP = "system:authenticated"
CONFIGMAP_NAMESPACE = "kube-system"
CONFIGMAP_NAME = "extension-apiserver-authentication"


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    uid: str = ""
    via: str = ""  # "front-proxy" or "token": for logs and tests

    def cache_key(self) -> tuple:
        return (self.name, self.uid, tuple(sorted(self.groups)),
                tuple(sorted((k, tuple(v)) for k, v in self.extra.items())))


@dataclass(frozen=True)
class RequestHeaderConfig:
    """The request-header (front-proxy) settings of the cluster."""
    client_ca_pem: str = ""
    allowed_names: tuple[str, ...] = ()
    username_headers: tuple[str, ...] = ("X-Remote-User",)
    group_headers: tuple[str, ...] = ("X-Remote-Group",)
    extra_prefixes: tuple[str, ...] = ("X-Remote-Extra-",)

    @classmethod
    def from_configmap(cls, data: Mapping[str, str]) -> "RequestHeaderConfig":
        """Read the keys the kube-apiserver publishes (lists are JSON arrays)."""
        def names(key: str, default: tuple[str, ...]) -> tuple[str, ...]:
            raw = data.get(key)
            if not raw:
                return default
            try:
                value = json.loads(raw)
            except ValueError as exc:
                raise ValueError(f"{CONFIGMAP_NAME} key {key!r} is not a JSON list: {raw!r}") from exc
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"{CONFIGMAP_NAME} key {key!r} is not a JSON list of strings: {raw!r}")
            return tuple(value)

        return cls(
            client_ca_pem=data.get("requestheader-client-ca-file", ""),
            allowed_names=names("requestheader-allowed-names", ()),
            username_headers=names("requestheader-username-headers", cls.username_headers),
            group_headers=names("requestheader-group-headers", cls.group_headers),
            extra_prefixes=names("requestheader-extra-headers-prefix", cls.extra_prefixes),
        )


def common_name(peercert: Mapping | None) -> str | None:
    """CN of a peer certificate as returned by ``SSLSocket.getpeercert()``."""
    if not peercert:
        return None
    for rdn in peercert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return value
    return None


#: The TokenReview seam: token → User (authenticated) or None.
TokenReviewer = Callable[[str], Awaitable["User | None"]]


class Authenticator:
    def __init__(self, config: RequestHeaderConfig, review_token: TokenReviewer | None,
                 token_ttl: float = 10.0, clock: Callable[[], float] = time.monotonic):
        self.config = config
        self._review = review_token
        self._ttl = token_ttl
        self._clock = clock
        self._tokens: dict[str, tuple[float, User | None]] = {}
        #: CA certificates (DER) a rotation removed from the request-header CA bundle.
        self.retired_cas: list[bytes] = []

    def rotate(self, config: RequestHeaderConfig) -> None:
        """Adopt ``config``; CAs it no longer lists are retired (see module doc)."""
        old, new = set(ca_certificates(self.config.client_ca_pem)), set(ca_certificates(config.client_ca_pem))
        self.retired_cas = [der for der in [*self.retired_cas, *sorted(old - new)] if der not in new]
        self.config = config

    def _issued_by_retired_ca(self, peer_der: bytes | None) -> bool:
        if not self.retired_cas or not peer_der:
            return False
        current = ca_certificates(self.config.client_ca_pem)
        return issued_by_any(peer_der, self.retired_cas) and not issued_by_any(peer_der, current)

    def front_proxy_user(self, peercert: Mapping | None, headers: Mapping[str, str],
                         peer_der: bytes | None = None) -> User | None:
        """The user named by request headers, if this connection may name one.

        ``peercert`` is only non-empty when the TLS layer verified the client
        certificate against the request-header CA; ``peer_der`` (the same
        certificate, DER) lets a retired CA's certificates be refused.
        """
        cn = common_name(peercert)
        if cn is None or self._issued_by_retired_ca(peer_der):
            return None
        if self.config.allowed_names and cn not in self.config.allowed_names:
            return None
        name = next((headers[h] for h in self.config.username_headers if headers.get(h)), None)
        if not name:
            return None
        groups: list[str] = []
        for h in self.config.group_headers:
            groups.extend(v for v in _getall(headers, h) if v)
        if AUTHENTICATED_GROUP not in groups:
            groups.append(AUTHENTICATED_GROUP)
        extra: dict[str, list[str]] = {}
        for key in headers.keys():
            for prefix in self.config.extra_prefixes:
                if key.lower().startswith(prefix.lower()) and len(key) > len(prefix):
                    extra_key = unquote(key[len(prefix):]).lower()
                    extra.setdefault(extra_key, []).extend(_getall(headers, key))
        return User(name=name, groups=tuple(groups), via="front-proxy",
                    extra={k: tuple(dict.fromkeys(v)) for k, v in extra.items()})

    async def authenticate(self, peercert: Mapping | None, headers: Mapping[str, str],
                           peer_der: bytes | None = None) -> User | None:
        user = self.front_proxy_user(peercert, headers, peer_der)
        if user is not None:
            return user
        auth = headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or self._review is None:
            return None
        key = hashlib.sha256(token.encode()).hexdigest()
        now = self._clock()
        cached = self._tokens.get(key)
        if cached and cached[0] > now:
            return cached[1]
        user = await self._review(token)
        self._tokens[key] = (now + self._ttl, user)
        if len(self._tokens) > 4096:
            self._tokens = {k: v for k, v in self._tokens.items() if v[0] > now}
        return user


def ca_certificates(pem: str) -> list[bytes]:
    """The certificates (DER) of a PEM bundle; an empty or unreadable one has none."""
    if not pem:
        return []
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    try:
        return [c.public_bytes(Encoding.DER) for c in x509.load_pem_x509_certificates(pem.encode())]
    except ValueError:
        return []


def issued_by_any(cert_der: bytes, ca_ders: list[bytes]) -> bool:
    """Whether ``cert_der`` is signed directly by one of ``ca_ders``."""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature

    cert = x509.load_der_x509_certificate(cert_der)
    for der in ca_ders:
        try:
            cert.verify_directly_issued_by(x509.load_der_x509_certificate(der))
            return True
        except (ValueError, TypeError, InvalidSignature):  # another issuer, key type or signature
            continue
    return False


def _getall(headers: Mapping[str, str], key: str) -> list[str]:
    getall = getattr(headers, "getall", None)
    if getall is not None:
        return list(getall(key, []))
    value = headers.get(key)
    return [value] if value is not None else []
