from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import sync_e2e


@pytest.fixture(params=["sqlite", "postgres"])
def each_engine(request: pytest.FixtureRequest) -> Iterator[str]:
    """§9: the test once on SQLite and once on a fresh PostgreSQL database (through
    `sync_env`); use with `pytest.mark.usefixtures("each_engine")`."""
    if request.param == "sqlite":
        yield "sqlite"
        return
    sync_e2e.POSTGRES_URL = request.getfixturevalue("postgres_url")
    try:
        yield "postgres"
    finally:
        sync_e2e.POSTGRES_URL = None
