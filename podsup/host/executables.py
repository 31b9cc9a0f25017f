"""Finding a program on PATH, as ``shutil.which`` does, without importing shutil.

``podsup run`` resolves its COMMAND (and a script's ``#!/usr/bin/env NAME``)
at start. shutil imports bz2 and lzma (their C libraries too): ~0.6 MB of RSS
that every pod would keep for one lookup (issue 13's profile). POSIX only, as
podsup is.
"""
from __future__ import annotations

import os


def _runnable(path: str) -> bool:
    return os.path.exists(path) and os.access(path, os.X_OK) and not os.path.isdir(path)


def which(program: str, path: str | None = None) -> str | None:
    """``shutil.which(program, path=path)`` on POSIX: a name with a slash is
    checked as given; else the first runnable file of that name in PATH
    (``os.defpath`` when PATH is unset or empty; an empty entry is the
    current directory), each directory tried once."""
    if os.path.dirname(program):
        return program if _runnable(program) else None
    if path is None:
        path = os.environ.get("PATH") or os.defpath
    if not path:
        return None
    seen: set[str] = set()
    for directory in path.split(os.pathsep):
        if directory in seen:
            continue
        seen.add(directory)
        candidate = os.path.join(directory, program)
        if _runnable(candidate):
            return candidate
    return None
