"""Configuration: precedence flag > env > file > default, and every bad-input message."""
from __future__ import annotations

import signal

import pytest

from podsup import names
from podsup.cli import options as config
from podsup.cli.options import build_parser, load
from podsup.core.config import ConfigError


def cfg(argv, env=None):
    return load(argv, env or {}, check_command=False)


def test_defaults():
    c = cfg(["--", "w"])
    assert c.command == ("w",)
    assert c.workers >= 1
    assert c.stop_signal == signal.SIGTERM and c.graceful_timeout == 30.0
    assert c.http == ("0.0.0.0", names.DEFAULT_HTTP_PORT)
    assert c.normal_exit_codes == frozenset() and c.log_format == "text"
    assert c.min_ready is None and c.ready_needed(4) == 4


def test_precedence_flag_over_env_over_file_over_default(tmp_path):
    path = tmp_path / "podsup.yaml"
    path.write_text("workers: 5\ngraceful_timeout: 7\ndrain-delay: 2\nnormal-exit-codes: [0, 3]\n")
    env = {"PODSUP_WORKERS": "4", "PODSUP_GRACEFUL_TIMEOUT": "9"}
    c = cfg(["--config", str(path), "--workers", "3", "--", "w"], env)
    assert c.workers == 3                      # flag
    assert c.graceful_timeout == 9.0           # env over file
    assert c.drain_delay == 2.0                # file over default
    assert c.normal_exit_codes == {0, 3}
    assert c.backoff_max == 10.0               # default
    assert c.config == str(path)


def test_config_file_named_by_env_and_command_from_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("command: [python3, worker.py]\nlog-format: json\n")
    c = cfg([], {"PODSUP_CONFIG": str(path)})
    assert c.command == ("python3", "worker.py") and c.log_format == "json"


@pytest.mark.parametrize("raw,expected", [
    ("268435456", 268435456), ("256Mi", 256 * 1024**2), ("1G", 10**9), ("1.5Gi", int(1.5 * 1024**3)),
    ("512MB", 512 * 10**6), ("0", 0)])
def test_max_rss_units(raw, expected):
    assert cfg(["--max-rss", raw, "--", "w"]).max_rss == expected


@pytest.mark.parametrize("raw,expected", [("TERM", signal.SIGTERM), ("sigint", signal.SIGINT),
                                          ("QUIT", signal.SIGQUIT), ("10", 10), ("SIGUSR2", signal.SIGUSR2)])
def test_stop_signal_names(raw, expected):
    assert cfg(["--stop-signal", raw, "--", "w"]).stop_signal == expected


@pytest.mark.parametrize("raw,expected", [
    ("30", 30.0), ("1.5", 1.5), ("500ms", 0.5), ("2m", 120.0),
    # Go / Kubernetes duration syntax (kubectl --timeout=1h30m), plus d as in Prometheus
    ("1h30m", 5400.0), ("2m30s", 150.0), ("1.5h", 5400.0), ("1h0.5m", 3630.0), ("1s500ms", 1.5),
    ("1d", 86400.0), ("1d12h", 129600.0), ("365d", 365 * 86400.0)])
def test_durations(raw, expected):
    assert cfg(["--graceful-timeout", raw, "--", "w"]).graceful_timeout == expected


@pytest.mark.parametrize("raw", ["1w", "1y", "1h 30m", "-1s", "1us", "h", "1e3", "1:30", "366d", "8761h"])
def test_a_refused_duration_lists_the_units(raw):
    with pytest.raises(config.ConfigError) as info:
        cfg([f"--max-lifetime={raw}", "--", "w"])
    text = str(info.value)
    assert "\n" not in text and f"invalid --max-lifetime '{raw}'" in text
    assert "units ms, s, m, h, d (e.g. 30, 1.5, 500ms, 2m, 1h30m, 1d)" in text


def test_http_help_says_what_the_default_binds():
    help_text = " ".join(config.build_parser().format_help().split())
    assert "(default 0.0.0.0:9090: every interface, port 9090, what a pod's probes and Prometheus need" in help_text
    assert "The bound address is podsup's first log line" in help_text


def test_http_and_control_can_be_disabled_and_control_follows_xdg_runtime_dir(monkeypatch):
    c = cfg(["--http", "off", "--control", "off", "--", "w"])
    assert c.http is None and c.control is None
    assert cfg(["--http", "[::1]:0", "--", "w"]).http == ("::1", 0)
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/7")
    assert cfg(["--", "w"]).control == "/run/user/7/podsup.sock"
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert cfg(["--", "w"]).control == "/tmp/podsup.sock"


def test_every_option_has_an_env_name_and_a_config_field():
    fields = set(config.Config.__dataclass_fields__)
    for option in config.OPTIONS:
        assert option.env == "PODSUP_" + option.name.upper().replace("-", "_")
        assert option.field in fields


