"""``podsup-operator render``: WorkerPool manifest → the children the operator
would apply, as a YAML stream, with no cluster (review, GitOps diffs,
debugging). An invalid WorkerPool is refused with the messages the API server
would give (see validation.py); so is YAML kubectl refuses (not UTF-8, a key
twice in one mapping). The output is plain YAML: no anchors or aliases, which
some tools reading the stream (and people) do not follow."""
from __future__ import annotations

import json
from typing import IO, Any, Iterable

import yaml

from podsup import names

from .builders import desired_children
from .validation import InvalidWorkerPool, validate_workerpool


class RenderError(ValueError):
    """The input cannot be rendered; the message says why."""


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader refusing a key given twice in one mapping, as kubectl does
    (the API server would otherwise see only the last value, silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # ``<<: *base`` then an explicit key overrides it, as YAML allows
            key = self.construct_object(key_node, deep=True)
            try:
                again = key in first_line
            except TypeError:  # an unhashable key: SafeLoader words that error
                continue
            if again:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {json.dumps(key, default=str)} already set in map "
                                f"(first at line {first_line[key]})", key_node.start_mark)
            first_line[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


class _PlainDumper(yaml.SafeDumper):
    """SafeDumper that writes a shared value out again instead of an
    ``&id001`` anchor and ``*id001`` alias."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def decode(data: bytes, source: str) -> str:
    """The manifest's text: UTF-8 (as kubectl reads it), else one clear line."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise RenderError(f"{source}: not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}); "
                          "save the manifest as UTF-8") from None


def _yaml_error(exc: yaml.YAMLError) -> str:
    """One line: what and where (PyYAML's own text spans several lines)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}{problem}"


def load_documents(stream: IO[str] | str, source: str) -> list[dict]:
    try:
        docs = [d for d in yaml.load_all(stream, Loader=_StrictLoader) if d is not None]
    except yaml.YAMLError as exc:
        raise RenderError(f"{source}: not valid YAML: {_yaml_error(exc)}") from None
    pools = []
    for i, doc in enumerate(docs):
        if isinstance(doc, dict) and doc.get("kind") == "List":
            docs.extend(doc.get("items") or [])
            continue
        if not isinstance(doc, dict) or doc.get("kind") != names.KIND:
            kind = doc.get("kind") if isinstance(doc, dict) else type(doc).__name__
            raise RenderError(f"{source}: document {i + 1} is a {kind}, not a {names.KIND}")
        pools.append(doc)
    if not pools:
        raise RenderError(f"{source}: no {names.KIND} found")
    return pools


def render_children(pools: Iterable[dict], operator_image: str) -> list[dict]:
    """Every child of every pool, validated first (all problems of all pools
    are reported together)."""
    defaulted, errors = [], []
    for pool in pools:
        try:
            defaulted.append(validate_workerpool(pool))
        except InvalidWorkerPool as exc:
            errors.append(str(exc))
    if errors:
        raise RenderError("\n".join(errors))
    children = []
    for pool in defaulted:
        children += [obj for obj in desired_children(pool, operator_image).values() if obj is not None]
    return children


def dump(objs: list[dict]) -> str:
    return yaml.dump_all(objs, Dumper=_PlainDumper, sort_keys=False, default_flow_style=False)
