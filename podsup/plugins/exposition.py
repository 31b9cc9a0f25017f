"""podsup's Prometheus exposition, written by hand: the text format 0.0.4 and OpenMetrics 1.0.0.

Why not prometheus-client, which podsup used before (and still uses for the
workers' multiprocess files, podsup.plugins.multiproc, and in the operator)?
Importing it costs the supervisor ~10 MB of RSS (its ``__init__`` imports its
exposition, which pulls http.server, ssl, urllib, wsgiref and email: issue 13's
profile, 23.1 vs 13.3 MB for a bare interpreter), in every pod of every pool,
and its Counter/Histogram objects take a lock per report. podsup's own metrics
are a fixed, small set of gauges, counters and one histogram, so their
rendering is these few lines; tests/unit/plugins/test_exposition.py proves the
bytes equal what prometheus-client renders for the same values, in both
formats and for every Accept header form, and tests/integration/test_metrics.py
has a real Prometheus scrape it.

A :class:`Family` is plain data (name, type, help, samples); :func:`render`
writes a list of them; :func:`negotiate` picks the format and Content-Type
from the Accept header exactly as prometheus-client's ``choose_encoder`` does
(OpenMetrics when asked, as docs/metrics.md documents); :func:`keep_named`
is ``?name[]=``.
"""
from __future__ import annotations

import math
from typing import Iterable, NamedTuple

#: Content types, as prometheus-client sends them.
TEXT_0_0_4 = "text/plain; version=0.0.4; charset=utf-8"
TEXT_1_0_0 = "text/plain; version=1.0.0; charset=utf-8"
OPENMETRICS_1_0_0 = "application/openmetrics-text; version=1.0.0; charset=utf-8"
#: The name-escaping schemes a client may ask for (podsup's names are legacy
#: names, the same under all of them; the scheme is only echoed back).
ESCAPINGS = ("allow-utf-8", "underscores", "dots", "values")

Labels = tuple[tuple[str, str], ...]


class Sample(NamedTuple):
    name: str
    labels: Labels
    value: float


class Family(NamedTuple):
    """One metric family. ``name`` is the OpenMetrics family name (a counter's
    without ``_total``); ``samples`` carry their full names."""
    name: str
    type: str  # gauge | counter | histogram
    help: str
    samples: list[Sample]


def go_float(value: float) -> str:
    """A sample value as Go (and prometheus-client's floatToGoString) writes it."""
    value = float(value)
    if value == math.inf:
        return "+Inf"
    if value == -math.inf:
        return "-Inf"
    if value != value:
        return "NaN"
    text = repr(value)
    dot = text.find(".")
    if value > 0 and dot > 6:  # Go switches to exponents sooner than Python
        mantissa = f"{text[0]}.{text[1:dot]}{text[dot + 1:]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return text


def _label_value(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _sample_lines(samples: Iterable[Sample], out: list[str]) -> None:
    for name, labels, value in samples:
        if labels:
            pairs = ",".join(f'{k}="{_label_value(v)}"' for k, v in sorted(labels))
            out.append(f"{name}{{{pairs}}} {go_float(value)}\n")
        else:
            out.append(f"{name} {go_float(value)}\n")


def render_text(families: Iterable[Family]) -> str:
    """The Prometheus text format 0.0.4 (a counter's HELP/TYPE name ends in ``_total``)."""
    out: list[str] = []
    for family in families:
        name = family.name + "_total" if family.type == "counter" else family.name
        help_text = family.help.replace("\\", r"\\").replace("\n", r"\n")
        out.append(f"# HELP {name} {help_text}\n# TYPE {name} {family.type}\n")
        _sample_lines(family.samples, out)
    return "".join(out)


def render_openmetrics(families: Iterable[Family], eof: bool = True) -> str:
    """OpenMetrics 1.0.0 text, ending in ``# EOF`` unless ``eof`` is False."""
    out: list[str] = []
    for family in families:
        help_text = _label_value(family.help)
        out.append(f"# HELP {family.name} {help_text}\n# TYPE {family.name} {family.type}\n")
        _sample_lines(family.samples, out)
    if eof:
        out.append("# EOF\n")
    return "".join(out)


def _parameter(tokens: list[str], key: str) -> str:
    for token in tokens:
        name, sep, value = token.strip().partition("=")
        if sep and name == key:
            return value
    return ""


def _version(text: str) -> tuple[int, ...]:
    parts = []
    for part in text.split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def negotiate(accept: str | None) -> tuple[bool, str]:
    """(OpenMetrics?, Content-Type) for an Accept header: what
    prometheus-client's ``choose_encoder`` answers (the first acceptable
    entry, in the header's order; q-values are not weighed, as there)."""
    for entry in (accept or "").split(","):
        tokens = entry.split(";")
        kind = tokens[0].strip()
        if kind == "application/openmetrics-text":
            version = _parameter(tokens, "version")
            if not version:
                return True, OPENMETRICS_1_0_0
            if _version(version) >= (1, 0, 0):
                return True, (f"application/openmetrics-text; version={version}; charset=utf-8; "
                              f"escaping={_escaping(tokens)}")
        elif kind == "text/plain":
            version = _parameter(tokens, "version")
            if version and _version(version) >= (1, 0, 0):
                return False, f"{TEXT_1_0_0}; escaping={_escaping(tokens)}"
    return False, TEXT_0_0_4


def _escaping(tokens: list[str]) -> str:
    asked = _parameter(tokens, "escaping")
    return asked if asked in ESCAPINGS else "underscores"


def gzip_accepted(accept_encoding: str | None) -> bool:
    return any(entry.split(";")[0].strip().lower() == "gzip" for entry in (accept_encoding or "").split(","))


def keep_named(families: Iterable[Family], wanted: frozenset[str]) -> list[Family]:
    """``?name[]=``: a family asked for by its name is kept whole
    (``podsup_requests`` keeps ``podsup_requests_total``), else its samples
    asked for by their names (``podsup_request_duration_seconds_count``), as
    prometheus-client's ``restricted_registry`` matches them."""
    kept = []
    for family in families:
        if family.name in wanted:
            kept.append(family)
            continue
        samples = [s for s in family.samples if s.name in wanted]
        if samples:
            kept.append(family._replace(samples=samples))
    return kept
