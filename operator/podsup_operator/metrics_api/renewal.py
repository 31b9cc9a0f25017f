"""Serve a renewed certificate without a restart: every check, the
operator-managed certificate is renewed in its Secret if due
(serving_secret, through ``refresh``), and the files are served again if they
are not what is served (renewed here, by another replica, or by cert-manager
in a mounted Secret the kubelet updated)."""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

from . import lifecycle

log = logging.getLogger("podsup_operator.metrics_api")


def read_both(cert_file: str, key_file: str) -> bytes:
    with open(cert_file, "rb") as c, open(key_file, "rb") as k:
        return c.read() + k.read()


async def renew_once(api: Any, cert_file: str, key_file: str, served: bytes,
                     refresh: Callable[[], Any] | None = None) -> bytes:
    """One check; returns what is served now."""
    if refresh is not None:
        await asyncio.to_thread(refresh)
    current = await asyncio.to_thread(read_both, cert_file, key_file)
    if current != served:
        api.reload_certificate(cert_file, key_file)
        log.info("metrics API: serving the renewed certificate from %s", cert_file)
    return current


async def run(api: Any, cert_file: str, key_file: str, refresh: Callable[[], Any] | None, interval: float) -> None:
    served = await asyncio.to_thread(read_both, cert_file, key_file)
    while True:
        await asyncio.sleep(interval)
        try:
            served = await renew_once(api, cert_file, key_file, served, refresh)
        except Exception as exc:  # noqa: BLE001 - keep serving the current one; try again later
            log.warning("metrics API: checking the serving certificate for renewal failed: %s", lifecycle.reason(exc))
