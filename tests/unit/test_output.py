"""Log formats and the non-blocking line pump."""
from __future__ import annotations

import io
import json
import os

from podsup.output import MAX_LINE, LinePump, Log


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
    import threading

    err = io.BytesIO()
    log = Log("text", io.BytesIO(), err)
    writer = threading.Thread(target=log.info, args=("from another thread",))
    with log.exclusive():
        writer.start()
        writer.join(0.2)
        assert writer.is_alive() and err.getvalue() == b""  # blocked while held
    writer.join(10)
    assert err.getvalue() == b"[podsup] from another thread\n"
