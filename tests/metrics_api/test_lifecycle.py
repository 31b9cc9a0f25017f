"""The metrics API's supervisor (a part that may fail on its own): backoff
policy, the one-line description of real start failures (a real taken port,
a real unusable certificate), and retry-until-serving with the sleep seam
recording the delays instead of waiting."""
from __future__ import annotations

import asyncio
import socket

import pytest

from podsup_operator.metrics_api import handlers, lifecycle
from podsup_operator.metrics_api.server import tls_context


def test_backoff_doubles_from_one_second_up_to_its_cap():
    backoff = lifecycle.Backoff(first=1.0, factor=2.0, cap=30.0)
    assert [backoff.delay(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 30, 30, 30]
    assert handlers.BACKOFF.cap <= 60  # a freed port is picked up within a minute


async def test_a_taken_port_is_described_in_one_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError) as info:
            await asyncio.get_running_loop().create_server(asyncio.Protocol, "127.0.0.1", port)
    text = lifecycle.describe(info.value, "127.0.0.1", port)
    assert text == f"port {port} on 127.0.0.1 is already in use (choose another with --metrics-api-port)"


@pytest.mark.parametrize("problem", ["garbage", "missing"])
async def test_an_unusable_certificate_is_a_start_error_naming_the_files(tmp_path, pki, problem, monkeypatch):
    cert = tmp_path / "tls.crt"
    if problem == "garbage":
        cert.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    key = pki.paths["serving"][1]
    monkeypatch.setattr(handlers, "SETTINGS", handlers.Settings(host="127.0.0.1", port=0, cert_file=str(cert),
                                                                key_file=key))
    rt = handlers.Runtime(kube=NoCluster(), registry=None, provider=None)
    with pytest.raises(lifecycle.StartError) as info:
        await handlers._start_server(rt)
    text = lifecycle.describe(info.value, "127.0.0.1", 0)
    assert text.startswith(f"its TLS certificate {cert} and key {key} cannot be used (") and "\n" not in text
    assert rt.api is None and rt.port is None


class NoCluster:
    def request_header_config(self):
        raise ConnectionRefusedError("no cluster in this test")


class Recorder:
    def __init__(self):
        self.calls = []

    async def failed(self, message, failures, retry_in):
        self.calls.append(("failed", message, failures, retry_in))

    async def serving(self, port, failures):
        self.calls.append(("serving", port, failures))


async def test_the_supervisor_retries_with_backoff_until_the_server_listens():
    attempts, delays = [], []

    async def start():
        attempts.append(len(attempts))
        if len(attempts) <= 3:
            raise OSError(98, "Address already in use")
        return 7443

    async def sleep(delay):
        delays.append(delay)

    report = Recorder()
    sup = lifecycle.Supervisor(start, lambda exc: f"taken ({exc.strerror})", report,
                               lifecycle.Backoff(first=1, factor=2, cap=3), sleep=sleep)
    assert await sup.run() == 7443
    assert delays == [1, 2, 3]
    assert report.calls == [("failed", "taken (Address already in use)", 1, 1),
                            ("failed", "taken (Address already in use)", 2, 2),
                            ("failed", "taken (Address already in use)", 3, 3),
                            ("serving", 7443, 3)]
    assert sup.state is lifecycle.State.SERVING and sup.failures == 3


async def test_cancelling_the_supervisor_while_it_waits_stops_the_retries():
    waiting = asyncio.Event()

    async def start():
        raise OSError(98, "Address already in use")

    async def sleep(delay):
        waiting.set()
        await asyncio.Event().wait()  # until cancelled

    sup = lifecycle.Supervisor(start, str, Recorder(), sleep=sleep)
    task = asyncio.create_task(sup.run())
    await asyncio.wait_for(waiting.wait(), timeout=10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sup.state is lifecycle.State.STOPPED and sup.failures == 1
