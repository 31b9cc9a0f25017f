"""Kubernetes label selector strings: parse and match (pure).

The HPA sends its selectors as the ``labelSelector`` query parameter in the
string form (``workerpool=orders``, ``a in (x,y),!b``). The External metric's
selector picks WorkerPools by the label ``workerpool`` (EXTERNAL_SELECTOR_LABEL);
we evaluate it against each pool's label set rather than pattern-match one
form, so every selector the HPA can express means what it says. A selector
we cannot parse is a 400, never "match everything".
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping


class SelectorError(ValueError):
    """The selector string is not a valid Kubernetes label selector."""


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op in ("=", "in"):
            return present and labels[self.key] in self.values
        # "!=" and "notin" match objects without the key (Kubernetes semantics).
        return not present or labels[self.key] not in self.values


_KEY = r"(?:[A-Za-z0-9][-A-Za-z0-9_.]*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
_VALUE = r"(?:[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_KEY_RE = re.compile(rf"^{_KEY}$")
_VALUE_RE = re.compile(rf"^{_VALUE}$")
_SET_RE = re.compile(r"^(\S+)\s+(in|notin)\s+\((.*)\)$")
_EQ_RE = re.compile(r"^([^=!\s]+)\s*(==|=|!=)\s*(.*)$")


def _split(text: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise SelectorError(f"unbalanced ')' in selector {text!r}")
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if depth:
        raise SelectorError(f"unbalanced '(' in selector {text!r}")
    parts.append("".join(cur))
    return parts


def _key(key: str, text: str) -> str:
    if len(key) > 317 or not _KEY_RE.match(key):
        raise SelectorError(f"invalid label key {key!r} in selector {text!r}")
    return key


def _value(value: str, text: str) -> str:
    if len(value) > 63 or not _VALUE_RE.match(value):
        raise SelectorError(f"invalid label value {value!r} in selector {text!r}")
    return value


def parse(text: str) -> tuple[Requirement, ...]:
    """Parse a selector string; the empty string selects everything."""
    text = text.strip()
    if not text:
        return ()
    reqs = []
    for raw in _split(text):
        part = raw.strip()
        if not part:
            raise SelectorError(f"empty requirement in selector {text!r}")
        m = _SET_RE.match(part)
        if m:
            values = tuple(_value(v.strip(), text) for v in m.group(3).split(","))
            reqs.append(Requirement(_key(m.group(1), text), m.group(2), values))
            continue
        m = _EQ_RE.match(part)
        if m:
            op = "=" if m.group(2) in ("=", "==") else "!="
            reqs.append(Requirement(_key(m.group(1), text), op, (_value(m.group(3).strip(), text),)))
            continue
        if part.startswith("!"):
            reqs.append(Requirement(_key(part[1:].strip(), text), "!"))
            continue
        reqs.append(Requirement(_key(part, text), "exists"))
    return tuple(reqs)


def matches(requirements: tuple[Requirement, ...], labels: Mapping[str, str]) -> bool:
    return all(r.matches(labels) for r in requirements)


def equality_labels(requirements: tuple[Requirement, ...]) -> dict[str, str]:
    """The ``key=value`` requirements as matchLabels (for ``metric.selector``)."""
    return {r.key: r.values[0] for r in requirements if r.op == "=" and len(r.values) == 1}


_OPERATORS = {"in": "In", "notin": "NotIn", "!=": "NotIn", "exists": "Exists", "!": "DoesNotExist"}


def label_selector(requirements: tuple[Requirement, ...]) -> dict | None:
    """The requirements as a metav1.LabelSelector (None when empty)."""
    if not requirements:
        return None
    out: dict = {}
    labels = equality_labels(requirements)
    if labels:
        out["matchLabels"] = labels
    exprs = []
    for r in requirements:
        if r.op == "=" and r.key in labels:
            continue
        expr = {"key": r.key, "operator": _OPERATORS.get(r.op, "In")}
        if r.op not in ("exists", "!"):
            expr["values"] = list(r.values)
        exprs.append(expr)
    if exprs:
        out["matchExpressions"] = exprs
    return out
