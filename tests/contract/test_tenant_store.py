"""One contract suite for both tenant stores, the in-memory fake and SQLite (L3–L6): the
`TenantStore` port's reads, and the writes (`upsert_installed`, `mark_uninstalled`) that the
lifecycle stores are built on — those are not on the port, no use case calls them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.memory.tenants import MemoryTenantStore
from adapters.postgres.tenants import PgTenantStore
from adapters.sqlite.tenants import SqliteTenantStore
from adapters.wiring import open_database
from core.model.tenant import Installation, TenantStatus
from tests.support.builders import a_settings
from tests.support.pg_stores import a_pg_database

# The concrete stores: the writes are theirs.
Tenants = MemoryTenantStore | SqliteTenantStore | PgTenantStore

SECRET = "a-shared-secret-that-must-never-be-stored-in-clear-0123456789"


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def tenants(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Tenants]:
    if request.param == "memory":
        yield MemoryTenantStore()
        return
    if request.param == "postgres":
        async with a_pg_database(request) as pg:
            yield PgTenantStore(pg)
        return
    database = open_database(a_settings(tmp_path))
    try:
        yield SqliteTenantStore(database)
    finally:
        database.close()


def an_installation(
    client_key: str = "client-1", secret: str = SECRET, base_url: str = "https://acme.atlassian.net"
) -> Installation:
    return Installation(
        client_key=client_key,
        shared_secret=secret,
        base_url=base_url,
        display_url="https://jira.acme.example",
        installed_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


async def test_L3_new_client_key_creates_an_installed_tenant(tenants: Tenants) -> None:
    tenant = await tenants.upsert_installed(an_installation())
    assert tenant.status is TenantStatus.INSTALLED
    assert tenant.shared_secret == SECRET
    assert tenant.base_url == "https://acme.atlassian.net"
    assert tenant.display_url == "https://jira.acme.example"
    assert await tenants.by_client_key("client-1") == tenant
    assert await tenants.get(tenant.id) == tenant
    assert await tenants.list_all() == [tenant]


async def test_L3_each_tenant_gets_a_stable_distinct_id(tenants: Tenants) -> None:
    first = await tenants.upsert_installed(an_installation("one"))
    second = await tenants.upsert_installed(an_installation("two"))
    again = await tenants.upsert_installed(an_installation("one", secret="rotated" * 6))
    assert first.id != second.id
    assert again.id == first.id
    assert [t.client_key for t in await tenants.list_all()] == ["one", "two"]


async def test_L4_reinstall_rotates_the_secret_and_bumps_its_version(tenants: Tenants) -> None:
    first = await tenants.upsert_installed(an_installation())
    rotated = await tenants.upsert_installed(
        an_installation(secret="new-secret-" * 5, base_url="https://acme2.atlassian.net")
    )
    assert rotated.shared_secret == "new-secret-" * 5
    assert rotated.base_url == "https://acme2.atlassian.net"
    assert rotated.secret_version > first.secret_version
    stored = await tenants.by_client_key("client-1")
    assert stored is not None and stored.shared_secret == "new-secret-" * 5


async def test_L5_uninstall_erases_the_secret(tenants: Tenants) -> None:
    installed = await tenants.upsert_installed(an_installation())
    gone = await tenants.mark_uninstalled("client-1")
    assert gone is not None
    assert gone.status is TenantStatus.UNINSTALLED
    assert gone.shared_secret is None
    assert not gone.is_installed
    assert gone.id == installed.id
    assert gone.secret_version > installed.secret_version


async def test_L5_uninstall_of_an_unknown_client_key_returns_none(tenants: Tenants) -> None:
    assert await tenants.mark_uninstalled("nobody") is None
    assert await tenants.list_all() == []


async def test_L4_reinstall_after_uninstall_reinstates(tenants: Tenants) -> None:
    await tenants.upsert_installed(an_installation())
    await tenants.mark_uninstalled("client-1")
    back = await tenants.upsert_installed(an_installation(secret="back-again-" * 4))
    assert back.is_installed and back.shared_secret == "back-again-" * 4


async def test_unknown_lookups_return_none(tenants: Tenants) -> None:
    assert await tenants.get(999) is None
    assert await tenants.by_client_key("missing") is None


async def test_L6_concurrent_installs_of_one_client_key_leave_one_tenant(
    tenants: Tenants,
) -> None:
    results = await asyncio.gather(
        *(
            tenants.upsert_installed(an_installation(secret=f"secret-{n:02d}-" * 6))
            for n in range(10)
        )
    )
    assert len({t.id for t in results}) == 1
    assert len(await tenants.list_all()) == 1


def test_the_shared_secret_is_not_in_the_database_file_in_clear(tmp_path: Path) -> None:
    settings = a_settings(tmp_path)
    database = open_database(settings)
    store = SqliteTenantStore(database)
    asyncio.run(store.upsert_installed(an_installation()))
    database.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("sentry-jira"))
    assert b"client-1" in raw  # the row is there...
    assert SECRET.encode() not in raw  # ...its secret is not, in the file or its WAL
