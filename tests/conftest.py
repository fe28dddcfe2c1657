from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.fake_sentry import FakeSentry
from tests.support.postgres import PostgresCluster, missing_reason


@pytest.fixture
def fake_sentry() -> Iterator[FakeSentry]:
    """A fake Sentry web API on 127.0.0.1 (W8), stopped after the test."""
    with FakeSentry() as server:
        yield server


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """§9: a throwaway PostgreSQL cluster (initdb + pg_ctl, Unix socket only) for the whole
    session, started on first use. Without PostgreSQL here the test is skipped — except in
    CI (`CI=true`), where that is a failure: no PostgreSQL test may silently not run."""
    reason = missing_reason()
    if reason is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"PostgreSQL is needed in CI: {reason}")
        pytest.skip(reason)
    cluster = PostgresCluster()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def postgres_url(postgres_cluster: PostgresCluster) -> Iterator[str]:
    """The URL of a fresh, migrated database of the session's cluster, dropped afterwards."""
    url = postgres_cluster.database()
    yield url
    postgres_cluster.drop(url)
