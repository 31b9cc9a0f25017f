"""Validate a WorkerPool against the CRD's schema without a cluster.

``podsup-operator render`` must refuse what ``kubectl apply`` would refuse, with
the same messages, so this mirrors what the API server does with a structural
schema: apply defaults, check types/enums/bounds/required/unknown fields
(kubectl's strict field validation), then evaluate the CEL
``x-kubernetes-validations`` with cel-python. Messages use the API server's
wording ("spec.processes: Invalid value: 0: spec.processes in body should be
greater than or equal to 1") and kubectl's layout, as checked against a
Kubernetes 1.36 API server; like it, CEL rules are not evaluated when a
"blocking" error (a wrong type, a missing required field, a value not in an
enum, a string, list or map over its bound) makes them unsafe to run, and the
output says so. Pure: no kopf, no client.
"""
from __future__ import annotations

import copy
import functools
import json
import re
from decimal import Decimal
from typing import Any

from podsup import names

from .crd import Schema, workerpool_schema
from .quantity import parse_quantity


class InvalidWorkerPool(ValueError):
    """A WorkerPool the API server would refuse; ``errors`` holds one message a problem."""

    def __init__(self, name: str, errors: list[str]):
        self.name = name
        self.errors = errors
        super().__init__(format_errors(name, errors))


def format_errors(name: str, errors: list[str]) -> str:
    """kubectl's layout: one problem on the first line, several as a list."""
    header = f'The {names.KIND} "{name}" is invalid:'
    if len(errors) == 1:
        return f"{header} {errors[0]}"
    return "\n".join([header] + [f"* {e}" for e in errors])


#: What the API server adds when a blocking error kept it from running the CEL
#: rules (it prints it with a nil path, left out here as for root-level rules).
RULES_NOT_CHECKED = ("some validation rules were not checked because the object was invalid; correct the "
                     "existing errors to complete validation")


class _Errors(list):
    """Schema errors, and whether one of them blocks the CEL rules."""

    blocking = False

    def block(self, message: str) -> None:
        self.blocking = True
        self.append(message)


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


