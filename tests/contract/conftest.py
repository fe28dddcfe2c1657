from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.sync_stores import STORE_KINDS, Stores, open_stores


@pytest.fixture(params=STORE_KINDS)
async def stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stores]:
    """The sync store and its inbox: the memory fake, SQLite, SQLite on the loop's connection,
    PostgreSQL (§9)."""
    async with open_stores(request.param, tmp_path, request) as opened:
        yield opened
