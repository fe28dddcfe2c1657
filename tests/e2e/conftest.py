from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import sync_e2e
from tests.support.engines import ENGINES, Storage


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


def _storage(request: pytest.FixtureRequest) -> Iterator[Storage]:
    if request.param == "sqlite":
        yield Storage("sqlite")
        return
    cluster = request.getfixturevalue("postgres_cluster")
    url = cluster.database(migrated=False)  # empty: `serve` migrates it, as in production
    try:
        yield Storage("postgres", url)
    finally:
        cluster.drop(url)


@pytest.fixture(scope="module", params=ENGINES)
def module_storage(request: pytest.FixtureRequest) -> Iterator[Storage]:
    """§9: a module's server on SQLite, then on a fresh PostgreSQL database."""
    yield from _storage(request)


@pytest.fixture(params=ENGINES)
def storage(request: pytest.FixtureRequest) -> Iterator[Storage]:
    """§9: the test on SQLite, then on a fresh PostgreSQL database of its own."""
    yield from _storage(request)
