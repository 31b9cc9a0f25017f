"""Fixtures for the metrics API tests: certificates generated with
cryptography, and a real redis-server per test (tests/integration/servers.py's
RedisServer: free loopback port, waits for PING, never a fixed sleep)."""
from __future__ import annotations

import pytest

from podsup_operator.metrics_api import certs

from tests.integration.servers import RedisServer

from .helpers import FRONT_PROXY_CN, PKI


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> PKI:
    d = tmp_path_factory.mktemp("pki")
    serving_ca, serving = certs.self_signed_serving("podsup-metrics-api", "podsup-system")
    fp_ca = certs.new_ca("front-proxy-ca")
    rogue_ca = certs.new_ca("front-proxy-ca")  # same name, different key
    pki = PKI(serving_ca, serving, fp_ca,
              certs.issue(fp_ca, FRONT_PROXY_CN, client=True),
              certs.issue(fp_ca, "someone-else", client=True),
              certs.issue(rogue_ca, FRONT_PROXY_CN, client=True))
    for name in ("serving_ca", "serving", "front_proxy", "front_proxy_other_cn", "rogue"):
        kp = getattr(pki, name)
        kp.write(d / f"{name}.crt", d / f"{name}.key")
        pki.paths[name] = (str(d / f"{name}.crt"), str(d / f"{name}.key"))
    return pki


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(str(tmp_path))
    server.start()
    try:
        yield server
    finally:
        server.stop()