def _schema_errors(value: Any, schema: Schema, path: str, errors: _Errors) -> None:
    if schema.get("x-kubernetes-int-or-string"):
        if not (_TYPES["integer"](value) or isinstance(value, str)):
            errors.block(f"{path}: Invalid value: {_show(_json_type(value))}: {path} in body must be of type "
                         f"integer,string: {_show(_json_type(value))}")
            return
    type_ = schema.get("type")
    if type_ and not _TYPES[type_](value):
        errors.block(f"{path}: Invalid value: {_show(_json_type(value))}: {path} in body must be of type "
                     f"{type_}: {_show(_json_type(value))}")
        if type_ == "integer" and _json_type(value) == "number":  # the format checker's own line
            errors.append(f"Checked value must be of type integer (default format) in {path}")
        return
    if "enum" in schema and value not in schema["enum"]:
        supported = ", ".join(json.dumps(v) for v in schema["enum"])
        errors.block(f"{path}: Unsupported value: {_show(value)}: supported values: {supported}")
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
            errors.block(f"{path}: Too long: may not be more than {schema['maxLength']} bytes")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(f"{path}: Invalid value: {_show(value)}: {path} in body should match "
                          f"'{schema['pattern']}'")
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            errors.append(f"{path}: Invalid value: {len(value)}: {path} in body should have at least "
                          f"{schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.block(f"{path}: Too many: {len(value)}: must have at most {schema['maxItems']} items")
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
                    shown = json.dumps({k: item[k] for k in keys if k in item}, separators=(",", ":"))
                    errors.append(f"{path}[{i}]: Duplicate value: {shown}")
                seen.add(key)
    if isinstance(value, dict):
        if "maxProperties" in schema and len(value) > schema["maxProperties"]:
            errors.block(f"{path}: Too many: {len(value)}: must have at most {schema['maxProperties']} items")
        props = schema.get("properties")
        for req in schema.get("required", []):
            if req not in value:
                errors.block(f"{_join(path, req)}: Required value")
        for key, item in value.items():
            sub_path = _join(path, key)
            if props is not None and key in props:
                _schema_errors(item, props[key], sub_path, errors)
            elif isinstance(schema.get("additionalProperties"), dict):
                _schema_errors(item, schema["additionalProperties"], sub_path, errors)
            elif props is not None and not schema.get("x-kubernetes-preserve-unknown-fields"):
                errors.append(f'unknown field "{sub_path}"')


def _integral_numbers(value: Any) -> Any:
    """2.0 → 2, as the API server decodes a JSON number that is an integer."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _integral_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral_numbers(v) for v in value]
    return value


_GO_TYPES = {str: "string", float: "float64", bool: "bool", dict: "map[string]interface {}",
             list: "[]interface {}"}


def _scale_errors(spec: Any, errors: _Errors) -> None:
    """The scale subresource's own check of spec.replicas (its specReplicasPath),
    which the API server adds to the schema's."""
    if not isinstance(spec, dict) or "replicas" not in spec:
        return
    value = spec["replicas"]
    if _TYPES["integer"](value):
        if value < 0:
            errors.append(f".spec.replicas: Invalid value: {value}: should be a non-negative integer")
        elif value > 2**31 - 1:
            errors.append(f".spec.replicas: Invalid value: {value}: should be less than or equal to {2**31 - 1}")
        return
    shown = str(value).lower() if isinstance(value, bool) else value
    errors.append(f".spec.replicas: Invalid value: 0: .spec.replicas accessor error: {shown} is of the type "
                  f"{_GO_TYPES.get(type(value), type(value).__name__)}, expected int64")


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


class _Quantity(Decimal):
    """A value of Kubernetes' CEL quantity library (1.29+)."""


def _quantity(text: Any) -> _Quantity:
    value = parse_quantity(str(text))
    if value is None:
        raise ValueError(f"invalid quantity: {text}")
    return _Quantity(value)


def _k8s_functions() -> dict[str, Any]:
    """The part of Kubernetes' CEL quantity library our rules use, which
    cel-python does not have: quantity(), isQuantity() and the comparisons."""
    from celpy import celtypes

    return {
        "quantity": _quantity,
        "isQuantity": lambda text: celtypes.BoolType(parse_quantity(str(text)) is not None),
        "isGreaterThan": lambda a, b: celtypes.BoolType(a > b),
        "isLessThan": lambda a, b: celtypes.BoolType(a < b),
        "compareTo": lambda a, b: celtypes.IntType((a > b) - (a < b)),
    }


@functools.lru_cache(maxsize=None)
def _program(rule: str) -> Any:
    """Compiled once per rule (compiling dominates validation time)."""
    import celpy  # imported here: only validation needs it

    env = celpy.Environment()
    return env.program(env.compile(rule), functions=_k8s_functions())


def _cel_error(path: str, value: Any, message: str) -> str:
    """One rule failure as the API server words it, ``PATH: Invalid value:
    MESSAGE`` (a scalar's value shown before the message, as in ``Invalid
    value: "-1Gi": MESSAGE``) — except for a rule on the whole object, which
    the API server prints as ``<nil>: Invalid value: MESSAGE`` (its root path
    is nil): there the message alone, which names the field itself."""
    if not path:
        return message
    if not isinstance(value, (dict, list)):
        return f"{path}: Invalid value: {json.dumps(value)}: {message}"
    return f"{path}: Invalid value: {message}"


def _cel_errors(obj: dict, schema: Schema, errors: list[str]) -> None:
    """Rule failures, worded by :func:`_cel_error`."""
    import celpy

    for path, rule, message in cel_rules(schema):
        for concrete_path, value in _resolve(obj, path):
            program = _program(rule)
            try:
                ok = program.evaluate({"self": celpy.json_to_cel(value)})
            except celpy.CELEvalError as exc:  # a rule that cannot evaluate is a refusal too
                errors.append(_cel_error(concrete_path, value, f"rule {rule!r} could not be evaluated: {exc.args[0]}"))
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
    errors = _Errors()
    expected = f"{names.API_GROUP}/{names.API_VERSION}"
    if obj.get("apiVersion") != expected or obj.get("kind") != names.KIND:
        errors.append(f"apiVersion/kind: Invalid value: {_show(obj.get('apiVersion'))}/{_show(obj.get('kind'))}: "
                      f"expected {expected}/{names.KIND}")
    if not isinstance(obj.get("metadata"), dict) or not obj["metadata"].get("name"):
        errors.append("metadata.name: Required value: name or generateName is required")
    if errors:
        raise InvalidWorkerPool(name, errors)
    schema = workerpool_schema()
    defaulted = apply_defaults(_integral_numbers(obj), schema)
    _schema_errors(defaulted, schema, "", errors)
    unknown = [e for e in errors if e.startswith("unknown field ")]
    if unknown:  # kubectl's strict field validation refuses these alone, before any other check
        raise InvalidWorkerPool(name, unknown)
    _scale_errors(defaulted.get("spec"), errors)
    if errors.blocking:  # as the API server: the rules may not run on such an object
        errors.append(RULES_NOT_CHECKED)
    else:
        _cel_errors(defaulted, schema, errors)
    if errors:
        raise InvalidWorkerPool(name, list(errors))
    return defaulted
