"""podsup's private runtime directories, and the sweep of those a killed podsup left.

podsup keeps two things in directories of its own under ``$TMPDIR`` (/tmp):
the worker report socket (podsup.host.reports) and the Prometheus multiprocess
directory (podsup.plugins.multiproc). It removes them when it exits, but a podsup
that is SIGKILLed (OOM killer, ``kill -9``, a container runtime giving up)
cannot, and with ``/tmp`` on an emptyDir every container restart would leave
one more behind. So every podsup sweeps at start.

The sweep must never touch what is not ours. A directory is removed only if
all of these hold:

* its name starts with ``podsup-`` and it is a real directory (no symlink)
  directly in the temporary directory, owned by our uid;
* it holds :data:`OWNER_FILE`, written by :func:`make_dir` when podsup created
  it, of the exact form ``podsup <pid> <process start time> <pid namespace>``;
* the owner ran in our pid namespace (two containers of a pod sharing /tmp
  both run podsup as PID 1: a pid of another namespace tells us nothing);
* that owner is gone: no process has the pid, or the pid now belongs to a
  process started at another time (pid reuse; in a container podsup is PID 1
  in every run, so the pid alone proves nothing).

Directories without the owner file (made by anything else, or by an older
podsup) are left alone.
"""
from __future__ import annotations

import os
import stat
import sys

from podsup.host.procfs import start_time

PREFIX = "podsup-"
#: The marker :func:`make_dir` writes; its presence makes a directory sweepable.
OWNER_FILE = ".podsup-owner"


def _start_time(pid: int) -> float | None:
    """The process's start time (seconds since the epoch), None if there is none
    (/proc, not psutil: ``podsup run`` never needs psutil unless --max-rss is set)."""
    return start_time(pid)


def pid_namespace() -> str:
    """Our pid namespace, e.g. ``pid:[4026531836]`` (``-`` where /proc does not say)."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return "-"


def owner_line(pid: int | None = None) -> str:
    pid = os.getpid() if pid is None else pid
    return f"podsup {pid} {_start_time(pid):.2f} {pid_namespace()}\n"


def temp_root() -> str:
    """The temporary directory, as ``tempfile.gettempdir()`` finds it, without
    importing tempfile when the usual answer is at hand: tempfile (with the
    shutil, bz2, lzma and random it imports) costs every pod ~0.9 MB of RSS
    (issue 13). The usual answer: the first of $TMPDIR, $TEMP, $TMP that is
    set, else /tmp, when it is a writable directory; anything else (or
    ``tempfile.tempdir`` set by whoever imported it) is tempfile's to decide."""
    imported = sys.modules.get("tempfile")
    if imported is None or imported.tempdir is None:
        candidate = next((os.environ[n] for n in ("TMPDIR", "TEMP", "TMP") if os.environ.get(n)), "/tmp")
        if os.path.isdir(candidate) and os.access(candidate, os.W_OK | os.X_OK):
            return os.path.abspath(candidate)
    import tempfile
    return tempfile.gettempdir()


def _mkdtemp(prefix: str, root: str) -> str:
    """``tempfile.mkdtemp(prefix=prefix, dir=root)``: a new directory, mode 0700, random suffix."""
    for _ in range(100):
        path = os.path.join(root, prefix + os.urandom(5).hex())
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            continue
        return os.path.abspath(path)
    raise FileExistsError(f"no free name for a temporary directory {prefix}* in {root}")


def rmtree(path: str) -> None:
    """``shutil.rmtree(path, ignore_errors=True)`` for podsup's own directories,
    which are flat (sockets, ``*.db`` files, the owner file): their entries are
    unlinked and the directory removed. Anything else (a subdirectory, an
    error) is shutil's: importing it (with bz2 and lzma) would cost the pod
    ~0.6 MB for the rest of its life, and the start-up sweep after a SIGKILLed
    predecessor would pay it (issue 13)."""
    try:
        with os.scandir(path) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    raise IsADirectoryError(entry.path)
                os.unlink(entry.path)
        os.rmdir(path)
    except OSError:
        if not os.path.lexists(path):
            return
        import shutil
        shutil.rmtree(path, ignore_errors=True)


def make_dir(kind: str, root: str | None = None) -> str:
    """Create a private ``podsup-<kind>-<pid>-XXXX`` directory marked as ours."""
    path = _mkdtemp(f"{PREFIX}{kind}-{os.getpid()}-", root or temp_root())
    with open(os.path.join(path, OWNER_FILE), "w", encoding="ascii") as handle:
        handle.write(owner_line())
    return path


def _owner_gone(marker: str) -> bool:
    try:
        with open(marker, encoding="ascii") as handle:
            text = handle.read(200)
    except (OSError, UnicodeDecodeError):
        return False
    parts = text.split()
    if len(parts) != 4 or parts[0] != "podsup" or not parts[1].isdigit():
        return False
    if parts[3] != pid_namespace():
        return False
    try:
        recorded = float(parts[2])
    except ValueError:
        return False
    started = _start_time(int(parts[1]))
    if started is None:
        return True
    if started < 0:
        return False
    return abs(started - recorded) > 1.0  # the pid was reused by another process


def sweep_stale(root: str | None = None) -> list[str]:
    """Remove podsup directories in ``root`` (default: $TMPDIR) whose owner is
    gone; returns the paths removed. Never raises."""
    root = root or temp_root()
    removed: list[str] = []
    uid = os.getuid()
    try:
        entries = list(os.scandir(root))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(PREFIX):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != uid:
            continue
        if _owner_gone(os.path.join(entry.path, OWNER_FILE)):
            rmtree(entry.path)
            removed.append(entry.path)
    return removed
