"""The argument parser of podsup-operator (running is covered in tests/operator)."""
from __future__ import annotations

import pytest

from podsup import names
from podsup_operator import config
from podsup_operator.cli import HANDLER_MODULES, build_parser


def test_run_defaults():
    args = build_parser().parse_args(["run"])
    assert args.namespace == [] and not args.all_namespaces
    assert args.health_port == names.OPERATOR_HEALTH_PORT and args.metrics_port == names.OPERATOR_METRICS_PORT
    assert args.log_format == "text"


def test_namespaces_repeat_and_exclude_all_namespaces(capsys):
    args = build_parser().parse_args(["run", "--namespace", "a", "-n", "b", "--log-format", "json"])
    assert args.namespace == ["a", "b"] and args.log_format == "json"
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["run", "--namespace", "a", "--all-namespaces"])
    assert info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_operator_image_from_environment(monkeypatch):
    monkeypatch.setenv(config.ENV_OPERATOR_IMAGE, "registry.example/op:7")
    assert build_parser().parse_args(["run"]).operator_image == "registry.example/op:7"
    assert build_parser().parse_args(["render", "-f", "x"]).operator_image == "registry.example/op:7"
    assert build_parser().parse_args(["run", "--operator-image", "o:1"]).operator_image == "o:1"


def test_handler_modules_include_the_workerpool_handlers():
    assert "podsup_operator.handlers" in HANDLER_MODULES
