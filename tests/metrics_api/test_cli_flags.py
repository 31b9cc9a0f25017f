"""``podsup-operator run``'s metrics API flags reach the handlers' settings."""
from __future__ import annotations

import pytest

from podsup import names
from podsup_operator import cli
from podsup_operator.metrics_api import handlers


@pytest.fixture(autouse=True)
def fresh_settings(monkeypatch):
    monkeypatch.setattr(handlers, "SETTINGS", handlers.Settings())


def test_the_handler_module_is_registered_for_run():
    assert "podsup_operator.metrics_api.kopf_handlers" in cli.HANDLER_MODULES


def test_defaults_serve_on_the_shared_port():
    args = cli.build_parser().parse_args(["run"])
    handlers.configure(args.metrics_api, args.metrics_api_port, args.tls_cert_file, args.tls_key_file)
    assert handlers.SETTINGS.enabled and handlers.SETTINGS.port == names.METRICS_API_PORT


def test_flags_turn_it_off_and_set_port_and_files(tmp_path):
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.write_text("c")
    key.write_text("k")
    args = cli.build_parser().parse_args(["run", "--no-metrics-api", "--metrics-api-port", "7443",
                                          "--tls-cert-file", str(cert), "--tls-key-file", str(key)])
    handlers.configure(args.metrics_api, args.metrics_api_port, args.tls_cert_file, args.tls_key_file)
    assert handlers.SETTINGS.enabled is False and handlers.SETTINGS.port == 7443
    assert (handlers.SETTINGS.cert_file, handlers.SETTINGS.key_file) == (str(cert), str(key))


@pytest.mark.parametrize("argv,message", [
    (["--tls-cert-file", "/x"], "go together"),
    (["--tls-cert-file", "/nope.crt", "--tls-key-file", "/nope.key"], "does not exist"),
    (["--metrics-api-port", "0"], "1..65535"),
])
def test_bad_flags_are_refused_with_a_message(argv, message, capsys):
    try:
        code = cli.main(["run", *argv])
    except SystemExit as exc:  # refused by the parser (the port rule every port flag shares)
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.splitlines()) == 1, err


@pytest.mark.parametrize("argv,env,message", [
    (["--leader-elect"], {}, "--leader-elect needs the Lease's namespace"),
    (["--leader-elect", "--leader-elect-lease-namespace", "Ops"], {}, "not a lowercase RFC 1123 name"),
    (["--leader-elect-lease-name", "a_b"], {}, "not a lowercase RFC 1123 name"),
    (["--leader-elect", "--leader-elect-retry-period", "0"], {"POD_NAMESPACE": "ops"}, "more than 0"),
    (["--leader-elect", "--leader-elect-lease-duration", "ten"], {"POD_NAMESPACE": "ops"}, "not a number of seconds"),
    (["--leader-elect", "--leader-elect-lease-duration", "8"], {"POD_NAMESPACE": "ops"},
     "--leader-elect-lease-duration (8s) must be longer than --leader-elect-renew-deadline (10s)"),
    (["--leader-elect", "--leader-elect-renew-deadline", "2"], {"POD_NAMESPACE": "ops"},
     "must be longer than 1.2 x --leader-elect-retry-period (2s)"),
])
def test_bad_leader_election_flags_are_one_line_and_exit_2(argv, env, message, capsys, monkeypatch):
    monkeypatch.delenv("POD_NAMESPACE", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    try:
        code = cli.main(["run", *argv])
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.splitlines()) == 1, err


def test_leader_election_defaults_are_client_go_s():
    args = cli.build_parser().parse_args(["run"])
    assert args.leader_elect is False  # standalone unless asked
    assert (args.leader_elect_lease_duration, args.leader_elect_renew_deadline,
            args.leader_elect_retry_period) == (15.0, 10.0, 2.0)
    assert args.leader_elect_lease_name == "podsup-operator" and args.leader_elect_lease_namespace is None
