"""The metric names podsup and the operator export, read from their own
metric definitions (the registries /metrics serves), never listed by hand:
what the dashboard's and the alerts' PromQL may name."""
from __future__ import annotations

import re

#: sample names of a family, by type (the exposition format's suffixes)
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
            "summary": ("", "_sum", "_count", "_created"), "gauge": ("",), "unknown": ("",), "info": ("_info",)}


def sample_names(families) -> set[str]:
    return {family.name + suffix for family in families for suffix in SUFFIXES[family.type]}


def podsup_names() -> set[str]:
    """Every family podsup's /metrics serves, from a snapshot with a queue
    (queue families have samples only then) and the report-fed metrics."""
    from podsup.plugins import metrics
    from tests.unit.test_metrics import snap

    registry, _ = metrics.build_registry(lambda: snap(), queues=lambda: {"jobs": (3.0, True)},
                                         probe_errors=lambda: {"jobs": 1})
    return sample_names(registry.collect())


def operator_names() -> set[str]:
    from prometheus_client import REGISTRY

    from podsup_operator import metrics

    metrics.enable_metrics_api_metrics()
    return {n for n in sample_names(REGISTRY.collect()) if n.startswith("podsup_operator_")}


def exported() -> set[str]:
    return podsup_names() | operator_names()


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
