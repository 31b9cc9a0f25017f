"""``podsup-operator run --leader-elect``: every replica serves, one reconciles.

Every replica starts at once, outside kopf: a /healthz on ``--health-port``
(kopf's liveness endpoint runs only on the leader), the metrics API, its own
WorkerPool watch and pollers (:mod:`.metrics_api.serving`, their writes
gated on leadership). Then it competes for the Lease
(:mod:`.leader_election`); the one that holds it starts ``kopf.operator``.

Losing the Lease ends the process at once with exit code 1, as
controller-runtime does: no half-stopped reconcile writing after another
replica took over; the kubelet restarts the pod clean as a candidate.
SIGTERM (before kopf starts: ours; after: kopf's) stops gracefully, and a
leader hands the Lease back (released) once nothing writes any more.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
import time
import uuid
from typing import Any, Callable

from aiohttp import web

from . import config
from .leader_election import Elector, Timings
from .lease_api import LeaseAPI

log = logging.getLogger("podsup_operator.leader")

#: Exit code of a replica that lost the Lease (the pod restarts, a candidate again).
EXIT_LOST = 1


def identity() -> str:
    """client-go's shape: the pod (or host) name plus a unique suffix, so two
    processes on one host never share an identity."""
    return f"{os.environ.get(config.ENV_POD_NAME) or socket.gethostname()}_{uuid.uuid4().hex[:8]}"


async def _health_server(host: str, port: int) -> web.AppRunner:
    async def ok(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/healthz", ok)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


def _lost(elector: Elector) -> None:
    """The one place a lost Lease acts: log, flush, exit now."""
    log.error("leader election: %s lost the Lease; exiting %d so the pod restarts as a candidate",
              elector.identity, EXIT_LOST)
    logging.shutdown()
    sys.stdout.flush()
    os._exit(EXIT_LOST)


async def run(namespace: str, lease_name: str, timings: Timings, health: tuple[str, int],
              namespaces: list[str], start_operator: Callable[[asyncio.Event], Any],
              client: Any = None) -> int:
    """``start_operator(stop_flag)`` is the kopf.operator coroutine (the CLI builds it)."""
    from .metrics_api import serving
    from .metrics_api.kube import api_client

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    health_runner = await _health_server(*health)
    store = LeaseAPI(client or api_client(), namespace, lease_name, timeout=timings.renew_deadline / 2)
    elector = Elector(store, identity(), timings, monotonic=time.monotonic, wall=time.time)
    log.info("leader election: %s competes for Lease %s/%s", elector.identity, namespace, lease_name)
    services = await serving.start(lambda: elector.leading, namespaces)
    elector_task = asyncio.create_task(elector.run(), name="podsup-leader-election")
    stopped = asyncio.create_task(stop.wait())
    lost = asyncio.create_task(elector.lost.wait())
    acquired = asyncio.create_task(elector.acquired.wait())
    code = 0
    try:
        await asyncio.wait({stopped, lost, acquired}, return_when=asyncio.FIRST_COMPLETED)
        if acquired.done() and not (stopped.done() or lost.done()):
            kopf_stop = asyncio.Event()
            operator = asyncio.create_task(start_operator(kopf_stop), name="podsup-kopf")
            await asyncio.wait({operator, stopped, lost}, return_when=asyncio.FIRST_COMPLETED)
            if lost.done():
                _lost(elector)
            kopf_stop.set()
            try:
                await operator
            except Exception:  # noqa: BLE001 - kopf failed: stop leading, exit non-zero
                log.exception("the operator (kopf) ended with an error")
                code = 1
        if lost.done():
            _lost(elector)
    finally:
        for task in (stopped, lost, acquired):
            task.cancel()
        elector_task.cancel()  # releases the Lease if held: kopf has stopped, the pollers stop reading it as ours
        await asyncio.gather(elector_task, return_exceptions=True)
        await services.stop()
        await health_runner.cleanup()
    return code
