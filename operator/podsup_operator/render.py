"""``podsup-operator render``: WorkerPool manifest → the children the operator
would apply, as a YAML stream, with no cluster (review, GitOps diffs,
debugging). An invalid WorkerPool is refused with the messages the API server
would give (see validation.py)."""
from __future__ import annotations

from typing import IO, Iterable

import yaml

from podsup import names

from .builders import desired_children
from .validation import InvalidWorkerPool, validate_workerpool


class RenderError(ValueError):
    """The input cannot be rendered; the message says why."""


def load_documents(stream: IO[str], source: str) -> list[dict]:
    try:
        docs = [d for d in yaml.safe_load_all(stream) if d is not None]
    except yaml.YAMLError as exc:
        raise RenderError(f"{source}: not valid YAML: {exc}") from None
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
    return yaml.safe_dump_all(objs, sort_keys=False, default_flow_style=False)
