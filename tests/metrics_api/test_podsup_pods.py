"""Pods metrics against real podsup processes: three ``podsup run`` supervisors
stand in for three pods (their ``--http`` ports as the pods' metrics ports),
and the HTTPS API answers the HPA's ``pods/%2A/<metric>`` from their live
/metrics — the same numbers podsup exports, never invented."""
from __future__ import annotations

import asyncio
import sys
import time

from podsup import names
from tests.integration.podsup_process import PodsupProcess, worker
from tests.integration.servers import sample
from tests.waiting import wait_for

from .helpers import CUS, HPA_HEADERS, NS, pod

LABELS = {names.POOL_LABEL: "jobs"}
SELECTOR = f"{names.POOL_LABEL}%3Djobs"


async def test_busy_ratio_and_requests_per_second_of_real_podsup_pods(api):
    # busy: every job lasts an hour, so both workers stay busy (ratio 1);
    # idle: workers that never report (ratio 0); work: short jobs (rate > 0).
    busy = PodsupProcess(["run", "--workers", "2", "--", sys.executable, worker("metrics_worker")],
                         env={"JOB_SECONDS": "3600"})
    idle = PodsupProcess(["run", "--workers", "2", "--", sys.executable, worker("sleeper")])
    work = PodsupProcess(["run", "--workers", "2", "--", sys.executable, worker("metrics_worker")],
                         env={"JOB_SECONDS": "0.02"})
    with busy, idle, work:
        await asyncio.to_thread(
            wait_for, lambda: sample(busy.http_port, names.METRIC_BUSY_RATIO) == 1.0
            and sample(idle.http_port, names.METRIC_BUSY_RATIO) == 0.0
            and (sample(idle.http_port, "podsup_workers", state="idle") or 0) == 2
            and (sample(work.http_port, names.METRIC_REQUESTS_PER_SECOND) or 0) > 0,
            timeout=60, message="the three pools to settle")
        api.pods.pods = [pod("busy", NS, LABELS, busy.http_port), pod("idle", NS, LABELS, idle.http_port),
                         pod("work", NS, LABELS, work.http_port)]

        status, body = await api.get(f"{CUS}/namespaces/{NS}/pods/%2A/{names.METRIC_BUSY_RATIO}"
                                     f"?labelSelector={SELECTOR}", headers=HPA_HEADERS)
        assert status == 200, body
        ratio = {i["describedObject"]["name"]: i["value"] for i in body["items"]}
        assert ratio["busy"] == "1" and ratio["idle"] == "0"

        # podsup divides by the time elapsed until its 30 s window is full:
        # wait until two reads 0.2 s apart agree within 10 % before comparing.
        def steady():
            a = sample(work.http_port, names.METRIC_REQUESTS_PER_SECOND)
            time.sleep(0.2)
            b = sample(work.http_port, names.METRIC_REQUESTS_PER_SECOND)
            return a and b and abs(a - b) <= 0.1 * max(a, b)
        await asyncio.to_thread(wait_for, steady, timeout=60, message="a steady request rate")

        async def served_read():
            before = await asyncio.to_thread(sample, work.http_port, names.METRIC_REQUESTS_PER_SECOND)
            status, body = await api.get(f"{CUS}/namespaces/{NS}/pods/%2A/{names.METRIC_REQUESTS_PER_SECOND}"
                                         f"?labelSelector={SELECTOR}", headers=HPA_HEADERS)
            after = await asyncio.to_thread(sample, work.http_port, names.METRIC_REQUESTS_PER_SECOND)
            assert status == 200, body
            return before, {i["describedObject"]["name"]: i for i in body["items"]}, after

        # The rate still moves a little between the three reads (more on a loaded
        # machine, where the workers' pace varies): the served value must be
        # podsup's own within 25 % of the reads just before and just after it.
        # Read again until it is (a deadline, not one roll of the dice); an API
        # that invented or mis-scaled the value never gets there.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while True:
            before, rate, after = await served_read()
            assert rate["busy"]["value"] == "0" and rate["idle"]["value"] == "0"
            served = _quantity(rate["work"]["value"])
            assert served > 0
            if abs(served - before) <= 0.25 * before and abs(served - after) <= 0.25 * after:
                break
            assert loop.time() < deadline, f"served {served} req/s, podsup read {before} before and {after} after"
            await asyncio.sleep(0.2)
        assert rate["work"]["window"] == 30


def _quantity(text: str) -> float:
    return int(text[:-1]) / 1000 if text.endswith("m") else float(text)
