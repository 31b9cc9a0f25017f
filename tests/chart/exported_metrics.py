"""The metric names podsup and the operator export, read from their own
metric definitions (the registries /metrics serves), never listed by hand:
what the dashboard's and the alerts' PromQL may name."""
from __future__ import annotations

import os
import pathlib
import re
import signal
import subprocess
import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from tests.waiting import wait_for

#: sample names of a family, by type (the exposition format's suffixes)
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
            "summary": ("", "_sum", "_count", "_created"), "gauge": ("",), "unknown": ("",), "info": ("_info",)}


def sample_names(families) -> set[str]:
    return {family.name + suffix for family in families for suffix in SUFFIXES[family.type]}


def podsup_names(tmp: pathlib.Path) -> set[str]:
    """Every family a real `podsup run`'s /metrics serves (prometheus-client
    writes a family's # TYPE line even while it has no sample, e.g. queue
    depth without a queue)."""
    log = open(tmp / "podsup.log", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "podsup", "run", "--workers", "1", "--http", "127.0.0.1:0",
                             "--control", "off", "--", sys.executable, "-c", "import time; time.sleep(120)"],
                            stdout=log, stderr=subprocess.STDOUT, cwd=tmp, start_new_session=True)
    try:
        def address():
            log.seek(0)
            found = re.search(r"serving /metrics.* address=(\S+)", log.read())
            return found and found.group(1)

        addr = wait_for(address, 60, interval=0.05, message="podsup's /metrics address in its log")
        text = wait_for(lambda: urllib.request.urlopen(f"http://{addr}/metrics", timeout=5).read().decode(),
                        30, interval=0.05, message="podsup's /metrics")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        log.close()
    return sample_names(text_string_to_metric_families(text))


def operator_names() -> set[str]:
    from prometheus_client import REGISTRY

    from podsup_operator import metrics

    metrics.enable_metrics_api_metrics()
    return {n for n in sample_names(REGISTRY.collect()) if n.startswith("podsup_operator_")}


def exported(tmp: pathlib.Path) -> set[str]:
    return podsup_names(tmp) | operator_names()


# --- metric names in a PromQL expression -----------------------------------

KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and", "or",
            "unless", "inf", "nan", "atan2", "start", "end",
            # aggregation operators (followed by `by (...)` rather than `(`)
            "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk",
            "quantile", "limitk", "limit_ratio"}


def promql_metric_names(expr: str) -> set[str]:
    """Metric names a (syntactically valid: promtool checks) PromQL
    expression selects: identifiers that are not functions, aggregations,
    keywords, label names in by/on/... lists or inside {...} and [...]."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)        # strings
    text = re.sub(r"\{[^{}]*\}", "{}", text)                                     # label matchers
    text = re.sub(r"\[[^\[\]]*\]", "[]", text)                                   # ranges, subqueries
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", r"\1", text)
    names = set()
    for match in re.finditer(r"(?<![\w:.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", text):
        word, call = match.group(1), match.group(2)
        if call or word.lower() in KEYWORDS or re.fullmatch(r"\d+[smhdwy]", word):
            continue
        names.add(word)
    return names
