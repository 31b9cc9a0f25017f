"""Unit tests of the metrics API's pure parts: quantities, selectors, request
paths, request-header config, the SAR cache, queue URLs and readings, pod
targets and exposition parsing, certificate SANs."""
from __future__ import annotations

import asyncio
import ipaddress
import json

import pytest
from cryptography import x509

from podsup import names
from podsup_operator.metrics_api import certs, paths, selectors, types
from podsup_operator.metrics_api.auth import Authenticator, RequestHeaderConfig, User, common_name
from podsup_operator.metrics_api.authz import Authorizer, Decision
from podsup_operator.metrics_api.sources import pods as podsrc
from podsup_operator.metrics_api.sources.queue import (QueueReading, QueueRegistry, QueueSpecError,
                                                       broker_url)

from .helpers import pod


class Clock:
    def __init__(self, t=1000.0):
        self.t = t

    def __call__(self):
        return self.t


# --- types -----------------------------------------------------------------

@pytest.mark.parametrize("value,text", [(0, "0"), (7, "7"), (7.0, "7"), (0.25, "250m"), (12.5, "12500m"),
                                        (0.0004, "0"), (1e6, "1000000"), (0.0015, "2m")])
def test_quantity(value, text):
    assert types.quantity(value) == text


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_quantity_refuses_non_finite(bad):
    with pytest.raises(ValueError):
        types.quantity(bad)


def test_rfc3339_is_utc_seconds():
    assert types.rfc3339(0) == "1970-01-01T00:00:00Z"
    assert types.rfc3339(1700000000.9) == "2023-11-14T22:13:20Z"


# --- selectors -------------------------------------------------------------

@pytest.mark.parametrize("text,labels,match", [
    ("workerpool=orders", {"workerpool": "orders"}, True),
    ("workerpool==orders", {"workerpool": "orders"}, True),
    ("workerpool=orders", {"workerpool": "other"}, False),
    ("workerpool!=orders", {}, True),
    ("workerpool in (a, b)", {"workerpool": "b"}, True),
    ("workerpool notin (a,b)", {"workerpool": "b"}, False),
    ("podsup.io/workerpool", {"podsup.io/workerpool": "x"}, True),
    ("!podsup.io/workerpool", {"podsup.io/workerpool": "x"}, False),
    ("a=1,b=2", {"a": "1", "b": "2"}, True),
    ("a=1,b=2", {"a": "1"}, False),
    ("", {"anything": "x"}, True),
])
def test_selector_matching(text, labels, match):
    assert selectors.matches(selectors.parse(text), labels) is match


@pytest.mark.parametrize("bad", ["=x", "a in (b", "a)", "a=b,,c=d", "a=b c", "-a=b", "a=" + "x" * 64])
def test_selector_errors_are_specific(bad):
    with pytest.raises(selectors.SelectorError):
        selectors.parse(bad)


def test_equality_labels_become_match_labels():
    reqs = selectors.parse("podsup.io/workerpool=web,tier in (a,b)")
    assert selectors.equality_labels(reqs) == {"podsup.io/workerpool": "web"}


def test_requirements_become_a_label_selector_object():
    assert selectors.label_selector(()) is None
    assert selectors.label_selector(selectors.parse("a=1,b notin (x),c,!d")) == {
        "matchLabels": {"a": "1"},
        "matchExpressions": [{"key": "b", "operator": "NotIn", "values": ["x"]},
                             {"key": "c", "operator": "Exists"}, {"key": "d", "operator": "DoesNotExist"}]}


# --- paths -----------------------------------------------------------------

def test_pods_path_is_percent_decoded_per_segment():
    info = paths.parse("/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns/pods/%2A/m?labelSelector=x", "GET")
    assert info.segments[-2:] == ("*", "m")
    assert info.sar_attributes() == {"resourceAttributes": {
        "group": "custom.metrics.k8s.io", "version": "v1beta2", "resource": "pods", "subresource": "m",
        "name": "*", "verb": "get", "namespace": "ns"}}


