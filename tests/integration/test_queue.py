"""The queue-depth probe against real brokers: Redis lists, RabbitMQ queues,
a broker outage and recovery, credentials kept out of logs and metrics, and a
missing client library."""
from __future__ import annotations

import os
import shutil
import sys

import pytest

from podsup import names
from tests.integration.podsup_process import PodsupProcess, worker
from tests.integration.servers import RedisServer, http_get, sample, server_dir, status_json
from tests.waiting import wait_for

WORKER = [sys.executable, worker("metrics_worker")]
DEPTH = names.METRIC_QUEUE_DEPTH


def depth(p: PodsupProcess, queue: str) -> float | None:
    return sample(p.http_port, DEPTH, queue=queue)


def up(p: PodsupProcess, queue: str) -> float | None:
    return sample(p.http_port, "podsup_queue_up", queue=queue)


def test_redis_list_depth(redis_server):
    r = redis_server.client()
    r.delete("jobs")
    r.rpush("jobs", *range(7))
    with PodsupProcess(["run", "--workers", "1", "--queue", f"{redis_server.url}?list=jobs",
                        "--queue-interval", "0.2", "--", *WORKER]) as p:
        wait_for(lambda: depth(p, "jobs") == 7, timeout=30, message="depth 7")
        assert up(p, "jobs") == 1
        r.rpush("jobs", 7, 8, 9)
        wait_for(lambda: depth(p, "jobs") == 10, timeout=30, message="depth 10")
        # podsup status shows the broker's depth too (not only workers' reports)
        wait_for(lambda: status_json(p.control_path)["queues"] == {"jobs": 10.0}, timeout=30,
                 message="the probed depth in podsup status --json")
        r.delete("jobs")
        wait_for(lambda: depth(p, "jobs") == 0, timeout=30, message="depth 0 once drained")


def test_broker_outage_and_recovery_without_leaking_the_password():
    directory = server_dir("redis-outage")
    secret = "Sup3rS3cretPw"
    broker = RedisServer(directory, password=secret)
    broker.start()
    try:
        broker.client().rpush("backlog", "a", "b", "c")
        with PodsupProcess(["run", "--workers", "1", "--queue", f"{broker.url}?list=backlog",
                            "--queue-interval", "0.2", "--", *WORKER]) as p:
            wait_for(lambda: depth(p, "backlog") == 3, timeout=30, message="depth 3")
            broker.stop()
            wait_for(lambda: up(p, "backlog") == 0, timeout=30, message="queue_up 0 while redis is down")
            assert depth(p, "backlog") is None  # a stale depth would mislead the HPA: the series is gone
            assert "backlog" not in status_json(p.control_path)["queues"]  # nor a stale one in status
            p.wait_for_line(r"queue broker unreachable")
            # several failed probes, one error line; podsup keeps serving
            wait_for(lambda: sample(p.http_port, "podsup_queue_probe_errors_total", queue="backlog") >= 5,
                     timeout=30, message="5 failed probes")
            assert len(p.matches(r"queue broker unreachable")) == 1
            assert http_get(p.http_port, "/healthz")[0] == 200
            broker.start()  # same port, empty (no persistence)
            broker.client().rpush("backlog", "x", "y")
            wait_for(lambda: up(p, "backlog") == 1 and depth(p, "backlog") == 2, timeout=60,
                     message="queue_up 1 and the new depth after redis is back")
            p.wait_for_line(r"queue broker answers again")
            assert len(p.matches(r"queue broker unreachable")) == 1
            assert secret not in p.output()
            assert secret not in http_get(p.http_port, "/metrics")[1]
            assert "redis://:***@127.0.0.1" in p.output()
    finally:
        broker.stop()
        shutil.rmtree(directory, ignore_errors=True)


def test_rabbitmq_queue_depth(rabbitmq_server):
    conn = rabbitmq_server.connection()
    try:
        channel = conn.channel()
        channel.queue_declare("emails")
        channel.queue_purge("emails")
        for i in range(4):
            channel.basic_publish("", "emails", str(i).encode())
        with PodsupProcess(["run", "--workers", "1", "--queue", f"{rabbitmq_server.url}?queue=emails",
                            "--queue-interval", "0.2", "--", *WORKER]) as p:
            wait_for(lambda: depth(p, "emails") == 4, timeout=60,
                     message=lambda: f"depth 4; output:\n{p.output()[-2000:]}")
            assert up(p, "emails") == 1
            channel.basic_get("emails", auto_ack=True)
            wait_for(lambda: depth(p, "emails") == 3, timeout=30, message="depth 3 after one get")
    finally:
        conn.close()


def test_rabbitmq_unknown_queue_and_bad_password(rabbitmq_server):
    url = rabbitmq_server.url
    with PodsupProcess(["run", "--workers", "1", "--queue", f"{url}?queue=never-declared",
                        "--queue-interval", "0.2", "--", *WORKER]) as p:
        wait_for(lambda: depth(p, "never-declared") == 0 and up(p, "never-declared") == 1, timeout=60,
                 message="an undeclared queue has no backlog")
    bad = url.replace("guest:guest@", "guest:WrongHorseBattery@")
    with PodsupProcess(["run", "--workers", "1", "--queue", f"{bad}?queue=emails",
                        "--queue-interval", "0.2", "--", *WORKER]) as p:
        wait_for(lambda: up(p, "emails") == 0, timeout=60, message="queue_up 0 with a refused login")
        p.wait_for_line(r"queue broker unreachable")
        assert depth(p, "emails") is None
        assert "WrongHorseBattery" not in p.output()
        assert "WrongHorseBattery" not in http_get(p.http_port, "/metrics")[1]


def test_missing_client_library_is_one_line(tmp_path):
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "pika.py").write_text("raise ImportError('pika hidden by the test')\n")
    env = {"PYTHONPATH": f"{shadow}{os.pathsep}{os.getcwd()}"}
    with PodsupProcess(["run", "--workers", "1", "--queue", "amqp://u:hidden-pw@127.0.0.1:1/%2F?queue=q",
                        "--", *WORKER], env=env) as p:
        assert p.wait_exit(timeout=60) == 2
        out = p.output()
        assert "needs the Python package 'pika'; install podsup[amqp]" in out
        assert "hidden-pw" not in out and "Traceback" not in out
        assert len([line for line in p.lines if line[1].strip()]) == 1
