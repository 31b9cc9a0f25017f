"""podsup's PATH lookup and temporary directory agree with shutil.which and tempfile."""
from __future__ import annotations

import os
import shutil
import tempfile

import pytest

from podsup.host import rundir
from podsup.host.executables import which


@pytest.fixture
def bin_dirs(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for d in (a, b, c):
        d.mkdir()
    (a / "tool").write_text("#!/bin/sh\n")            # not executable
    (b / "tool").write_text("#!/bin/sh\n")
    (b / "tool").chmod(0o755)
    (c / "tool").mkdir()                             # a directory of that name
    (c / "other").write_text("")
    (c / "other").chmod(0o755)
    return tmp_path, [str(a), str(c), str(b), str(c)]


@pytest.mark.parametrize("name", ["tool", "other", "missing", "sh", "/bin/sh", "./nope", "b/tool"])
def test_which_finds_what_shutil_which_finds(bin_dirs, monkeypatch, name):
    root, dirs = bin_dirs
    monkeypatch.chdir(root)
    for path in (os.pathsep.join(dirs), os.pathsep.join(["", *dirs]), os.pathsep.join([*dirs, "/bin", "/usr/bin"])):
        assert which(name, path) == shutil.which(name, path=path), (name, path)
    monkeypatch.setenv("PATH", os.pathsep.join(dirs))
    assert which(name) == shutil.which(name)


def test_temp_root_is_tempfiles_choice(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", None)
    for env in ({"TMPDIR": str(tmp_path)}, {"TMPDIR": "", "TEMP": str(tmp_path)}, {}):
        for name in ("TMPDIR", "TEMP", "TMP"):
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        tempfile.tempdir = None
        assert rundir.temp_root() == tempfile.gettempdir(), env
    monkeypatch.setenv("TMPDIR", str(tmp_path / "missing"))  # not a directory: tempfile decides
    tempfile.tempdir = None
    assert rundir.temp_root() == tempfile.gettempdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))   # set by whoever imported tempfile: kept
    assert rundir.temp_root() == str(tmp_path)


def test_made_directories_are_private_and_fresh(tmp_path):
    one, two = rundir.make_dir("x", root=str(tmp_path)), rundir.make_dir("x", root=str(tmp_path))
    assert one != two and os.path.basename(one).startswith(f"podsup-x-{os.getpid()}-")
    assert os.stat(one).st_mode & 0o777 == 0o700
    rundir.rmtree(one)
    assert not os.path.exists(one) and os.path.exists(two)


def test_rmtree_removes_flat_and_nested_directories_and_ignores_missing_ones(tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    for name in ("a.db", ".podsup-owner", "0.sock"):
        (flat / name).write_text("x")
    (flat / "link").symlink_to(tmp_path)                 # a symlink is unlinked, never followed
    nested = tmp_path / "nested"
    (nested / "sub").mkdir(parents=True)
    (nested / "sub" / "f").write_text("x")
    for path in (flat, nested, tmp_path / "missing"):
        rundir.rmtree(str(path))
        assert not path.exists()
    assert tmp_path.exists()
