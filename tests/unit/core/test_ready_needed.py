"""How many running workers /readyz needs (Config.ready_needed)."""
from __future__ import annotations

import pytest

from podsup.cli.options import load


def ready_needed(args: list[str], desired: int) -> int:
    return load([*args, "--", "w"], {}, check_command=False).ready_needed(desired)


@pytest.mark.parametrize("args, desired, needed", [
    ([], 4, 4),                       # default: all
    ([], 0, 1),                       # scaled to 0: never ready by default
    (["--min-ready", "2"], 5, 2),
    (["--min-ready", "3"], 2, 2),     # capped by the desired count
    (["--min-ready", "2"], 0, 1),     # ... but still at least one
    (["--min-ready", "0"], 0, 0),     # explicit 0: ready whatever runs
    (["--min-ready", "0"], 3, 0),
])
def test_ready_needed(args, desired, needed):
    assert ready_needed(args, desired) == needed
