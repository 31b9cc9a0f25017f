"""Small builders of OpenAPI v3 schema nodes (one line a field), shared by
the WorkerPool CRD (crd.py) and the core-type schemas it embeds
(core_types.py). Pure data, no imports beyond typing."""
from __future__ import annotations

from typing import Any

Schema = dict[str, Any]


def _node(type_: str | None, desc: str, **extra: Any) -> Schema:
    node: Schema = {"description": desc}
    if type_:
        node["type"] = type_
    node.update({k: v for k, v in extra.items() if v is not None})
    return node


def string(desc: str, **extra: Any) -> Schema:
    return _node("string", desc, **extra)


def integer(desc: str, minimum: int | None = None, maximum: int | None = None, **extra: Any) -> Schema:
    return _node("integer", desc, minimum=minimum, maximum=maximum, **extra)


def number(desc: str, minimum: float | None = None, **extra: Any) -> Schema:
    return _node("number", desc, minimum=minimum, **extra)


def boolean(desc: str, **extra: Any) -> Schema:
    return _node("boolean", desc, **extra)


def int_or_string(desc: str, **extra: Any) -> Schema:
    return _node(None, desc, **{"x-kubernetes-int-or-string": True}, **extra)


def array(desc: str, items: Schema, **extra: Any) -> Schema:
    return _node("array", desc, items=items, **extra)


def obj(desc: str, properties: dict[str, Schema], required: list[str] | None = None,
        rules: list[tuple[str, str]] | None = None, **extra: Any) -> Schema:
    node = _node("object", desc, properties=properties, required=required, **extra)
    if rules:
        node["x-kubernetes-validations"] = [{"rule": r, "message": m} for r, m in rules]
    return node
