"""The README's set-up commands install into the project's virtual
environment, never into the system Python, and `make podsup-binary` brings
its own pinned builder. (The real proof is CI: `make test` in a fresh clone.)"""
from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def dry_run(*targets: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHON", "MAKEFLAGS", "MAKELEVEL")}
    proc = subprocess.run(["make", "-n", *targets], cwd=ROOT, capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_demo_and_test_run_the_projects_virtualenv_python():
    commands = dry_run("demo", "test").splitlines()
    venv_python = f"{ROOT}/.venv/bin/python"
    assert f"{venv_python} examples/demo.py" in commands
    assert f"{venv_python} -m pytest -q" in commands
    assert commands.count("bash scripts/install-deps.sh") == 1  # deps once, before both


def test_no_script_pip_installs_into_anything_but_the_given_or_project_python():
    deps = (ROOT / "scripts" / "install-deps.sh").read_text()
    assert 'bash scripts/venv.sh\nPY="$venv/bin/python"' in deps
    installs = [line.strip() for line in deps.splitlines() if "pip install" in line and not line.lstrip().startswith("#")]
    assert installs and all(line.startswith('"$PY" -m pip install') for line in installs), installs
    assert "venv" in (ROOT / "scripts" / "venv.sh").read_text()
    assert ".venv/" in (ROOT / ".gitignore").read_text().splitlines()


def test_the_pyinstaller_version_is_pinned_in_one_place():
    pins = {}
    for path in [ROOT / "Makefile", ROOT / "Dockerfile", ROOT / "pyproject.toml", *(ROOT / "scripts").iterdir()]:
        found = re.findall(r"pyinstaller==([0-9.]+)|PYINSTALLER_VERSION=([0-9.]+)", path.read_text(), re.I)
        if found:
            pins[path.name] = found
    assert list(pins) == ["build-binary.sh"], pins
    assert len(pins["build-binary.sh"]) == 1


def test_build_binary_never_pip_installs_into_a_system_python(tmp_path):
    """A Python without PyInstaller that is not a virtualenv: one line, exit 2,
    nothing installed (here: the test's interpreter with site-packages off)."""
    bare = tmp_path / "bare-python"
    bare.write_text(f'#!/bin/sh\nexec "{sys._base_executable}" -I -S "$@"\n')
    bare.chmod(0o755)
    proc = subprocess.run(["bash", "scripts/build-binary.sh", "--builder"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHON": str(bare)})
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "lacks PyInstaller 6." in proc.stderr
    assert "not a virtualenv" in proc.stderr and "make podsup-binary" in proc.stderr