def test_encoded_slash_stays_inside_its_segment():
    info = paths.parse("/apis/external.metrics.k8s.io/v1beta1/namespaces/ns/a%2Fb", "GET")
    assert info.segments[-1] == "a/b" and info.resource == "a/b"


def test_external_path_is_a_list():
    info = paths.parse("/apis/external.metrics.k8s.io/v1beta1/namespaces/ns/q", "GET")
    assert info.sar_attributes()["resourceAttributes"]["verb"] == "list"


def test_discovery_is_a_non_resource_url():
    assert paths.parse("/apis/external.metrics.k8s.io/v1beta1", "GET").sar_attributes() == {
        "nonResourceAttributes": {"path": "/apis/external.metrics.k8s.io/v1beta1", "verb": "get"}}
    assert paths.parse("/openapi/v2", "GET").is_resource is False


# --- request-header config and front-proxy users ------------------------------

def test_request_header_config_from_the_configmap():
    cfg = RequestHeaderConfig.from_configmap({
        "requestheader-client-ca-file": "PEM",
        "requestheader-allowed-names": '["front-proxy-client"]',
        "requestheader-username-headers": '["X-Remote-User"]',
        "requestheader-group-headers": '["X-Remote-Group"]',
        "requestheader-extra-headers-prefix": '["X-Remote-Extra-"]',
    })
    assert cfg.client_ca_pem == "PEM" and cfg.allowed_names == ("front-proxy-client",)
    assert RequestHeaderConfig.from_configmap({"requestheader-allowed-names": "[]"}).allowed_names == ()


def test_request_header_config_rejects_garbage_with_the_key_named():
    with pytest.raises(ValueError, match="requestheader-allowed-names"):
        RequestHeaderConfig.from_configmap({"requestheader-allowed-names": "front-proxy-client"})


def test_empty_allowed_names_accept_any_cn():
    authn = Authenticator(RequestHeaderConfig(client_ca_pem="x"), None)
    cert = {"subject": ((("commonName", "anything"),),)}
    assert common_name(cert) == "anything"
    user = authn.front_proxy_user(cert, {"X-Remote-User": "u"})
    assert user.name == "u" and user.groups == ("system:authenticated",)
    assert authn.front_proxy_user(None, {"X-Remote-User": "u"}) is None


async def test_token_reviews_are_cached_until_the_ttl():
    clock, calls = Clock(), []

    async def review(token):
        calls.append(token)
        return User("u") if token == "good" else None

    authn = Authenticator(RequestHeaderConfig(), review, token_ttl=10, clock=clock)
    hdr = {"Authorization": "Bearer good"}
    assert (await authn.authenticate(None, hdr)).name == "u"
    assert (await authn.authenticate(None, hdr)).name == "u"
    clock.t += 11
    await authn.authenticate(None, hdr)
    assert calls == ["good", "good"]
    assert await authn.authenticate(None, {"Authorization": "Basic abc"}) is None
    assert await authn.authenticate(None, {"Authorization": "Bearer "}) is None


# --- SAR cache -------------------------------------------------------------

async def test_access_review_cache_grants_longer_than_denials_and_coalesces():
    clock, seen = Clock(), []
    gate = asyncio.Event()

    async def review(user, attrs):
        seen.append((user.name, json.dumps(attrs)))
        await gate.wait()
        return Decision(user.name == "hpa")

    authz = Authorizer(review, allowed_ttl=10, denied_ttl=2, clock=clock)
    info = paths.parse("/apis/external.metrics.k8s.io/v1beta1/namespaces/ns/q", "GET")
    hpa, bob = User("hpa"), User("bob")
    pending = [asyncio.ensure_future(authz.authorize(hpa, info)) for _ in range(5)]
    await asyncio.sleep(0)
    gate.set()
    assert all(d.allowed for d in await asyncio.gather(*pending))
    assert len(seen) == 1  # five concurrent asks, one SAR
    assert not (await authz.authorize(bob, info)).allowed
    clock.t += 3
    await authz.authorize(hpa, info)   # still cached (10 s)
    await authz.authorize(bob, info)   # denial expired (2 s)
    assert [s[0] for s in seen] == ["hpa", "bob", "bob"]
    other = paths.parse("/apis/external.metrics.k8s.io/v1beta1/namespaces/other/q", "GET")
    await authz.authorize(hpa, other)
    assert len(seen) == 4  # the namespace is part of the question


