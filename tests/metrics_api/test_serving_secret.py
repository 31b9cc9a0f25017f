"""The operator-managed serving certificate (--tls-secret): created once in a
Secret, kept while good, the serving certificate renewed by the same CA
before it expires, the CA replaced with an overlap, replicas racing on the
Secret agreeing on one, the APIServices' caBundle set; and the running HTTPS
server picking a renewed certificate up on new connections."""
from __future__ import annotations

import asyncio
import base64
import datetime as dt
import socket
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from podsup_operator.metrics_api import certs, handlers, renewal, serving_secret
from podsup_operator.metrics_api.serving_secret import Serving, ensure, plan

SVC, NS = "rel-podsup-operator-metrics-api", "podsup-system"
NOW = dt.datetime.now(dt.timezone.utc)
APISERVICES = ["v1beta1.external.metrics.k8s.io", "v1beta2.custom.metrics.k8s.io"]


def chain_ok(data: dict) -> x509.Certificate:
    """The serving certificate verifies against one CA of the bundle and names the Service."""
    leaf = x509.load_pem_x509_certificate(data["tls.crt"])
    cas = x509.load_pem_x509_certificates(data["ca.crt"])
    errors = []
    for ca in cas:
        try:
            leaf.verify_directly_issued_by(ca)
            break
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
    else:
        raise AssertionError(f"tls.crt is signed by no CA of ca.crt: {errors}")
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert f"{SVC}.{NS}.svc" in sans
    return leaf


def test_nothing_yet_makes_a_ca_and_a_serving_certificate():
    data = plan(None, SVC, NS, NOW)
    assert set(data) == set(serving_secret.KEYS)
    leaf = chain_ok(data)
    assert leaf.not_valid_after_utc - NOW > dt.timedelta(days=360)


def test_a_good_secret_is_kept_as_it_is():
    data = plan(None, SVC, NS, NOW)
    assert plan(data, SVC, NS, NOW) is None
    assert plan(data, SVC, NS, NOW + dt.timedelta(days=300)) is None


def test_the_serving_certificate_is_renewed_by_the_same_ca_before_it_expires():
    data = plan(None, SVC, NS, NOW)
    later = NOW + dt.timedelta(days=340)  # 25 days left < 30
    renewed = plan(data, SVC, NS, later)
    assert renewed["ca.crt"] == data["ca.crt"] and renewed["ca.key"] == data["ca.key"]  # caBundle unchanged
    assert renewed["tls.crt"] != data["tls.crt"]
    chain_ok(renewed)


def test_the_ca_is_replaced_a_year_ahead_with_both_in_the_bundle():
    data = plan(None, SVC, NS, NOW)
    later = NOW + dt.timedelta(days=3650 - 300)
    renewed = plan(data, SVC, NS, later)
    bundle = x509.load_pem_x509_certificates(renewed["ca.crt"])
    old = x509.load_pem_x509_certificate(data["ca.crt"])
    assert len(bundle) == 2 and old in bundle  # a replica still serving the old CA's certificate is trusted
    assert renewed["ca.key"] != data["ca.key"]
    chain_ok(renewed)


@pytest.mark.parametrize("damage", ["tls.key", "ca.key", "garbage", "other service"])
def test_a_partial_foreign_or_corrupt_secret_is_replaced(damage):
    data = plan(None, SVC, NS, NOW)
    if damage in ("tls.key", "ca.key"):
        del data[damage]
    elif damage == "garbage":
        data["tls.crt"] = b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"
    else:
        data = plan(None, "other", NS, NOW)
    renewed = plan(data, SVC, NS, NOW)
    assert renewed is not None
    chain_ok(renewed)


class FakeKube:
    """The Kube seam's three calls, over an in-memory Secret and APIServices;
    ``race`` makes the next write lose to another replica's."""

    def __init__(self):
        self.secret: dict | None = None
        self.version = 0
        self.bundles = {name: None for name in APISERVICES}
        self.race: dict | None = None
        self.writes = 0

    def read_secret_data(self, namespace, name):
        return (dict(self.secret), str(self.version)) if self.secret is not None else (None, None)

    def write_secret_data(self, namespace, name, data, resource_version):
        if self.race is not None:  # another replica wrote first
            self.secret, self.race = self.race, None
            self.version += 1
            return False
        if (resource_version is None) != (self.secret is None) or \
                (resource_version is not None and resource_version != str(self.version)):
            return False
        self.secret, self.version, self.writes = dict(data), self.version + 1, self.writes + 1
        return True

    def request_header_config(self):
        raise ConnectionRefusedError("no cluster in this test")

    async def review_token(self, token):
        return None

    async def review_access(self, user, attrs):
        raise AssertionError("no request is authorized in this test")

    def set_apiservice_ca_bundle(self, name, pem):
        if name not in self.bundles or self.bundles[name] == pem:
            return False
        self.bundles[name] = pem
        return True


def test_ensure_creates_once_and_sets_the_ca_bundle():
    kube = FakeKube()
    first = ensure(kube, NS, "tls", SVC, APISERVICES)
    assert kube.writes == 1 and set(kube.bundles.values()) == {first.ca_bundle_pem}
    second = ensure(kube, NS, "tls", SVC, APISERVICES)
    assert second == first and kube.writes == 1  # a restart, or the other replica: the same certificate


def test_ensure_loses_a_race_and_serves_the_winners_certificate():
    kube = FakeKube()
    kube.race = plan(None, SVC, NS, NOW)
    got = ensure(kube, NS, "tls", SVC, APISERVICES)
    assert got.cert_pem == kube.secret["tls.crt"]
    assert kube.writes == 0 and kube.bundles[APISERVICES[0]] == kube.secret["ca.crt"]


