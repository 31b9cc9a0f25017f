"""Validate a WorkerPool against the CRD's schema without a cluster.

``podsup-operator render`` must refuse what ``kubectl apply`` would refuse, with
the same messages, so this mirrors what the API server does with a structural
schema: apply defaults, check types/enums/bounds/required/unknown fields
(kubectl's strict field validation), then evaluate the CEL
``x-kubernetes-validations`` with cel-python. Messages use the API server's
wording ("spec.processes: Invalid value: 0: spec.processes in body should be
greater than or equal to 1"). Pure: no kopf, no client.
"""
from __future__ import annotations

import copy
import functools
import json
import re
from typing import Any

from podsup import names

from .crd import Schema, workerpool_schema


class InvalidWorkerPool(ValueError):
    """A WorkerPool the API server would refuse; ``errors`` holds one message a problem."""

    def __init__(self, name: str, errors: list[str]):
        self.name = name
        self.errors = errors
        super().__init__(format_errors(name, errors))


def format_errors(name: str, errors: list[str]) -> str:
    lines = [f'The {names.KIND} "{name}" is invalid:']
    lines += [f"* {e}" for e in errors]
    return "\n".join(lines)


def apply_defaults(value: Any, schema: Schema) -> Any:
    """Return a copy of ``value`` with the schema's defaults filled in, as the
    API server does when it reads an object (defaults of defaulted objects too)."""
    value = copy.deepcopy(value)
    _default(value, schema)
    return value


def _default(value: Any, schema: Schema) -> None:
    if isinstance(value, dict) and "properties" in schema:
        for key, sub in schema["properties"].items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                _default(value[key], sub)
    elif isinstance(value, dict) and isinstance(schema.get("additionalProperties"), dict):
        for item in value.values():
            _default(item, schema["additionalProperties"])
    elif isinstance(value, list) and "items" in schema:
        for item in value:
            _default(item, schema["items"])


def _show(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return '"object"' if isinstance(value, dict) else '"array"'
    return json.dumps(value)


_TYPES = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
}


