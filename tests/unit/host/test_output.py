"""Log formats and the non-blocking line pump."""
from __future__ import annotations

import io
import json
import os
import threading

from podsup.host.output import MAX_LINE, LinePump, Log


def test_text_format_prefixes_slot_and_podsup():
    out, err = io.BytesIO(), io.BytesIO()
    log = Log("text", out, err)
    log.worker_line(2, 99, "stdout", b"hello\r\n")
    log.worker_line(2, 99, "stderr", b"oops")
    log.info("worker exited", slot=2, status="exit 1", skipped=None)
    log.warning("careful")
    assert out.getvalue() == b"[worker 2] hello\n"
    assert err.getvalue() == b'[worker 2] oops\n[podsup] worker exited slot=2 status="exit 1"\n[podsup] warning: careful\n'


def test_json_format_has_slot_pid_and_fields():
    out, err = io.BytesIO(), io.BytesIO()
    log = Log("json", out, err)
    log.worker_line(1, 42, "stdout", "caf\u00e9".encode())
    log.error("bad", slot=1)
    line = json.loads(out.getvalue())
    assert line["source"] == "worker" and line["slot"] == 1 and line["pid"] == 42
    assert line["stream"] == "stdout" and line["line"] == "caf\u00e9" and line["ts"].endswith("Z")
    event = json.loads(err.getvalue())
    assert event["source"] == "podsup" and event["level"] == "error" and event["msg"] == "bad" and event["slot"] == 1


def test_line_pump_joins_partial_lines_and_flushes_at_eof():
    r, w = os.pipe()
    lines = []
    pump = LinePump(r, lines.append)
    os.write(w, b"one\ntw")
    assert pump.read() and lines == [b"one"]
    assert pump.read()  # nothing to read: no block, nothing emitted
    os.write(w, b"o\nthree")
    pump.read()
    os.close(w)
    assert not pump.read()
    assert lines == [b"one", b"two", b"three"]
    os.close(r)


def test_line_pump_cuts_overlong_lines():
    r, w = os.pipe()
    lines = []
    pump = LinePump(r, lines.append)
    data = b"x" * (MAX_LINE + 10)
    written = 0
    while written < len(data):
        written += os.write(w, data[written:written + 60000])
        pump.read()
    os.close(w)
    while pump.read():
        pass
    os.close(r)
    assert b"".join(lines) == data
    assert [len(line) for line in lines] == [MAX_LINE, 10]


def test_exclusive_holds_off_writers_from_other_threads():
    import sys
    import threading

    from tests.waiting import wait_for

    err = io.BytesIO()
    log = Log("text", io.BytesIO(), err)
    writer = threading.Thread(target=log.info, args=("from another thread",))

    def writing() -> bool:  # the writer thread has reached the write (and waits there)
        frame = sys._current_frames().get(writer.ident)
        return frame is not None and frame.f_code.co_name == "_write"
    with log.exclusive():
        writer.start()
        # not a fixed pause (which a slow start of the thread would make prove
        # nothing): wait until the writer is at the write, held off
        wait_for(writing, 30, message="the writer thread at the write")
        assert writer.is_alive() and err.getvalue() == b""  # blocked while held
    writer.join(30)
    assert err.getvalue() == b"[podsup] from another thread\n"


def test_background_writes_never_block_and_count_what_a_stalled_reader_costs():
    """A reader that stops reading (a wedged log shipper) fills the pipe; the
    caller (the master loop) must not block: lines beyond the queue are
    dropped and counted, and a warning says so once output flows again."""
    import time

    from podsup.host import output

    read_fd, write_fd = os.pipe()
    with os.fdopen(write_fd, "wb", buffering=0) as out:
        log = Log("text", out=out, err=out, background=True)
        lines = output.MAX_PENDING * 3

        def flood():
            for i in range(lines):
                log.worker_line(0, 42, "stdout", b"x" * 100)
        # the pipe holds ~64 KiB and nobody reads it: a blocking writer would hang
        # for good. Flood from a thread and give it a generous deadline to finish
        # (how long it takes on a loaded machine is not the point).
        caller = threading.Thread(target=flood, daemon=True)
        caller.start()
        caller.join(60)
        assert not caller.is_alive(), "writing a line blocked on the stalled reader"
        assert log.dropped > 0
        os.set_blocking(read_fd, False)
        tail, found = b"", False
        deadline = time.monotonic() + 30
        while not found and time.monotonic() < deadline:
            try:
                chunk = tail + os.read(read_fd, 1 << 20)
            except BlockingIOError:
                time.sleep(0.01)
                continue
            found = b"output lines dropped" in chunk
            tail = chunk[-64:]  # a marker split across two reads is still found
        assert found
        os.set_blocking(read_fd, True)
        reader = threading.Thread(target=lambda: [None for _ in iter(lambda: os.read(read_fd, 1 << 20), b"")])
        reader.start()  # keep reading so close() can write what is pending
        log.close()
        assert log._writer is None
    reader.join(10)
    os.close(read_fd)


def test_background_close_writes_what_is_pending_in_order():
    read_fd, write_fd = os.pipe()
    with os.fdopen(write_fd, "wb", buffering=0) as out:
        log = Log("text", out=out, err=out, background=True)
        for i in range(100):
            log.worker_line(1, 7, "stdout", f"line {i}".encode())
        log.info("podsup exiting", code=0)
        log.close()
    with os.fdopen(read_fd, "rb") as pipe:
        text = pipe.read().decode().splitlines()
    assert text == [f"[worker 1] line {i}" for i in range(100)] + ["[podsup] podsup exiting code=0"]


def test_held_lines_reach_the_writer_at_the_end_in_order_and_other_threads_are_not_held():
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    err = os.fdopen(write_fd, "wb", buffering=0)
    log = Log("text", out=err, err=err, background=True)
    try:
        with log.held():
            log.info("one")
            log.info("two")
            assert log._pending.qsize() == 0  # nothing handed over yet: the writer sleeps
            other = threading.Thread(target=log.info, args=("from another thread",))
            other.start()
            other.join()
        log.close()
        text = os.read(read_fd, 65536).decode()
        assert text.index("from another thread") < text.index("one") < text.index("two")
    finally:
        err.close()
        os.close(read_fd)


def test_held_is_a_no_op_without_a_writer_thread():
    out = io.BytesIO()
    log = Log("text", out=out, err=out)
    with log.held():
        log.info("at once")
        assert b"at once" in out.getvalue()
