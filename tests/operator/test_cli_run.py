"""``podsup-operator run`` as a real subprocess against kmock: the CLI wires
kopf, the liveness endpoint and the operator's own /metrics, and reconciles.

Real time (no looptime): the operator is another process. Waits are polls
with deadlines.
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

from .conftest import DEP, WP, ApplyingEmulator, pool_manifest
from .test_handlers import raw, url

# A subprocess operator in real time: its start-up alone can take tens of seconds on a loaded machine.
pytestmark = [pytest.mark.kmock(cls=ApplyingEmulator), pytest.mark.timeout(300)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def poll(predicate: Any, what: str, timeout: float = 60.0) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.2)


async def fetch(session: aiohttp.ClientSession, address: str) -> tuple[int, str] | None:
    try:
        async with session.get(address, timeout=aiohttp.ClientTimeout(total=10)) as resp:
            return resp.status, await resp.text()
    except (aiohttp.ClientError, asyncio.TimeoutError):
        return None


async def test_run_serves_liveness_and_metrics_and_reconciles(emulator: Any, tmp_path: Any) -> None:
    health, metrics = free_port(), free_port()
    # --all-namespaces: kmock cannot parse the namespace listing kopf makes for
    # --namespace (GET /api/v1/namespaces); namespaced runs are covered in tests/e2e.
    args = [sys.executable, "-m", "podsup_operator.cli", "run", "--all-namespaces", "--log-format", "json",
            "--health-port", str(health), "--metrics-port", str(metrics), "--operator-image", "op:e2e"]
    help_proc = await asyncio.create_subprocess_exec(*args[:4], "--help", stdout=asyncio.subprocess.PIPE)
    help_text = (await help_proc.communicate())[0].decode()
    if "--no-metrics-api" in help_text:
        args.append("--no-metrics-api")  # not this test's subject
    log = open(tmp_path / "operator.log", "w+")
    proc = await asyncio.create_subprocess_exec(*args, stdout=log, stderr=asyncio.subprocess.STDOUT,
                                                env={**os.environ})
    try:
        async with aiohttp.ClientSession() as session:
            async def healthy():
                if proc.returncode is not None:
                    log.seek(0)
                    raise AssertionError(f"operator exited {proc.returncode}:\n{log.read()[-3000:]}")
                got = await fetch(session, f"http://127.0.0.1:{health}/healthz")
                return got and got[0] == 200
            await poll(healthy, "the liveness endpoint")
            try:
                await poll(lambda: _true_if(len(emulator["watch", emulator.resource(WP)]) > 0), "the watch")
            except AssertionError:
                log.seek(0)
                raise AssertionError("no watch; operator log:\n" + log.read()[-4000:])

            async with emulator.post(url(WP), json=pool_manifest()) as resp:
                assert resp.status < 300
            await poll(lambda: _true_if(raw(emulator, DEP) is not None), "the Deployment")
            dep = raw(emulator, DEP)
            assert dep["spec"]["template"]["spec"]["initContainers"][0]["image"] == "op:e2e"

            async def reconciled():
                got = await fetch(session, f"http://127.0.0.1:{metrics}/metrics")
                if not got:
                    return None
                found = re.search(r'^podsup_operator_reconciles_total\{trigger="create"\} (\S+)$', got[1], re.M)
                return got[1] if found and float(found.group(1)) >= 1 else None
            text = await poll(reconciled, "podsup_operator_reconciles_total{trigger=create}")
            assert "podsup_operator_reconcile_duration_seconds_bucket" in text
            assert 'podsup_operator_writes_total{op="apply"}' in text
    finally:
        await stop_subprocess(proc)
        log.close()
    log_text = (tmp_path / "operator.log").read_text()
    assert '"message"' in log_text, "--log-format json did not produce JSON logs"


async def _true_if(value: bool) -> bool:
    return value
