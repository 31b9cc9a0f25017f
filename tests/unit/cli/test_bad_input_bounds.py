"""Bad values found by trying podsup for real: each is one line naming the
field, never a traceback nor a value taken by surprise."""
from __future__ import annotations

import os

import pytest

from podsup.cli.options import load
from podsup.core.config import ConfigError
from podsup.plugins.queueprobe import QueueConfigError, RedisProbe, AmqpProbe, parse_queue_url


def cfg(argv, env=None):
    return load(argv, env or {}, check_command=False)


@pytest.mark.parametrize("argv, message", [
    (["--max-rss", "9" * 400], "invalid --max-rss '9999"),                # float inf before: OverflowError
    (["--max-rss", "9" * 400], "at most 9223372036854775807"),
    (["--queue-interval", "9300000000"], "at most 31536000 (a year)"),  # past threading.TIMEOUT_MAX
    (["--graceful-timeout", "400d"], "must be seconds >= 0"),
    (["--stop-signal", "\u0663"], "invalid --stop-signal"),               # an Arabic-Indic 3
    (["--stop-signal", "\u00b2"], "must be a signal name"),               # a superscript 2
    (["--stop-signal", "1" * 5000], "must be a signal name"),             # Python's 4300-digit limit
    (["--normal-exit-codes", "\u0663"], "exit codes 0..255"),
    (["--normal-exit-codes", "\u00b2"], "exit codes 0..255"),
    (["--http", "127.0.0.1:\u0669\u0660\u0669\u0660"], "must be ADDR:PORT"),
])
def test_out_of_range_and_non_ascii_values_are_refused_in_one_line(argv, message):
    with pytest.raises(ConfigError) as info:
        cfg([*argv, "--", "w"])
    text = str(info.value)
    assert message in text and "\n" not in text and len(text) < 400


def write(tmp_path, text: str) -> str:
    path = tmp_path / "podsup.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("text, message", [
    ("workers: " + "[" * 10000 + "]" * 10000 + "\n", "nested too deeply"),
    ("control: [a, b]\n", "invalid 'control'"),
    ("control: 123\n", "invalid --control 123"),
    ("workers: {a: 1}\n", "invalid 'workers'"),
    ("command: [sleep, true]\n", "invalid 'command'"),
])
def test_config_file_values_of_the_wrong_shape_are_refused(tmp_path, text, message):
    with pytest.raises(ConfigError) as info:
        cfg(["--config", write(tmp_path, text)])
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_yaml_alias_bomb_is_refused_quickly_and_briefly(tmp_path):
    # 366 bytes that expand to 10^8 items once anything walks them (e.g. a repr)
    anchors = ["&x0 [" + ", ".join(["1"] * 10) + "]"]
    anchors += [f"&x{i} [" + ", ".join([f"*x{i - 1}"] * 10) + "]" for i in range(1, 8)]
    path = write(tmp_path, "workers: [" + ", ".join(anchors) + "]\n")
    with pytest.raises(ConfigError) as info:
        cfg(["--config", path])
    assert "invalid 'workers'" in str(info.value) and len(str(info.value)) < 400


def test_a_fifo_as_config_file_is_refused_instead_of_blocking(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="not a regular file"):
        cfg(["--config", str(fifo)])


@pytest.mark.parametrize("url, message", [
    ("redis://127.0.0.1:1/0?list=q&socket_timeout=abc", "Invalid value for 'socket_timeout'"),
    ("redis://127.0.0.1:1/0?list=q&db=abc", "Invalid value for 'db'"),
    ("redis://127.0.0.1:1/0?list=q&foo=bar", "unknown option 'foo' in the URL"),
])
def test_bad_redis_url_options_fail_at_start_not_at_every_probe(url, message):
    pytest.importorskip("redis")
    with pytest.raises(QueueConfigError) as info:
        RedisProbe(parse_queue_url(url))
    assert message in str(info.value)


def test_a_bad_amqp_url_option_fails_at_start():
    pytest.importorskip("pika")
    with pytest.raises(QueueConfigError, match="heartbeat"):
        AmqpProbe(parse_queue_url("amqp://127.0.0.1:1/?queue=q&heartbeat=abc"))


@pytest.mark.parametrize("name", ["\udcff", "a\x7fb", "x" * 201])
def test_a_queue_name_that_cannot_be_a_label_value_is_refused(name):
    with pytest.raises(QueueConfigError, match="printable UTF-8"):
        parse_queue_url(f"redis://127.0.0.1:6379/0?list={name}")


def test_a_preload_flag_wins_over_the_config_files_command(tmp_path):
    path = write(tmp_path, "command: [php, worker.php]\n")
    c = cfg(["--config", path, "--preload", "app:main"])
    assert c.preload == "app:main" and not c.command
    assert list(cfg(["--config", path]).command) == ["php", "worker.php"]  # without the flag: the file's
    with pytest.raises(ConfigError, match="not both"):  # both in the file: still ambiguous
        cfg(["--config", write(tmp_path, "command: [php, w.php]\npreload: app:main\n")])


@pytest.mark.parametrize("content, message", [
    (b"", "the file is empty"),
    (b"#!\n", "names no interpreter"),
    (b"#!/nonexistent/php\n<?php\n", "#! interpreter /nonexistent/php does not exist"),
    (b"#!/usr/bin/env no-such-interpreter-here\n", "runs 'no-such-interpreter-here' through env"),
])
def test_a_command_exec_would_always_refuse_is_one_line_at_start(tmp_path, content, message):
    from podsup.cli.options import check_executable

    script = tmp_path / "worker"
    script.write_bytes(content)
    script.chmod(0o755)
    with pytest.raises(ConfigError, match="cannot be executed") as info:
        check_executable(str(script))
    assert message in str(info.value)


def test_a_runnable_script_passes_the_start_check(tmp_path):
    from podsup.cli.options import check_executable

    script = tmp_path / "worker"
    script.write_bytes(b"#!/usr/bin/env sh\necho ok\n")
    script.chmod(0o755)
    assert check_executable(str(script)) == str(script)
