"""Helpers for the operator's unit tests: a minimal valid WorkerPool, defaulted
as the API server would."""
from __future__ import annotations

import copy
from typing import Any

import pytest

from podsup import names
from podsup_operator.builders.deployment import worker_command
from podsup_operator.crd import workerpool_schema
from podsup_operator.validation import apply_defaults


def make_pool(spec: dict[str, Any] | None = None, *, name: str = "jobs", namespace: str = "prod",
              uid: str | None = "u-1", defaults: bool = True) -> dict:
    pool = {
        "apiVersion": f"{names.API_GROUP}/{names.API_VERSION}",
        "kind": names.KIND,
        "metadata": {"name": name, "namespace": namespace, "generation": 3},
        "spec": {"image": "php:8.3-cli", "command": ["php", "worker.php"], **copy.deepcopy(spec or {})},
    }
    if uid:
        pool["metadata"]["uid"] = uid
    return apply_defaults(pool, workerpool_schema()) if defaults else pool


@pytest.fixture
def pool_factory():
    return make_pool


def flags(pool: dict) -> list[str]:
    """The podsup run flags a pool's worker container gets (before the ``--``)."""
    cmd = worker_command(pool)
    return cmd[2:cmd.index("--")]


def flag(pool: dict, name: str) -> str | None:
    """The value of one podsup run flag, or None when the builder leaves it out."""
    args = flags(pool)
    return args[args.index(name) + 1] if name in args else None