BAD = [
    (["--workers", "-2", "--", "w"], {}, "podsup run: invalid --workers '-2' (from --workers): must be an integer 0..1024"),
    (["--", "w"], {"PODSUP_WORKERS": "x"}, "invalid --workers 'x' (from env PODSUP_WORKERS): must be an integer 0..1024"),
    (["--workers", "1025", "--", "w"], {}, "invalid --workers '1025' (from --workers): must be an integer 0..1024"),
    (["--workers", "٣", "--", "w"], {}, "must be an integer 0..1024"),
    (["--stop-signal", "NOPE", "--", "w"], {}, "invalid --stop-signal 'NOPE' (from --stop-signal): must be a signal name"),
    (["--stop-signal", "STOP", "--", "w"], {}, "invalid --stop-signal 'STOP'"),
    (["--stop-signal", "999", "--", "w"], {}, "invalid --stop-signal '999'"),
    (["--graceful-timeout", "-1", "--", "w"], {}, "invalid --graceful-timeout '-1' (from --graceful-timeout): must be seconds >= 0"),
    (["--crashloop-interval", "0", "--", "w"], {}, "invalid --crashloop-interval '0' (from --crashloop-interval): must be seconds > 0"),
    (["--normal-exit-codes", "a", "--", "w"], {}, "must be a comma-separated list of exit codes 0..255"),
    (["--max-rss", "12XB", "--", "w"], {}, "invalid --max-rss '12XB' (from --max-rss): must be bytes >= 0"),
    (["--http", "1.2.3.4:99999", "--", "w"], {}, "invalid --http '1.2.3.4:99999' (from --http): must be ADDR:PORT"),
    (["--queue", "http://x", "--", "w"], {}, "invalid --queue 'http://x' (from --queue): must be a URL"),
    (["--log-format", "yaml", "--", "w"], {}, "must be one of: text, json"),
    (["--preload", "mod", "--", "w"], {}, "invalid --preload 'mod' (from --preload): must be MODULE:FUNC"),
    (["--min-ready", "-1", "--", "w"], {}, "invalid --min-ready '-1'"),
    (["--max-requests", "1.5", "--", "w"], {}, "invalid --max-requests '1.5'"),
    (["--control", "/" + "x" * 200, "--", "w"], {}, "must be a Unix socket path shorter than 108 bytes"),
    (["--bogus", "--", "w"], {}, "podsup run: unrecognized arguments: --bogus"),
    ([], {}, "missing the worker command"),
    (["--preload", "m:f", "--", "w"], {}, "give either a COMMAND after -- or --preload"),
]


@pytest.mark.parametrize("argv,env,message", BAD)
def test_bad_values_name_the_field_the_source_and_what_is_allowed(argv, env, message):
    with pytest.raises(ConfigError) as info:
        cfg(argv, env)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("argv,env", [
    (["--queue", "http://:pw8SECRET@h/?list=x", "--", "w"], {}),
    (["--", "w"], {"PODSUP_QUEUE": "redis+tls://user:pw8SECRET@h:6379/0"}),
])
def test_a_refused_queue_url_never_shows_its_password(argv, env):
    with pytest.raises(ConfigError) as info:
        cfg(argv, env)
    assert "pw8SECRET" not in str(info.value) and "***@h" in str(info.value)


def test_yaml_off_turns_the_control_socket_and_http_off(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("control: off\nhttp: off\n")  # YAML 1.1: both read as false
    config = cfg(["--config", str(path), "--", "w"], {})
    assert config.control is None and config.http is None


def test_a_config_file_that_is_not_utf8_is_one_line(tmp_path):
    path = tmp_path / "bin.yaml"
    path.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ConfigError) as info:
        cfg(["--config", str(path), "--", "w"], {})
    assert str(info.value) == f"podsup run: invalid --config {str(path)!r}: not UTF-8 text"


def test_bad_config_files(tmp_path):
    missing = tmp_path / "missing.yaml"
    with pytest.raises(ConfigError, match="cannot read it"):
        cfg(["--config", str(missing), "--", "w"])
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        cfg(["--config", str(listing), "--", "w"])
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("wrokers: 3\n")
    with pytest.raises(ConfigError, match=r"unknown key 'wrokers' in .* \(allowed: .*workers"):
        cfg(["--config", str(unknown), "--", "w"])


def test_command_must_be_executable(tmp_path):
    script = tmp_path / "w.sh"
    script.write_text("#!/bin/sh\n")
    with pytest.raises(ConfigError, match="cannot be executed"):
        load(["--", str(script)], {})
    script.chmod(0o755)
    assert load(["--", str(script)], {}).command == (str(script),)
    assert load(["--", "sh", "-c", "true"], {}).command == ("sh", "-c", "true")


def test_the_reference_documents_every_option_with_its_env_name():
    """Every option is a row of the flag table in docs/supervisor-reference.md."""
    import pathlib
    reference = (pathlib.Path(__file__).resolve().parents[3] / "docs" / "supervisor-reference.md").read_text()
    section = reference.split("\n## Options\n", 1)[1].split("\n## ", 1)[0]
    for option in config.OPTIONS:
        assert f"`{option.flag} " in section and f"`{option.env}`" in section, option.name


def test_config_dataclass_defaults_match_the_option_table():
    defaults = config.Config()
    for option in config.OPTIONS:
        if option.name in ("workers", "control"):
            continue  # computed at load time (cgroup, XDG_RUNTIME_DIR)
        assert getattr(defaults, option.field) == option.default, option.name


def test_min_ready_is_capped_by_the_desired_count():
    c = cfg(["--min-ready", "3", "--", "w"])
    assert c.ready_needed(5) == 3 and c.ready_needed(2) == 2


def test_help_shows_plain_defaults():
    text = " ".join(build_parser().format_help().split())  # argparse wraps lines
    assert "[env PODSUP_GRACEFUL_TIMEOUT; default 30]" in text
    assert "[env PODSUP_STOP_SIGNAL; default TERM]" in text
    assert "[env PODSUP_LOG_FORMAT; default text]" in text
    assert "[env PODSUP_WORKERS]" in text  # computed: its help says how


def test_model_default_http_is_what_the_flag_parser_reads_from_names():
    """podsup.core.config cannot import the value parsers (they import its
    bounds): its default --http is spelled out there, and must stay equal."""
    from podsup.core.config import Config
    from podsup.core.values import parse_http
    assert Config().http == parse_http(names.DEFAULT_HTTP)