def test_ensure_puts_back_a_ca_bundle_removed_by_a_helm_upgrade():
    kube = FakeKube()
    got = ensure(kube, NS, "tls", SVC, APISERVICES)
    kube.bundles[APISERVICES[1]] = None  # the chart no longer renders caBundle: a 3-way merge dropped it
    ensure(kube, NS, "tls", SVC, APISERVICES)
    assert kube.bundles[APISERVICES[1]] == got.ca_bundle_pem


# --- the running server picks a renewed certificate up ---------------------

class NoPods:
    """The provider's part the server closes on stop."""

    class scraper:
        @staticmethod
        async def close():
            return None


def served_certificate(port: int, ca_pem: bytes) -> x509.Certificate:
    ctx = ssl.create_default_context(cadata=ca_pem.decode())
    ctx.check_hostname = False
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, ctx.wrap_socket(raw) as tls:
        return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


async def test_the_server_serves_the_secrets_certificate_and_a_renewal_without_restart(monkeypatch):
    kube = FakeKube()
    # a Secret another replica made, its serving certificate 10 days from expiry
    ca = certs.new_ca()
    leaf = certs.issue(ca, f"{SVC}.{NS}.svc", dns=certs.service_dns_names(SVC, NS), days=10)
    kube.secret = {"ca.crt": ca.cert_pem, "ca.key": ca.key_pem, "tls.crt": leaf.cert_pem, "tls.key": leaf.key_pem}
    fake = kube
    monkeypatch.setattr(handlers, "SETTINGS", handlers.Settings(host="127.0.0.1", port=0, tls_secret="tls",
                                                                apiservices=APISERVICES, service=SVC, namespace=NS))
    rt = handlers.Runtime(kube=fake, registry=None, provider=NoPods())
    port = await handlers._start_server(rt)
    try:
        first = await asyncio.to_thread(served_certificate, port, ca.cert_pem)
        assert first.serial_number != leaf.cert.serial_number  # renewed at start: 10 days < 30
        assert first.public_bytes(serialization.Encoding.PEM) == fake.secret["tls.crt"]
        # another replica renews the Secret; the periodic check serves it
        other = certs.issue(ca, f"{SVC}.{NS}.svc", dns=certs.service_dns_names(SVC, NS), days=365)
        fake.secret = {**fake.secret, "tls.crt": other.cert_pem, "tls.key": other.key_pem}
        fake.version += 1
        served = await asyncio.to_thread(renewal.read_both, *rt.serving)
        await renewal.renew_once(rt.api, *rt.serving, served, lambda: handlers._managed_files(rt))
        second = await asyncio.to_thread(served_certificate, port, ca.cert_pem)
        assert second.serial_number == other.cert.serial_number
    finally:
        if rt.renewer:
            rt.renewer.cancel()
        if rt.refresher:
            rt.refresher.cancel()
        if rt.api:
            await rt.api.stop()


def test_flags_exclude_each_other():
    with pytest.raises(ValueError, match="exclude each other"):
        handlers.configure(True, 6443, "/etc/hosts", "/etc/hosts", tls_secret="tls")
    with pytest.raises(ValueError, match="--apiservice needs --tls-secret"):
        handlers.configure(True, 6443, None, None, apiservices=["v1beta1.external.metrics.k8s.io"])


# --- against a real API server ($KUBECONFIG), the Kube seam's real calls ----

@pytest.mark.e2e
def test_real_api_server_secret_race_and_apiservice_ca_bundle():
    import os
    import uuid

    kubeconfig = os.environ.get("KUBECONFIG")
    if not kubeconfig or not os.path.isfile(kubeconfig):
        pytest.skip("no cluster: KUBECONFIG is not set to a kubeconfig file")
    import kubernetes

    from podsup_operator.metrics_api.kube import Kube

    try:
        kubernetes.config.load_kube_config()
        client = kubernetes.client.ApiClient()
        kubernetes.client.VersionApi(client).get_code(_request_timeout=5)
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"no cluster answers at KUBECONFIG={kubeconfig}: {exc}")
    kube = Kube(client)
    core = kubernetes.client.CoreV1Api(client)
    reg = kubernetes.client.ApiregistrationV1Api(client)
    ns = f"podsup-tls-{uuid.uuid4().hex[:6]}"
    group = f"podsup-test-{uuid.uuid4().hex[:6]}.example.com"
    apiservice = f"v1.{group}"
    core.create_namespace({"metadata": {"name": ns}})
    reg.create_api_service({"metadata": {"name": apiservice}, "spec": {
        "group": group, "version": "v1", "groupPriorityMinimum": 10, "versionPriority": 10,
        "service": {"name": SVC, "namespace": ns, "port": 443}}})
    try:
        first = ensure(kube, ns, "tls", SVC, [apiservice])
        data, version = kube.read_secret_data(ns, "tls")
        assert data["tls.crt"] == first.cert_pem and version
        # a second replica starting now uses the same certificate
        assert ensure(kube, ns, "tls", SVC, [apiservice]) == first
        # a stale write (an old resourceVersion) loses: 409, False
        assert kube.write_secret_data(ns, "tls", plan(None, SVC, NS, NOW), "1") is False
        assert kube.write_secret_data(ns, "tls", plan(None, SVC, NS, NOW), None) is False  # create: exists
        got = reg.read_api_service(apiservice)
        assert base64.b64decode(got.spec.ca_bundle) == first.ca_bundle_pem
    finally:
        reg.delete_api_service(apiservice)
        core.delete_namespace(ns)
