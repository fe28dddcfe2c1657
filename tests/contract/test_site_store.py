"""Webhook sites in the tenant stores (#13; SPEC §8.0, §8.1, §A): one contract suite for the
in-memory fake and SQLite, and `TenantLookup.by_id` for the memory store and the event-loop
lookup of the hot path (a rotation or removal committed by another connection is seen by the
next request)."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters.memory.tenants import MemoryTenantStore
from adapters.postgres.tenants import PgTenantStore
from adapters.sqlite.loop_connection import LoopConnection
from adapters.sqlite.tenant_lookup import LoopTenantLookup
from adapters.sqlite.tenants import SqliteTenantStore
from adapters.wiring import open_database
from core.model.credentials import ApiToken, JiraFlavor, PersonalAccessToken
from core.model.errors import Conflict
from core.model.tenant import NewSite, TenantStatus
from tests.contract.test_tenant_store import an_installation
from tests.support.builders import a_settings
from tests.support.pg_stores import a_pg_database

Tenants = MemoryTenantStore | SqliteTenantStore | PgTenantStore

AT = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
FIRST = "first-webhook-secret-0123456789abcdef012345"
SECOND = "second-webhook-secret-0123456789abcdef01234"
TOKEN = "cloud-api-token-0123456789abcdef"
PAT = "data-center-pat-0123456789abcdef"


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


def a_site(base_url: str = "https://hooks.atlassian.net", *, dc: bool = False) -> NewSite:
    if dc:
        return NewSite(base_url=base_url, flavor=JiraFlavor.DATA_CENTER,
                       credential=PersonalAccessToken(PAT), webhook_secret=FIRST,
                       registered_at=AT)
    return NewSite(base_url=base_url, flavor=JiraFlavor.CLOUD,
                   credential=ApiToken("bot@hooks.example", TOKEN), webhook_secret=FIRST,
                   registered_at=AT)


async def test_8_1_a_registered_site_reads_back_whole(tenants: Tenants) -> None:
    site = await tenants.register_site(a_site())
    dc = await tenants.register_site(a_site("https://jira.corp.example/jira", dc=True))
    for stored, flavor, credential in ((site, JiraFlavor.CLOUD, ApiToken("bot@hooks.example",
                                                                         TOKEN)),
                                       (dc, JiraFlavor.DATA_CENTER, PersonalAccessToken(PAT))):
        back = await tenants.get(stored.id)
        assert back == stored and await tenants.by_id(stored.id) == stored
        assert back.transport == "webhook" and back.flavor is flavor
        assert back.site_credential == credential and back.jira_credential == credential
        assert back.webhook_secrets is not None and back.webhook_secrets.current == FIRST
        assert back.webhook_secrets.valid_at(AT) == (FIRST,)
        assert back.status is TenantStatus.INSTALLED and back.is_installed
        assert back.shared_secret is None and back.installed_at == AT
    assert dc.base_url == "https://jira.corp.example/jira"
    assert [t.id for t in await tenants.list_all()] == [site.id, dc.id]
    assert site.client_key != dc.client_key  # stand-ins, unique like every clientKey
    assert FIRST not in repr(site) and TOKEN not in repr(site)


async def test_8_0_one_id_space_with_connect_tenants(tenants: Tenants) -> None:
    connect = await tenants.upsert_installed(an_installation())
    site = await tenants.register_site(a_site())
    assert site.id != connect.id
    assert (await tenants.get(connect.id)).transport == "connect"  # type: ignore[union-attr]


async def test_8_1_a_base_url_an_installed_site_has_is_a_conflict(tenants: Tenants) -> None:
    connect = await tenants.upsert_installed(an_installation(base_url="https://acme.atlassian.net"))
    with pytest.raises(Conflict):
        await tenants.register_site(a_site("https://acme.atlassian.net"))  # a Connect tenant's
    site = await tenants.register_site(a_site())
    with pytest.raises(Conflict):
        await tenants.register_site(a_site())  # another webhook site's
    assert [t.id for t in await tenants.list_all()] == [connect.id, site.id]  # nothing stored
    await tenants.remove_site(site.id)
    again = await tenants.register_site(a_site())  # a removed site's base URL is free again
    assert again.id not in (connect.id, site.id)


async def test_8_1_base_url_taken_answers_for_installed_sites_of_every_transport(
    tenants: Tenants,
) -> None:
    assert not await tenants.base_url_taken("https://acme.atlassian.net")
    await tenants.upsert_installed(an_installation(base_url="https://acme.atlassian.net"))
    site = await tenants.register_site(a_site())
    assert await tenants.base_url_taken("https://acme.atlassian.net")  # a Connect tenant's
    assert await tenants.base_url_taken("https://hooks.atlassian.net")  # a webhook site's
    await tenants.remove_site(site.id)
    assert not await tenants.base_url_taken("https://hooks.atlassian.net")  # removed: free


async def test_8_1_rotation_keeps_the_previous_secret_for_one_hour(tenants: Tenants) -> None:
    site = await tenants.register_site(a_site())
    rotated = await tenants.rotate_webhook_secret(site.id, SECOND, now=AT)
    assert rotated is not None and rotated.webhook_secrets is not None
    back = await tenants.get(site.id)
    assert back == rotated and rotated.secret_version > site.secret_version
    secrets = rotated.webhook_secrets
    assert (secrets.current, secrets.previous) == (SECOND, FIRST)
    assert secrets.previous_valid_until == AT + timedelta(hours=1)
    assert secrets.valid_at(AT + timedelta(minutes=59)) == (SECOND, FIRST)
    assert secrets.valid_at(AT + timedelta(hours=1)) == (SECOND,)


async def test_8_1_set_credential_replaces_it(tenants: Tenants) -> None:
    site = await tenants.register_site(a_site())
    changed = await tenants.set_site_credential(site.id, ApiToken("other@hooks.example", "t2"))
    assert changed is not None and changed == await tenants.get(site.id)
    assert changed.site_credential == ApiToken("other@hooks.example", "t2")
    assert changed.webhook_secrets == site.webhook_secrets


async def test_8_1_remove_erases_every_secret_and_credential(tenants: Tenants) -> None:
    site = await tenants.register_site(a_site())
    await tenants.rotate_webhook_secret(site.id, SECOND, now=AT)
    removed = await tenants.remove_site(site.id)
    assert removed is not None and removed == await tenants.get(site.id)
    assert removed.status is TenantStatus.UNINSTALLED and not removed.is_installed
    assert (removed.webhook_secrets, removed.site_credential, removed.jira_credential) == (
        None, None, None)
    assert removed.transport == "webhook"  # still listed, as an uninstalled site (L5)
    # Removed: no rotation or credential brings it back; removing again changes nothing.
    assert await tenants.rotate_webhook_secret(site.id, FIRST, now=AT) is None
    assert await tenants.set_site_credential(site.id, PersonalAccessToken(PAT)) is None
    assert await tenants.remove_site(site.id) == removed


async def test_8_1_site_writes_refuse_other_transports_and_unknown_ids(tenants: Tenants) -> None:
    connect = await tenants.upsert_installed(an_installation())
    for tenant_id in (connect.id, 999):
        assert await tenants.rotate_webhook_secret(tenant_id, SECOND, now=AT) is None
        assert await tenants.set_site_credential(tenant_id, PersonalAccessToken(PAT)) is None
        assert await tenants.remove_site(tenant_id) is None
    assert await tenants.get(connect.id) == connect  # untouched
    assert await tenants.by_id(999) is None


async def test_8_1_a_connect_uninstall_or_install_never_touches_a_webhook_site(
    tenants: Tenants,
) -> None:
    site = await tenants.register_site(a_site())
    await tenants.mark_uninstalled(site.client_key)
    await tenants.upsert_installed(an_installation(client_key=site.client_key))
    assert await tenants.get(site.id) == site


# -- SQLite at rest and the hot path's lookup ------------------------------------------------


def test_8_1_secrets_and_credentials_are_encrypted_at_rest(tmp_path: Path) -> None:
    import asyncio

    database = open_database(a_settings(tmp_path))
    store = SqliteTenantStore(database)
    try:
        site = asyncio.run(store.register_site(a_site()))
        asyncio.run(store.rotate_webhook_secret(site.id, SECOND, now=AT))
    finally:
        database.close()
    conn = sqlite3.connect(tmp_path / "sentry-jira.db")
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        dump = "\n".join(conn.iterdump())
    finally:
        conn.close()
    for secret in (FIRST, SECOND, TOKEN):
        assert secret not in dump


async def test_8_1_by_id_sees_rotation_and_removal_by_another_connection(
    tmp_path: Path,
) -> None:
    writer = open_database(a_settings(tmp_path))  # "another process"
    reader_db = open_database(a_settings(tmp_path))
    loop_connection = LoopConnection(reader_db.path)
    lookup = LoopTenantLookup(loop_connection, reader_db.box)
    store = SqliteTenantStore(writer)
    try:
        site = await store.register_site(a_site())
        first = await lookup.by_id(site.id)
        assert first == site and await lookup.by_id(site.id) == site  # cached, same row
        await store.rotate_webhook_secret(site.id, SECOND, now=AT)
        rotated = await lookup.by_id(site.id)
        assert rotated is not None and rotated.webhook_secrets is not None
        assert rotated.webhook_secrets.valid_at(AT) == (SECOND, FIRST)
        await store.remove_site(site.id)
        gone = await lookup.by_id(site.id)
        assert gone is not None and not gone.is_installed and gone.webhook_secrets is None
        assert await lookup.by_id(site.id + 1000) is None
        # The clientKey cache and the id cache are separate: a Connect tenant is found by
        # both, and each sees the uninstall.
        connect = await store.upsert_installed(an_installation())
        assert await lookup.by_id(connect.id) == await lookup.by_client_key("client-1")
        await store.mark_uninstalled("client-1")
        by_id = await lookup.by_id(connect.id)
        assert by_id is not None and not by_id.is_installed
    finally:
        loop_connection.close()
        reader_db.close()
        writer.close()


async def test_8_1_memory_store_serves_as_the_lookup() -> None:
    store = MemoryTenantStore()
    site = await store.register_site(a_site())
    assert await store.by_id(site.id) == site
    await store.rotate_webhook_secret(site.id, SECOND, now=AT)
    rotated = await store.by_id(site.id)
    assert rotated is not None and rotated.webhook_secrets is not None
    assert rotated.webhook_secrets.current == SECOND
