"""Value parsers of the run options: a flag, env or YAML value -> a value, or
ValueError whose message says what is allowed. Pure functions, so the same
rule reads every source (podsup.cli.options) and the operator's CRD bounds
can be checked against them.
"""
from __future__ import annotations

import math
import os
import re
import signal
from typing import Any, Callable

from podsup.core.config import MAX_BYTES, MAX_DURATION

# --- value parsers: str (or YAML scalar) -> value, ValueError(allowed) ---------

def int_parser(minimum: int, maximum: int | None = None) -> Callable[[Any], int]:
    allowed = f"an integer >= {minimum}" if maximum is None else f"an integer {minimum}..{maximum}"

    def parse(raw: Any) -> int:
        text = str(raw).strip()
        if isinstance(raw, bool) or not re.fullmatch(r"[+-]?[0-9]{1,20}", text, re.ASCII):
            raise ValueError(f"must be {allowed}")
        value = int(text)
        if value < minimum or (maximum is not None and value > maximum):
            raise ValueError(f"must be {allowed}")
        return value
    return parse


#: Duration units: Go's (time.ParseDuration, Kubernetes' metav1.Duration) from
#: ms up, plus ``d`` (24h) as Prometheus has it. A bare number is seconds.
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_PART = re.compile(r"([0-9]*\.?[0-9]+)(ms|s|m|h|d)", re.ASCII)
_DURATION_RE = re.compile(r"(?:[0-9]*\.?[0-9]+(?:ms|s|m|h|d))+", re.ASCII)
_NUMBER_RE = re.compile(r"[0-9]*\.?[0-9]+", re.ASCII)


def parse_seconds(raw: Any) -> float | None:
    """``30``, ``1.5``, ``500ms``, ``2m``, ``1h30m``, ``1d`` -> seconds; None if malformed.

    Go's duration syntax (a sequence of number+unit, as ``kubectl --timeout``
    takes), with ``d`` added; no sign (durations here are never negative) and
    no ``us``/``ns`` (below what a supervisor's timers resolve)."""
    if isinstance(raw, bool):
        return None
    text = str(raw).strip()
    if len(text) > 64:  # a duration is short; do not run regexes over pasted megabytes
        return None
    if _NUMBER_RE.fullmatch(text):
        return float(text)
    if not _DURATION_RE.fullmatch(text):
        return None
    return sum(float(number) * _DURATION_UNITS[unit] for number, unit in _DURATION_PART.findall(text))


def duration_parser(positive: bool = False) -> Callable[[Any], float]:
    allowed = (("seconds > 0" if positive else "seconds >= 0")
               + " or a duration with units ms, s, m, h, d (e.g. 30, 1.5, 500ms, 2m, 1h30m, 1d)")

    def parse(raw: Any) -> float:
        value = parse_seconds(raw)
        if value is None or not math.isfinite(value) or (positive and value <= 0):
            raise ValueError(f"must be {allowed}")
        if value > MAX_DURATION:  # timers past this overflow the OS's (and are typos anyway)
            raise ValueError(f"must be {allowed}, at most {int(MAX_DURATION)} (a year)")
        return value
    return parse


_SIZE_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2,
               "g": 1000**3, "gb": 1000**3, "ki": 1024, "kib": 1024, "mi": 1024**2,
               "mib": 1024**2, "gi": 1024**3, "gib": 1024**3}


def parse_bytes(raw: Any) -> int:
    """``268435456``, ``256Mi``, ``1G``, ``512MB`` -> bytes (0 = off)."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", str(raw))
    unit = match.group(2).lower() if match else ""
    if isinstance(raw, bool) or not match or unit not in _SIZE_UNITS:
        raise ValueError("must be bytes >= 0, optionally with a unit (e.g. 268435456, 256Mi, 1G)")
    value = float(match.group(1)) * _SIZE_UNITS[unit]
    if not math.isfinite(value) or value > MAX_BYTES:
        raise ValueError(f"must be bytes >= 0, at most {MAX_BYTES} (8 EiB), optionally with a unit (e.g. 256Mi)")
    return int(value)


def parse_signal(raw: Any) -> int:
    """``TERM``, ``SIGTERM``, ``term`` or a number -> signal number."""
    text = str(raw).strip().upper()
    allowed = "must be a signal name such as TERM, INT, QUIT, HUP, USR1, USR2, WINCH or a number"
    if text.isascii() and text.isdigit():
        number = int(text[:4]) if len(text) <= 4 else -1  # no signal has 5 digits
        if number in {int(s) for s in signal.valid_signals()} and number != signal.SIGSTOP:
            return number
        raise ValueError(allowed)
    if not text.startswith("SIG"):
        text = "SIG" + text
    sig = getattr(signal.Signals, text, None) if text.isidentifier() else None
    if sig is None or sig == signal.SIGSTOP:
        raise ValueError(allowed)
    return int(sig)


def parse_exit_codes(raw: Any) -> frozenset[int]:
    """``0``, ``0,3`` (or a YAML list) -> a set of exit codes 0..255."""
    items = raw if isinstance(raw, (list, tuple)) else [p for p in str(raw).split(",") if p.strip()]
    codes = set()
    for item in items:
        text = str(item).strip()
        if isinstance(item, bool) or not (text.isascii() and text.isdigit()) or len(text) > 3 or int(text) > 255:
            raise ValueError("must be a comma-separated list of exit codes 0..255 (e.g. 0 or 0,3)")
        codes.add(int(text))
    return frozenset(codes)


def parse_http(raw: Any) -> tuple[str, int] | None:
    """``ADDR:PORT`` -> (addr, port); ``off`` or empty disables the server."""
    if raw is False or raw is None:  # YAML reads `http: off` as false
        return None
    text = str(raw).strip()
    if text.lower() in ("", "off", "none", "false", "no"):
        return None
    match = re.fullmatch(r"\[?([^\[\]]*?)\]?:([0-9]{1,5})", text)
    if not match or int(match.group(2)) > 65535:
        raise ValueError("must be ADDR:PORT with a port 0..65535 (e.g. 0.0.0.0:9090, [::]:9090) or 'off'")
    return match.group(1) or "0.0.0.0", int(match.group(2))


def parse_control(raw: Any) -> str | None:
    if raw is False or raw is None:  # YAML reads `control: off` as false
        return None
    if not isinstance(raw, str):  # a YAML list or number is no path
        raise ValueError("must be a Unix socket path shorter than 108 bytes, or 'off'")
    text = raw.strip()
    if text.lower() in ("", "off", "none", "false", "no"):
        return None
    if "\0" in text or len(os.fsencode(text)) > 107:
        raise ValueError("must be a Unix socket path shorter than 108 bytes, or 'off'")
    return text


QUEUE_SCHEMES = ("redis", "rediss", "amqp", "amqps")


def parse_queue(raw: Any) -> str | None:
    text = str(raw).strip()
    if not text:
        return None
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme not in QUEUE_SCHEMES:
        raise ValueError("must be a URL redis://HOST:PORT/DB?list=NAME or amqp://USER:PASS@HOST:PORT/VHOST?queue=NAME")
    return text


def parse_log_format(raw: Any) -> str:
    text = str(raw).strip().lower()
    if text not in ("text", "json"):
        raise ValueError("must be one of: text, json")
    return text


def parse_preload(raw: Any) -> str | None:
    text = str(raw).strip()
    if not text:
        return None
    if not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", text):
        raise ValueError("must be MODULE:FUNC (e.g. myapp.worker:main)")
    return text


def parse_path(raw: Any) -> str | None:
    text = str(raw).strip()
    return text or None
