"""PostgreSQL stores for the contract suites (SPEC §9): one fresh migrated database per test,
asked for only by the `postgres` parameter (memory and SQLite runs start no cluster)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from adapters.postgres.database import PgDatabase
from adapters.wiring import open_postgres
from tests.support.builders import a_settings


@asynccontextmanager
async def a_pg_database(request: pytest.FixtureRequest, **env: str) -> AsyncIterator[PgDatabase]:
    """A migrated, key-checked PostgreSQL database (settings as `a_settings(**env)`)."""
    url = request.getfixturevalue("postgres_url")
    database = open_postgres(a_settings(database=url, **env))
    try:
        yield database
    finally:
        await database.aclose()
