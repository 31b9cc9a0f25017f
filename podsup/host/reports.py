"""The worker report channel: a Unix datagram socket, one line per datagram.

Workers find its path in ``PODSUP_REPORT`` and may send ``heartbeat``,
``busy``, ``idle``, ``done <seconds>`` (``done`` alone is accepted: duration
unknown) or ``queue <name> <depth>``. The sender is identified by the kernel
(SO_PASSCRED / SCM_CREDENTIALS), not by anything it writes, so a worker
cannot speak for another. Parsing is a pure function
(podsup.core.protocol); a malformed datagram is counted by the loop and
otherwise ignored.

Each worker has its own socket (:class:`ReportSockets`: one per worker
life, closed when that worker is reaped), so a report is still placed when
its sender cannot be looked up any more: a shell worker sends each line from a
short-lived ``socat``, which its shell has often reaped before podsup reads
the datagram; the kernel still names the pid, but the process (and so its
process group, the worker) is gone. Such a report belongs to the worker whose
socket it was sent to — never to that worker's successor in the slot, which
has a socket of its own. A sender that can be looked up is placed by its
process group, whatever socket it used.
"""
from __future__ import annotations

import os
import socket
import struct

MAX_DATAGRAM = 4096
_CREDS = struct.Struct("3i")  # struct ucred: pid, uid, gid
_CREDS_SPACE = socket.CMSG_SPACE(_CREDS.size)


#: The longest path a Unix socket can bind to (sun_path is 108 bytes with its NUL).
MAX_SOCKET_PATH = 107
#: The longest socket name :class:`ReportSockets` makes (a base-36 worker
#: number: seven digits last for 78 billion spawns).
LONGEST_WORKER_NAME = "zzzzzzz.sock"
#: Receive buffer of one worker's report socket.
RCVBUF_BYTES = 1 << 18
#: Where the report directory goes when ``$TMPDIR`` is too deep for a socket path.
FALLBACK_ROOT = "/tmp"


class ReportSocketError(Exception):
    """The report socket cannot be bound anywhere (one line for the user)."""


def _fits(directory: str) -> bool:
    # the directory podsup makes adds "podsup-report-<pid>-XXXXXXXX"
    return len(os.fsencode(os.path.join(directory, "podsup-report-4194304-xxxxxxxx", LONGEST_WORKER_NAME))) \
        <= MAX_SOCKET_PATH


def report_root(tmpdir: str | None = None) -> str | None:
    """The directory to make the report directory in.

    ``$TMPDIR`` as usual; but a Unix socket path cannot exceed 107 bytes, and a
    deep ``$TMPDIR`` (a CI runner's or a test's) would make podsup unable to
    start. Then the report socket goes under /tmp, if that is writable.
    """
    from podsup.host.rundir import temp_root

    tmpdir = temp_root() if tmpdir is None else tmpdir
    if _fits(tmpdir):
        return None  # the default: the temporary directory (rundir.temp_root)
    if os.path.isdir(FALLBACK_ROOT) and os.access(FALLBACK_ROOT, os.W_OK | os.X_OK):
        return FALLBACK_ROOT
    raise ReportSocketError(
        f"podsup run: TMPDIR={tmpdir} is too long for the worker report socket "
        f"(a Unix socket path has at most {MAX_SOCKET_PATH} bytes) and {FALLBACK_ROOT} is not writable: "
        "set TMPDIR to a shorter writable directory")


def make_report_dir() -> str:
    """A private report directory (swept at the next start if podsup is SIGKILLed)."""
    from podsup.host import rundir
    root = report_root()
    rundir.sweep_stale(root)  # directories of podsups that were SIGKILLed
    directory = rundir.make_dir("report", root=root)
    os.chmod(directory, 0o755)  # workers may run as another user
    return directory


#: Where Linux keeps how many datagrams one Unix socket queues (per network namespace).
DGRAM_QLEN_PATH = "/proc/sys/net/unix/max_dgram_qlen"