def _schema_errors(value: Any, schema: Schema, path: str, errors: list[str]) -> None:
    if schema.get("x-kubernetes-int-or-string"):
        if not (_TYPES["integer"](value) or isinstance(value, str)):
            errors.append(f"{path}: Invalid value: {_show(value)}: {path} in body must be of type integer,string: "
                          f"{_show(type(value).__name__)}")
            return
    type_ = schema.get("type")
    if type_ and not _TYPES[type_](value):
        errors.append(f"{path}: Invalid value: {_show(type(value).__name__)}: {path} in body must be of type "
                      f"{type_}: {_show(_json_type(value))}")
        return
    if "enum" in schema and value not in schema["enum"]:
        supported = ", ".join(json.dumps(v) for v in schema["enum"])
        errors.append(f"{path}: Unsupported value: {_show(value)}: supported values: {supported}")
    numeric = _TYPES["number"](value)  # bounds apply to numbers only (an int-or-string may be a string)
    if numeric and "minimum" in schema and value < schema["minimum"]:
        errors.append(f"{path}: Invalid value: {_show(value)}: {path} in body should be greater than or equal "
                      f"to {schema['minimum']}")
    if numeric and "maximum" in schema and value > schema["maximum"]:
        errors.append(f"{path}: Invalid value: {_show(value)}: {path} in body should be less than or equal "
                      f"to {schema['maximum']}")
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            errors.append(f"{path}: Invalid value: {_show(value)}: {path} in body should be at least "
                          f"{schema['minLength']} chars long")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append(f"{path}: Too long: may not be more than {schema['maxLength']} bytes")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(f"{path}: Invalid value: {_show(value)}: {path} in body should match "
                          f"'{schema['pattern']}'")
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            errors.append(f"{path}: Invalid value: {len(value)}: {path} in body should have at least "
                          f"{schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.append(f"{path}: Too many: {len(value)}: must have at most {schema['maxItems']} items")
        for i, item in enumerate(value):
            _schema_errors(item, schema.get("items", {}), f"{path}[{i}]", errors)
        if schema.get("x-kubernetes-list-type") == "map":
            keys = schema.get("x-kubernetes-list-map-keys", [])
            seen: set[tuple] = set()
            for i, item in enumerate(value):
                if not isinstance(item, dict):
                    continue
                key = tuple(json.dumps(item.get(k)) for k in keys)
                if key in seen:
                    # the API server prints the key as Go's %#v of a map[string]interface{}
                    shown = ",".join(f"{json.dumps(k)}:{json.dumps(item.get(k))}" for k in keys if k in item)
                    errors.append(f"{path}[{i}]: Duplicate value: map[string]interface {{}}{{{shown}}}")
                seen.add(key)
    if isinstance(value, dict):
        if "maxProperties" in schema and len(value) > schema["maxProperties"]:
            errors.append(f"{path}: Too many: {len(value)}: must have at most {schema['maxProperties']} items")
        props = schema.get("properties")
        for req in schema.get("required", []):
            if req not in value:
                errors.append(f"{_join(path, req)}: Required value")
        for key, item in value.items():
            sub_path = _join(path, key)
            if props is not None and key in props:
                _schema_errors(item, props[key], sub_path, errors)
            elif isinstance(schema.get("additionalProperties"), dict):
                _schema_errors(item, schema["additionalProperties"], sub_path, errors)
            elif props is not None and not schema.get("x-kubernetes-preserve-unknown-fields"):
                errors.append(f'unknown field "{sub_path}"')


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _json_type(value: Any) -> str:
    for name in ("boolean", "integer", "number", "string", "array", "object"):
        if _TYPES[name](value):
            return name
    return "null"


def cel_rules(schema: Schema, path: str = "") -> list[tuple[str, str, str]]:
    """Every (path, rule, message) of the schema's x-kubernetes-validations
    outside lists (our rules sit on objects reached by properties only)."""
    found = [(path, r["rule"], r["message"]) for r in schema.get("x-kubernetes-validations", [])]
    for key, sub in schema.get("properties", {}).items():
        found += cel_rules(sub, f"{path}.{key}" if path else key)
    if "items" in schema:
        found += cel_rules(schema["items"], f"{path}[*]")
    return found


@functools.lru_cache(maxsize=None)
def _program(rule: str) -> Any:
    """Compiled once per rule (compiling dominates validation time)."""
    import celpy  # imported here: only validation needs it

    env = celpy.Environment()
    return env.program(env.compile(rule))


def _cel_error(path: str, value: Any, message: str) -> str:
    """One rule failure as the API server words it, ``PATH: Invalid value:
    VALUE: MESSAGE`` — except for a rule on the whole object, which the API
    server prints as ``<nil>: Invalid value: "object": MESSAGE`` (its root
    path is nil): there the message alone, which names the field itself."""
    if not path:
        return message
    return f"{path}: Invalid value: {_show(value)}: {message}"


def _cel_errors(obj: dict, schema: Schema, errors: list[str]) -> None:
    """Rule failures, worded by :func:`_cel_error`."""
    import celpy

    for path, rule, message in cel_rules(schema):
        for concrete_path, value in _resolve(obj, path):
            program = _program(rule)
            try:
                ok = program.evaluate({"self": celpy.json_to_cel(value)})
            except celpy.CELEvalError as exc:  # a rule that cannot evaluate is a refusal too
                errors.append(_cel_error(concrete_path, value,
                                         f"rule {rule!r} could not be evaluated: {exc.args[0]}"))
                continue
            if isinstance(ok, Exception) or not bool(ok):
                errors.append(_cel_error(concrete_path, value, message))


def _resolve(obj: Any, path: str) -> list[tuple[str, Any]]:
    """Values at a dotted path with ``[*]`` for list items, with concrete paths."""
    results = [("", obj)]
    for part in [p for p in re.split(r"\.|(?=\[\*\])", path) if p]:
        nxt = []
        for prefix, value in results:
            if part == "[*]":
                if isinstance(value, list):
                    nxt += [(f"{prefix}[{i}]", item) for i, item in enumerate(value)]
            elif isinstance(value, dict) and part in value:
                nxt.append((f"{prefix}.{part}" if prefix else part, value[part]))
        results = nxt
    return results


def validate_workerpool(obj: Any) -> dict:
    """Return the defaulted WorkerPool or raise :class:`InvalidWorkerPool`
    listing every problem the API server would report."""
    name = obj.get("metadata", {}).get("name", "<unnamed>") if isinstance(obj, dict) else "<unnamed>"
    if not isinstance(obj, dict):
        raise InvalidWorkerPool(name, [f"<root>: Invalid value: {_show(obj)}: a {names.KIND} must be a mapping"])
    errors: list[str] = []
    expected = f"{names.API_GROUP}/{names.API_VERSION}"
    if obj.get("apiVersion") != expected or obj.get("kind") != names.KIND:
        errors.append(f"apiVersion/kind: Invalid value: {_show(obj.get('apiVersion'))}/{_show(obj.get('kind'))}: "
                      f"expected {expected}/{names.KIND}")
    if not isinstance(obj.get("metadata"), dict) or not obj["metadata"].get("name"):
        errors.append("metadata.name: Required value: name or generateName is required")
    if errors:
        raise InvalidWorkerPool(name, errors)
    schema = workerpool_schema()
    defaulted = apply_defaults(obj, schema)
    _schema_errors(defaulted, schema, "", errors)
    if not errors:  # like the API server, CEL only runs on schema-valid objects
        _cel_errors(defaulted, schema, errors)
    if errors:
        raise InvalidWorkerPool(name, errors)
    return defaulted