async def test_a_failing_access_review_is_not_cached():
    calls = []

    async def review(user, attrs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("apiserver down")
        return Decision(True)

    authz = Authorizer(review)
    info = paths.parse("/apis", "GET")
    with pytest.raises(RuntimeError):
        await authz.authorize(User("u"), info)
    assert (await authz.authorize(User("u"), info)).allowed


# --- queue source ------------------------------------------------------------

def test_broker_url_adds_the_queue_name():
    assert broker_url({"type": "redis", "name": "jobs", "url": "redis://r:6379/0"}) == "redis://r:6379/0?list=jobs"
    assert broker_url({"type": "amqp", "name": "q", "url": "amqp://mq:5672/%2F"}) == "amqp://mq:5672/%2F?queue=q"
    ref = {"type": "redis", "name": "jobs", "urlSecretRef": {"name": "s", "key": "url"}}
    assert broker_url(ref, "redis://:pw@r:6379/0?list=jobs\n") == "redis://:pw@r:6379/0?list=jobs"
    with pytest.raises(QueueSpecError, match="Secret 's' key 'url'"):
        broker_url(ref, None)


def test_stale_readings_become_errors():
    clock = Clock(1000)
    reg = QueueRegistry(clock=clock)
    reg.put("ns", "a", QueueReading(3.0, None, 1000), interval=5)
    assert reg.pools("ns")["a"].value == 3.0 and reg.pools("other") == {}
    clock.t = 1000 + 31
    stale = reg.pools("ns")["a"]
    assert not stale.ok and "31s old" in stale.error
    reg.remove("ns", "a")
    assert len(reg) == 0


# --- pods source -------------------------------------------------------------

def test_only_ready_running_pods_with_the_metrics_port_are_targets():
    ready = pod("a", "ns", {}, 9090)
    unready = pod("b", "ns", {}, 9090, ready=False)
    terminating = pod("c", "ns", {}, 9090)
    terminating["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    pending = pod("d", "ns", {}, 9090)
    pending["status"]["phase"] = "Pending"
    noport = pod("e", "ns", {}, 9090, port_name="http")
    v6 = pod("f", "ns", {}, 9090)
    v6["status"]["podIP"] = "fd00::1"
    found, skipped = podsrc.targets([ready, unready, terminating, pending, noport, v6])
    assert [t.url for t in found] == ["http://127.0.0.1:9090/metrics", "http://[fd00::1]:9090/metrics"]
    assert skipped == [f"pod e has no container port named {names.METRICS_PORT_NAME!r}"]


def test_exposition_is_parsed_with_prometheus_client():
    text = (f"# HELP {names.METRIC_BUSY_RATIO} x\n# TYPE {names.METRIC_BUSY_RATIO} gauge\n"
            f"{names.METRIC_BUSY_RATIO} 0.75\n"
            f'{names.METRIC_QUEUE_DEPTH}{{queue="q"}} 4\n'
            f"{names.METRIC_REQUESTS_PER_SECOND} 2.5e+00\n")
    assert podsrc.parse_exposition(text, podsrc.PodScraper.METRICS) == {
        names.METRIC_BUSY_RATIO: 0.75, names.METRIC_REQUESTS_PER_SECOND: 2.5}
    with pytest.raises(ValueError):
        podsrc.parse_exposition("this is { not exposition", podsrc.PodScraper.METRICS)


# --- certificates ------------------------------------------------------------

def test_serving_certificate_names_the_service_and_chains_to_the_ca():
    ca, serving = certs.self_signed_serving("podsup-metrics-api", "podsup-system")
    cert = serving.cert
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "podsup-metrics-api.podsup-system.svc" in sans.get_values_for_type(x509.DNSName)
    assert ipaddress.ip_address("127.0.0.1") in sans.get_values_for_type(x509.IPAddress)
    assert cert.issuer == ca.cert.subject
    cert.verify_directly_issued_by(ca.cert)