def datagram_queue_limit(path: str = DGRAM_QLEN_PATH) -> int:
    """Datagrams a report socket holds before a worker's ``sendto`` fails
    with EAGAIN (or blocks): net.unix.max_dgram_qlen + 1, 11 by default —
    however large the receive buffer."""
    try:
        with open(path) as fh:
            return max(1, int(fh.read().strip()) + 1)
    except (OSError, ValueError):
        return 11


class ReportSocket:
    """One bound datagram socket, ``name`` in ``directory`` (its file is
    removed when it is closed)."""

    def __init__(self, directory: str, name: str) -> None:
        self.path = os.path.join(directory, name)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
            # a worker's bursts wait here while the loop is busy: at most
            # datagram_queue_limit() of them (11 by default), whatever the buffer
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF_BYTES)
            self.sock.bind(self.path)
            os.chmod(self.path, 0o777)
            self.sock.setblocking(False)
        except BaseException:
            self.close()
            raise

    def fileno(self) -> int:
        return self.sock.fileno()

    def receive(self, limit: int = 10000) -> list[tuple[int | None, bytes]]:
        """Every pending datagram as (sender pid or None, data)."""
        received = []
        recvmsg, size, unpack = self.sock.recvmsg, _CREDS.size, _CREDS.unpack_from  # per datagram: locals
        for _ in range(limit):
            try:
                data, ancdata, _flags, _addr = recvmsg(MAX_DATAGRAM, _CREDS_SPACE)
            except (BlockingIOError, InterruptedError):
                break
            pid = None
            for level, kind, payload in ancdata:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS and len(payload) >= size:
                    pid = unpack(payload)[0]
            received.append((pid, data))
        return received

    def close(self) -> None:
        self.sock.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        number, digit = divmod(number, 36)
        text = digits[digit] + text
        if not number:
            return text


class ReportSockets:
    """One report socket per worker life, in one private directory: a worker's
    ``PODSUP_REPORT`` is ``<dir>/<n>.sock``, n counting sockets opened in base 36
    (short: a socket path has at most 107 bytes). The loop takes one before each
    spawn and closes it when that worker is reaped, so descriptors follow the
    live workers and two lives of one slot never share a socket.

    One more is kept open ahead (:meth:`prepare`, after a spawn): the next
    worker's, so a crashed worker's replacement does not wait for a socket,
    two setsockopt calls, a bind (an inode in ``$TMPDIR``) and a chmod on its
    way to the spawn (issue 13: ~35 us idle, ~100 us on a loaded machine).
    No worker knows its path before it is handed out."""

    def __init__(self, directory: str | None = None) -> None:
        self._own_directory = directory is None
        self.directory = make_report_dir() if directory is None else directory
        self.opened = 0  #: sockets opened so far (names the next one)
        self.spare: ReportSocket | None = None  #: the next worker's, opened ahead

    def open(self) -> ReportSocket:
        """A socket for the worker about to be spawned: the one opened ahead,
        else a new one (OSError, e.g. EMFILE, if it cannot be)."""
        sock, self.spare = self.spare, None
        if sock is None:
            sock = ReportSocket(self.directory, f"{_base36(self.opened)}.sock")
            self.opened += 1
        return sock

    def prepare(self) -> None:
        """Open the next worker's socket now, off the spawn path (if it cannot
        be, :meth:`open` tries again when it is needed, and fails there)."""
        if self.spare is not None:
            return
        try:
            self.spare = ReportSocket(self.directory, f"{_base36(self.opened)}.sock")
        except OSError:
            return
        self.opened += 1

    def close(self) -> None:
        """Close the socket opened ahead and remove the directory (workers'
        sockets still open are the loop's to close)."""
        if self.spare is not None:
            self.spare.close()
            self.spare = None
        if self._own_directory:
            from podsup.host.rundir import rmtree
            rmtree(self.directory)
