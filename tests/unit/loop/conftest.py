"""The ``pools`` fixture: Pools made in a test are closed after it."""
from __future__ import annotations

import pytest

from tests.unit.loop.pool import Pool


@pytest.fixture
def pools():
    made = []

    def make(**options) -> Pool:
        made.append(Pool(**options))
        return made[-1]
    yield make
    for pool in made:
        pool.close()
