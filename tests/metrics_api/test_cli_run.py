"""``podsup-operator run`` as a real subprocess against kmock, with the
metrics API on: the CLI's TLS flags and handler list bring up the HTTPS
server, which reads the front-proxy settings from the (emulated) cluster and
answers an aggregator-style discovery request."""
from __future__ import annotations

import asyncio
import os
import ssl
import sys

import aiohttp
import pytest

from tests.waiting import stop_subprocess

from .helpers import FRONT_PROXY_CN, ReviewingEmulator, free_port, post, url

pytestmark = [pytest.mark.kmock(cls=ReviewingEmulator), pytest.mark.timeout(120)]


async def test_run_serves_the_metrics_api_with_the_given_certificate(emulator, pki, tmp_path):
    await post(emulator, url("v1/configmaps", ns="kube-system"), {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "extension-apiserver-authentication", "namespace": "kube-system"},
        "data": {"requestheader-client-ca-file": pki.front_proxy_ca.cert_pem.decode(),
                 "requestheader-allowed-names": f'["{FRONT_PROXY_CN}"]'}})
    port = free_port()
    cert, key = pki.paths["serving"]
    args = [sys.executable, "-m", "podsup_operator.cli", "run", "--all-namespaces",
            "--health-port", str(free_port()), "--metrics-port", str(free_port()),
            "--metrics-api-port", str(port), "--tls-cert-file", cert, "--tls-key-file", key]
    log = open(tmp_path / "operator.log", "w+")
    proc = await asyncio.create_subprocess_exec(*args, stdout=log, stderr=asyncio.subprocess.STDOUT,
                                                env={**os.environ})
    ctx = ssl.create_default_context(cadata=pki.serving_ca.cert_pem.decode())
    ctx.load_cert_chain(*pki.paths["front_proxy"])
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    try:
        async with aiohttp.ClientSession() as s:
            while True:
                if proc.returncode is not None:
                    log.seek(0)
                    raise AssertionError(f"operator exited {proc.returncode}:\n{log.read()[-3000:]}")
                try:
                    async with s.get(f"https://127.0.0.1:{port}/apis/external.metrics.k8s.io/v1beta1",
                                     ssl=ctx, headers={"X-Remote-User": "system:hpa"}) as r:
                        body = await r.json(content_type=None)
                        break
                except aiohttp.ClientConnectionError:
                    if loop.time() > deadline:
                        log.seek(0)
                        raise AssertionError("metrics API never listened:\n" + log.read()[-3000:])
                    await asyncio.sleep(0.2)
            assert r.status == 200 and body["kind"] == "APIResourceList", body
            async with s.get(f"https://127.0.0.1:{port}/apis/external.metrics.k8s.io/v1beta1", ssl=ctx,
                             headers={"X-Remote-User": "mallory"}) as r:
                assert r.status == 403
    finally:
        await stop_subprocess(proc)
        log.close()
