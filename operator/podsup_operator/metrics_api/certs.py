"""Certificates for the metrics API, generated with ``cryptography``.

The APIService's ``caBundle`` must be the CA that signed our serving
certificate, and that certificate's SANs must include
``<service>.<namespace>.svc`` — the name the aggregator dials. The Helm chart
normally generates both (genCA/genSignedCert) into a Secret the operator
mounts; :func:`self_signed_serving` is the fallback when no files are given
(development, tests), and :func:`issue` also makes the client certificates the
tests present as a front proxy.
"""
from __future__ import annotations

import datetime as _dt
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class KeyPair:
    """A certificate and its private key, both PEM."""
    cert_pem: bytes
    key_pem: bytes

    @property
    def cert(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)

    def write(self, cert_path, key_path) -> None:
        with open(cert_path, "wb") as f:
            f.write(self.cert_pem)
        with open(key_path, "wb") as f:
            f.write(self.key_pem)


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def new_ca(cn: str = "podsup-metrics-api-ca", days: int = 3650) -> KeyPair:
    key = _key()
    now = _dt.datetime.now(_dt.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(_name(cn)).issuer_name(_name(cn))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - _dt.timedelta(minutes=5))
            .not_valid_after(now + _dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _pem_key(key))


def issue(ca: KeyPair, cn: str, *, dns: list[str] = (), ips: list[str] = (), client: bool = False,
          days: int = 365) -> KeyPair:
    """Sign a leaf certificate: serving (SANs) or client (``client=True``)."""
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    ca_cert = ca.cert
    key = _key()
    now = _dt.datetime.now(_dt.timezone.utc)
    usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
    builder = (x509.CertificateBuilder()
               .subject_name(_name(cn)).issuer_name(ca_cert.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - _dt.timedelta(minutes=5))
               .not_valid_after(now + _dt.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                              critical=False))
    sans = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _pem_key(key))


def service_dns_names(service: str, namespace: str) -> list[str]:
    """The names the aggregator (and in-cluster clients) may dial."""
    return [service, f"{service}.{namespace}", f"{service}.{namespace}.svc",
            f"{service}.{namespace}.svc.cluster.local"]


def self_signed_serving(service: str, namespace: str, extra_dns: list[str] = (),
                        ips: list[str] = ("127.0.0.1",)) -> tuple[KeyPair, KeyPair]:
    """A fresh CA and a serving certificate for ``<service>.<namespace>.svc``."""
    ca = new_ca()
    serving = issue(ca, f"{service}.{namespace}.svc",
                    dns=service_dns_names(service, namespace) + list(extra_dns), ips=list(ips))
    return ca, serving
