"""Start a real ``podsup`` process for a test and watch what it says.

    with PodsupProcess(["run", "--workers", "2", "--", sys.executable, WORKER]) as p:
        p.wait_for_line(r"worker started slot=1")
        p.signal(signal.SIGTERM)
        assert p.wait_exit(timeout=30) == 0

By default (``isolate=True``) a ``run`` gets its own ``--http 127.0.0.1:0``
and ``--control <tmp>/control.sock`` (unless the args already name them), so
tests running side by side never collide; ``p.http_port`` (the port the
kernel chose, read from podsup's "serving" line: a port picked by the test
and bound later by podsup could be taken in between) and ``p.control_path``
tell where they are. stdout and stderr are read by threads into ``p.lines``
(each ``(stream, text)``). Everything is killed at exit (podsup first, then
any worker it left behind, including the workers of a podsup that was
SIGKILLed: the family is remembered whenever a signal is sent).
"""
from __future__ import annotations

import glob
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from typing import Sequence

import psutil

from tests.waiting import Timeout, wait_for

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORKERS = os.path.join(REPO, "examples", "workers")


def worker(name: str) -> str:
    """Path of an example worker script (examples/workers/NAME.py)."""
    return os.path.join(WORKERS, name if name.endswith(".py") else name + ".py")


#: podsup's "serving" event, text or JSON format: the bound HTTP port.
_SERVING = (r'serving /metrics, /healthz, /readyz(?: address=[^ ]*:(\d+)$|".*"address": "[^"]*:(\d+)")')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PodsupProcess:
    def __init__(self, args: Sequence[str], env: dict[str, str] | None = None,
                 prefix: Sequence[str] = (), isolate: bool = True, cwd: str | None = None) -> None:
        self.tmp = tempfile.mkdtemp(prefix="podsup-test-")
        args = list(args)
        self._http_port: int | None = None
        self._http_port_logged = False  # True: read the port podsup chose from its output
        self.control_path: str | None = None
        self._family: dict[int, psutil.Process] = {}  # descendants seen when a signal was sent (by pid)
        if isolate and args and args[0] == "run":
            head = args[: args.index("--")] if "--" in args else args
            extra = []
            if not any(a == "--http" or a.startswith("--http=") for a in head):
                self._http_port_logged = True
                extra += ["--http", "127.0.0.1:0"]
            if not any(a == "--control" or a.startswith("--control=") for a in head):
                self.control_path = os.path.join(self.tmp, "control.sock")
                extra += ["--control", self.control_path]
            args = [args[0], *extra, *args[1:]]
        self.args = args
        full_env = dict(os.environ)
        full_env["PYTHONUNBUFFERED"] = "1"
        full_env["PYTHONPATH"] = REPO + os.pathsep + full_env.get("PYTHONPATH", "")
        full_env.update(env or {})
        self.argv = [*prefix, sys.executable, "-m", "podsup", *args]
        self.lines: list[tuple[str, str]] = []
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, env=full_env, cwd=cwd or REPO)
        self.pid = self.proc.pid
        self._readers = [threading.Thread(target=self._read, args=(stream, name), daemon=True)
                         for stream, name in ((self.proc.stdout, "stdout"), (self.proc.stderr, "stderr"))]
        for reader in self._readers:
            reader.start()

    # --- output --------------------------------------------------------------
    def _read(self, stream, name: str) -> None:
        for raw in iter(stream.readline, b""):
            with self._cond:
                self.lines.append((name, raw.decode("utf-8", "replace").rstrip("\n")))
                self._cond.notify_all()
        stream.close()

    def output(self) -> str:
        with self._cond:
            return "\n".join(f"{name}: {text}" for name, text in self.lines)

    def matches(self, pattern: str, stream: str | None = None) -> list[re.Match]:
        regex = re.compile(pattern)
        with self._cond:
            lines = list(self.lines)
        return [m for name, text in lines if stream in (None, name) for m in [regex.search(text)] if m]

    def wait_for_line(self, pattern: str, timeout: float = 30.0, count: int = 1,
                      stream: str | None = None) -> re.Match:
        """Wait until ``count`` lines match ``pattern``; return the last match."""
        found = wait_for(lambda: len(self.matches(pattern, stream)) >= count, timeout,
                         message=lambda: f"{count} line(s) matching {pattern!r}; output so far:\n{self.output()[-4000:]}")
        return self.matches(pattern, stream)[count - 1] if found else None  # type: ignore[return-value]

    @property
    def http_port(self) -> int | None:
        """The HTTP port of an isolated ``run`` (waits for podsup to log it), else None."""
        if self._http_port is None and self._http_port_logged:
            match = self.wait_for_line(_SERVING, timeout=30)
            self._http_port = int(match.group(1) or match.group(2))
        return self._http_port

    # --- processes -----------------------------------------------------------
    def _remember_family(self) -> None:
        try:
            for proc in psutil.Process(self.pid).children(recursive=True):
                self._family[proc.pid] = proc  # a reused pid: the newer process
        except psutil.Error:
            pass

    def signal(self, sig: int) -> None:
        # after a SIGKILL podsup cannot stop its workers, and close() could not
        # find them any more (they are re-parented): remember them first
        self._remember_family()
        os.kill(self.pid, sig)

    def children(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.pid).children()
        except psutil.NoSuchProcess:
            return []

    def wait_exit(self, timeout: float = 30.0) -> int:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise Timeout(f"podsup did not exit within {timeout}s; output:\n{self.output()[-4000:]}") from None
        for reader in self._readers:
            reader.join(5)
        return code

    @property
    def returncode(self) -> int | None:
        return self.proc.poll()

    def close(self) -> None:
        """Kill podsup and everything it left (workers are in their own groups)."""
        self._remember_family()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        for proc in self._family.values():
            try:
                if not proc.is_running():  # gone, or its pid was reused: not ours to kill
                    continue
                os.killpg(proc.pid, signal.SIGKILL)
            except (OSError, psutil.Error):
                pass
            try:
                proc.kill()
            except psutil.Error:
                pass
        for reader in self._readers:
            reader.join(5)
        import shutil
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> "PodsupProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --- what example workers recorded ($RECORD_DIR, examples/workers/_record.py) ---
def records(directory: str, event: str = "start") -> list[dict]:
    """What example workers wrote to $RECORD_DIR (see examples/workers/_record.py)."""
    found = []
    for path in sorted(glob.glob(os.path.join(str(directory), f"{event}.*.json"))):
        with open(path, encoding="utf-8") as handle:
            found.append(json.load(handle))
    return sorted(found, key=lambda r: r["time"])


def by_slot(directory: str, event: str = "start") -> dict[int, list[dict]]:
    slots: dict[int, list[dict]] = {}
    for record in records(directory, event):
        slots.setdefault(int(record["slot"]), []).append(record)
    return slots


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def running_children(pid: int) -> list[int]:
    """Live (non-zombie) direct children of ``pid``."""
    try:
        children = psutil.Process(pid).children()
    except psutil.NoSuchProcess:
        return []
    return [c.pid for c in children if alive(c.pid)]
