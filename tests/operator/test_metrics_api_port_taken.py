"""The metrics API is a part that may fail on its own: ``podsup-operator run``
(a real subprocess) against kmock with the metrics API's port already taken
by another listener. Pools still reconcile; the failure is one log line
without a traceback, ``podsup_operator_metrics_api_up 0`` and a failure count
on the operator's /metrics, and a Warning Event on the operator's own Pod;
when the port frees up the API comes up (retried with backoff) and says so.

Real time: the operator is another process. Waits are polls with deadlines.
"""
from __future__ import annotations

import asyncio
import os
import re
import socket
import sys
from typing import Any

import aiohttp
import pytest

from tests.waiting import stop_subprocess

from .conftest import DEP, ApplyingEmulator, WP, pool_manifest
from .test_cli_run import fetch, free_port, poll
from .test_handlers import raw, url

pytestmark = [pytest.mark.kmock(cls=ApplyingEmulator), pytest.mark.timeout(300)]

POD = {"POD_NAME": "podsup-operator-7d9f-x2x", "POD_NAMESPACE": "podsup-system", "POD_UID": "op-pod-uid"}


def metric(text: str, name: str) -> float | None:
    found = re.search(rf"^{name} (\S+)$", text, re.M)
    return float(found.group(1)) if found else None


def pod_events(kmock: Any, reason: str) -> list[dict]:
    """Events kopf posted on the operator's Pod (read from the requests: kmock has no generateName)."""
    return [r.data for r in kmock["post", kmock.resource("v1/events")]
            if (r.data or {}).get("reason") == reason
            and r.data.get("involvedObject", {}).get("kind") == "Pod"]


async def test_a_taken_metrics_api_port_never_stops_reconciliation(emulator: Any, tmp_path: Any) -> None:
    health, metrics_port = free_port(), free_port()
    taken = socket.socket()
    taken.bind(("0.0.0.0", 0))  # what the operator binds: all interfaces
    taken.listen()
    api_port = taken.getsockname()[1]
    args = [sys.executable, "-m", "podsup_operator.cli", "run", "--all-namespaces",
            "--health-port", str(health), "--metrics-port", str(metrics_port), "--metrics-api-port", str(api_port)]
    log = open(tmp_path / "operator.log", "w+")
    proc = await asyncio.create_subprocess_exec(*args, stdout=log, stderr=asyncio.subprocess.STDOUT,
                                                env={**os.environ, **POD})

    def log_text() -> str:
        log.seek(0)
        return log.read()

    try:
        async with aiohttp.ClientSession() as session:
            async def operator_metrics() -> str | None:
                if proc.returncode is not None:
                    raise AssertionError(f"operator exited {proc.returncode}:\n{log_text()[-3000:]}")
                got = await fetch(session, f"http://127.0.0.1:{metrics_port}/metrics")
                return got[1] if got and got[0] == 200 else None

            async def failing() -> str | None:
                text = await operator_metrics()
                return text if text and (metric(text, "podsup_operator_metrics_api_start_failures_total") or 0) >= 1 \
                    else None
            text = await poll(failing, "a failed metrics API start on the operator's /metrics")
            assert metric(text, "podsup_operator_metrics_api_up") == 0

            # Reconciliation runs although the metrics API does not.
            await poll(lambda: _true(len(emulator["watch", emulator.resource(WP)]) > 0), "the WorkerPool watch")
            async with emulator.post(url(WP), json=pool_manifest()) as resp:
                assert resp.status < 300
            await poll(lambda: _true(raw(emulator, DEP) is not None), "the Deployment of the pool")

            # Users see it: one Warning Event on the operator's Pod, one log line per attempt.
            (warning, *_) = await poll(lambda: _true(pod_events(emulator, "MetricsAPIUnavailable")),
                                       "the MetricsAPIUnavailable Event")
            assert warning["type"] == "Warning"
            assert warning["involvedObject"] == {"apiVersion": "v1", "kind": "Pod", "name": POD["POD_NAME"],
                                                 "namespace": POD["POD_NAMESPACE"], "uid": POD["POD_UID"]}
            assert f"port {api_port} on 0.0.0.0 is already in use" in warning["message"]
            lines = [l for l in log_text().splitlines() if "metrics API not serving" in l]
            assert lines and (f"port {api_port} on 0.0.0.0 is already in use (choose another with "
                              "--metrics-api-port); retrying in 1s (attempt 1)") in lines[0]
            # (kopf's own Events of the pool may fail on kmock, which has no generateName: not ours)
            assert not [l for l in log_text().splitlines() if "podsup_operator.metr" in l and "Traceback" in l]
            assert not [l for l in log_text().splitlines() if not l.startswith("[")], "a log record of many lines"

            # The port frees up: the next attempt binds it.
            taken.close()

            async def serving() -> bool:
                if proc.returncode is not None:
                    raise AssertionError(f"operator exited {proc.returncode}:\n{log_text()[-3000:]}")
                try:  # the self-signed fallback certificate: TLS unverified, this test is about listening
                    async with session.get(f"https://127.0.0.1:{api_port}/healthz", ssl=False,
                                           timeout=aiohttp.ClientTimeout(total=10)) as resp:
                        return resp.status == 200 and await resp.text() == "ok"
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    return False
            await poll(serving, "the metrics API on the freed port", timeout=120)
            text = await operator_metrics()
            assert metric(text, "podsup_operator_metrics_api_up") == 1
            (normal,) = await poll(lambda: _true(pod_events(emulator, "MetricsAPIServing")),
                                   "the MetricsAPIServing Event")
            assert normal["type"] == "Normal" and f"serving on port {api_port}" in normal["message"]
            assert len(pod_events(emulator, "MetricsAPIUnavailable")) == 1  # one per reason, not one per retry
    finally:
        taken.close()
        await stop_subprocess(proc)
        log.close()


async def _true(value: Any) -> Any:
    return value
