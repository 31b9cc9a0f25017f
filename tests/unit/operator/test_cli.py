"""The argument parser of podsup-operator (running is covered in tests/operator)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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


@pytest.mark.parametrize("flag", ["--health-port", "--metrics-port", "--metrics-api-port"])
@pytest.mark.parametrize("value", ["99999", "0", "-1", "http"])
def test_every_port_flag_is_checked_alike(flag, value, capsys):
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["run", flag, value])
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert err.startswith(f"podsup-operator run: error: argument {flag}: ") and "1..65535" in err
    assert len(err.splitlines()) == 1, err


def test_port_flags_take_a_valid_port():
    args = build_parser().parse_args(["run", "--health-port", "1", "--metrics-port", "65535",
                                      "--metrics-api-port", "7443"])
    assert (args.health_port, args.metrics_port, args.metrics_api_port) == (1, 65535, 7443)


@pytest.mark.parametrize("command", [["run"], ["render", "-f", "x.yaml"]])
@pytest.mark.parametrize("value", ["", " ", "op: 1"])
def test_an_empty_or_blank_operator_image_is_refused(command, value, capsys):
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args([*command, "--operator-image", value])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "argument --operator-image: " in err
    assert len(err.splitlines()) == 1, err


def test_an_empty_operator_image_from_the_environment_falls_back_to_the_default(monkeypatch):
    monkeypatch.setenv(config.ENV_OPERATOR_IMAGE, "")
    assert build_parser().parse_args(["run"]).operator_image == config.DEFAULT_OPERATOR_IMAGE


#: ``pip install podsup`` without ``[operator]``: the extra's modules are not
#: there. A meta-path finder in front of every other one makes their import
#: fail as a missing module would (our seam: the real entry point, the real
#: imports, only these names blocked).
WITHOUT_EXTRAS = """
import importlib.abc, sys
BLOCKED = {"kopf", "kubernetes", "cryptography", "celpy", "aiohttp", "redis", "pika"}
class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, NotInstalled())
from podsup_operator.cli import main
sys.exit(main(sys.argv[1:]))
"""
EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "python-queue-worker.yaml"


def without_extras(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", WITHOUT_EXTRAS, *argv], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "KUBECONFIG": os.devnull})


@pytest.mark.parametrize("argv,module", [
    (["render", "-f", str(EXAMPLE)], "celpy"),
    (["run", "--all-namespaces"], "kopf"),
    (["run", "--no-metrics-api"], "kopf"),
])
def test_a_missing_operator_extra_is_one_line_naming_the_install_command(argv, module):
    proc = without_extras(*argv)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == (f"error: podsup-operator {argv[0]} needs the operator extras (module {module!r} is "
                           f"not installed): pip install 'podsup[operator]'\n")
    assert proc.stdout == ""


def test_crd_needs_no_extra():
    proc = without_extras("crd")
    assert proc.returncode == 0, proc.stderr
    assert "kind: CustomResourceDefinition" in proc.stdout


def test_the_metrics_api_port_must_differ_from_the_others_while_it_is_on(capsys):
    from podsup_operator.cli import main

    assert main(["run", "--health-port", str(names.METRICS_API_PORT)]) == 2
    assert capsys.readouterr().err == (f"error: --health-port and --metrics-api-port are both "
                                       f"{names.METRICS_API_PORT}: each listener needs a port of its own\n")
