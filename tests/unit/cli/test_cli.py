"""The subcommand table of ``podsup``."""
from __future__ import annotations

import pytest

import podsup
from podsup import cli
from podsup.core.config import ConfigError


def test_every_subcommand_in_the_table_resolves_to_a_function():
    for name, (target, help_text) in cli.SUBCOMMANDS.items():
        assert callable(cli._resolve(target)), name
        assert help_text


def test_no_arguments_prints_usage_and_exits_2(capsys):
    assert cli.main([]) == 2
    out = capsys.readouterr().out
    assert "usage: podsup {" in out and "run" in out


def test_help_and_version(capsys):
    assert cli.main(["--help"]) == 0
    assert "subcommands:" in capsys.readouterr().out
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"podsup {podsup.__version__}"


def test_unknown_subcommand_is_one_line_and_exit_2(capsys):
    assert cli.main(["fly"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"podsup: unknown subcommand 'fly' (allowed: {', '.join(cli.SUBCOMMANDS)})"]


def test_preload_errors_are_one_line_config_errors(tmp_path, monkeypatch):
    (tmp_path / "app_without_main.py").write_text("x = 1\n")
    (tmp_path / "broken_app.py").write_text("raise RuntimeError('cannot start\\nsecond line')\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match="module 'app_without_main' has no callable 'main'"):
        cli.load_preload("app_without_main:main")
    with pytest.raises(ConfigError, match="cannot import 'broken_app': RuntimeError: cannot start$"):
        cli.load_preload("broken_app:main")
