"""Queue URL parsing, credential redaction, outage logging (no broker needed;
the real brokers are in tests/integration/test_queue.py)."""
from __future__ import annotations

import builtins
import logging

import pytest

from podsup.plugins import queueprobe
from podsup.plugins.queueprobe import (OutageLog, QueueBoard, QueueConfigError, parse_queue_url, probe_once, redact,
                               require_library)


def test_parse_redis_and_amqp():
    t = parse_queue_url("redis://:hunter2@127.0.0.1:6380/2?list=jobs")
    assert (t.kind, t.name, t.broker_url) == ("redis", "jobs", "redis://:hunter2@127.0.0.1:6380/2")
    assert t.display == "redis://:***@127.0.0.1:6380/2?list=jobs"
    t = parse_queue_url("amqp://guest:p%40ss@rabbit:5672/%2F?queue=emails&heartbeat=30")
    assert (t.kind, t.name) == ("amqp", "emails")
    assert t.broker_url == "amqp://guest:p%40ss@rabbit:5672/%2F?heartbeat=30"
    assert "p%40ss" not in repr(t) and "p@ss" not in repr(t)


@pytest.mark.parametrize("url,message", [
    ("http://x/?list=a", "scheme must be one of redis, rediss, amqp, amqps (got 'http')"),
    ("redis://127.0.0.1:6379/0", "needs exactly one ?list=NAME"),
    ("redis://127.0.0.1:6379/0?list=a&list=b", "needs exactly one ?list=NAME"),
    ("amqp://u:secret@h/?list=a", "needs exactly one ?queue=NAME"),
    ("redis://127.0.0.1:6379/zero?list=a", "the path must be a database number"),
    ("redis://:secret@h:99999/0?list=a", "out of range"),
    ("redis:///0?list=a", "missing host"),
])
def test_bad_urls_are_one_line_without_secrets(url, message):
    with pytest.raises(QueueConfigError) as info:
        parse_queue_url(url)
    text = str(info.value)
    assert message in text and "secret" not in text and "\n" not in text


def test_redact():
    assert redact("amqp://user:pw@h:1/v?queue=q") == "amqp://user:***@h:1/v?queue=q"
    assert redact("redis://h:1/0?list=q") == "redis://h:1/0?list=q"


def test_missing_extra_names_it(monkeypatch):
    real_import = builtins.__import__

    def no_pika(name, *args, **kwargs):
        if name == "pika":
            raise ImportError("No module named 'pika'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pika)
    monkeypatch.delitem(__import__("sys").modules, "pika", raising=False)
    target = parse_queue_url("amqp://u:topsecret@h/?queue=q")
    with pytest.raises(QueueConfigError, match=r"needs the Python package 'pika'; install podsup\[amqp\]") as info:
        require_library(target)
    assert "topsecret" not in str(info.value)


class FlakyProbe:
    def __init__(self, target):
        self.target = target
        self.results: list = []

    def depth(self):
        result = self.results.pop(0)
        if isinstance(result, Exception):
            raise result
        return result


def test_outage_is_logged_once_and_recovery_once(caplog):
    target = parse_queue_url("amqp://u:topsecret@h/?queue=q")
    probe, board, outage = FlakyProbe(target), QueueBoard(), OutageLog(target)
    probe.results = [5.0, ConnectionError("auth topsecret refused"), ConnectionError("again"), 7.0]
    with caplog.at_level(logging.INFO, logger="podsup.queue"):
        probe_once(probe, board, outage)
        assert board.readings() == {"q": (5.0, True)}
        probe_once(probe, board, outage)
        probe_once(probe, board, outage)
        assert board.readings() == {"q": (None, False)}
        probe_once(probe, board, outage)
    assert board.readings() == {"q": (7.0, True)}
    assert board.errors() == {"q": 2}
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "answers again" in caplog.text
    assert "topsecret" not in caplog.text and "auth *** refused" in caplog.text


def test_interval_must_be_positive():
    with pytest.raises(QueueConfigError, match="--queue-interval"):
        queueprobe.QueuePoller([], 0, QueueBoard())
