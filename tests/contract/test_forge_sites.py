"""§8.2 ForgeSites: one contract for the in-memory fake, SQLite and PostgreSQL (§9) — single
use of a FIT's jti, the site by installation id (created, reactivated, switched from Connect
keeping its id), a newer system token kept (encrypted at rest), preUninstall, a refused
token dropped."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.memory.forge import MemoryForgeSites
from adapters.memory.tenants import MemoryTenantStore
from adapters.postgres.forge import PgForgeSites
from adapters.postgres.tenants import PgTenantStore
from adapters.sqlite.forge import SqliteForgeSites
from adapters.sqlite.loop_connection import LoopConnection
from adapters.sqlite.tenants import SqliteTenantStore
from adapters.wiring import open_database
from core.model.forge import ForgeCall, SystemToken, VerifiedForgeCall
from core.model.tenant import CONNECT, FORGE, Installation, TenantStatus
from tests.support.builders import a_settings
from tests.support.forge import INSTALLATION_ID
from tests.support.pg_stores import a_pg_database

NOW = datetime(2026, 12, 5, 3, 0, tzinfo=UTC)
API = "https://api.atlassian.com/ex/jira/c1"
TOKEN = "system.token.first-0123456789"


@pytest.fixture(params=["memory", "sqlite", "sqlite-loop", "postgres"])
async def stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[Any, Any]]:
    if request.param == "memory":
        tenants = MemoryTenantStore()
        yield tenants, MemoryForgeSites(tenants)
        return
    if request.param == "postgres":
        async with a_pg_database(request) as pg:
            yield PgTenantStore(pg), PgForgeSites(pg)
        return
    database = open_database(a_settings(tmp_path))
    # "sqlite-loop": the ack path's way, one item of the event-loop connection's group commit.
    loop = LoopConnection(database.path) if request.param == "sqlite-loop" else None
    try:
        yield SqliteTenantStore(database), SqliteForgeSites(database, loop)
    finally:
        if loop is not None:
            loop.close()
        database.close()


def a_call(jti: str, *, uninstall: bool = False, token: SystemToken | None = None,
           installation_id: str = INSTALLATION_ID, api: str = API) -> ForgeCall:
    verified = VerifiedForgeCall(installation_id=installation_id, api_base_url=api,
                                 module_key="lifecycle-endpoint", environment="PRODUCTION",
                                 jti=jti, expires_at=NOW + timedelta(minutes=1))
    return ForgeCall(call=verified, remember_jti_until=NOW + timedelta(minutes=7),
                     system_token=token, uninstall=uninstall)


async def test_8_2_a_first_call_creates_the_site_and_a_spent_jti_is_refused(
        stores: tuple[Any, Any]) -> None:
    tenants, sites = stores
    first = await sites.record_call(a_call("jti-1"), now=NOW)
    assert not first.replayed and first.tenant is not None
    site = first.tenant
    assert (site.transport, site.status, site.base_url, site.installation_id) == \
        (FORGE, TenantStatus.INSTALLED, API, INSTALLATION_ID)
    again = await sites.record_call(a_call("jti-1", token=SystemToken(TOKEN, NOW)), now=NOW)
    assert again.replayed and again.tenant is None
    assert [t.id for t in await tenants.list_all()] == [site.id]
    stored = await tenants.get(site.id)
    assert stored is not None and stored.system_token is None  # the replay changed nothing


async def test_8_2_a_spent_jti_is_forgotten_only_after_its_token_expired(
        stores: tuple[Any, Any]) -> None:
    _, sites = stores
    await sites.record_call(a_call("jti-x"), now=NOW)
    assert (await sites.record_call(a_call("jti-x"), now=NOW + timedelta(minutes=6))).replayed
    later = await sites.record_call(a_call("jti-x"), now=NOW + timedelta(minutes=8))
    assert not later.replayed  # by then the FIT itself is refused as expired


async def test_8_2_a_newer_system_token_is_kept_an_older_one_ignored(
        stores: tuple[Any, Any]) -> None:
    tenants, sites = stores
    one = SystemToken(TOKEN, NOW + timedelta(hours=1))
    site = (await sites.record_call(a_call("a", token=one), now=NOW)).tenant
    older = SystemToken("system.token.older-0123", NOW + timedelta(minutes=5))
    await sites.record_call(a_call("b", token=older), now=NOW)
    assert (await tenants.get(site.id)).system_token == one
    newer = SystemToken("system.token.newer-0123", NOW + timedelta(hours=2))
    await sites.record_call(a_call("c", token=newer), now=NOW)
    assert (await tenants.get(site.id)).system_token == newer


async def test_8_2_pre_uninstall_then_any_verified_call_reactivates(
        stores: tuple[Any, Any]) -> None:
    tenants, sites = stores
    site = (await sites.record_call(
        a_call("a", token=SystemToken(TOKEN, NOW + timedelta(hours=1))), now=NOW)).tenant
    gone = (await sites.record_call(a_call("b", uninstall=True), now=NOW)).tenant
    assert gone.status is TenantStatus.UNINSTALLED and gone.system_token is None
    later = NOW + timedelta(hours=1)
    back = (await sites.record_call(a_call("c"), now=later)).tenant
    assert (back.id, back.status, back.installed_at) == (site.id, TenantStatus.INSTALLED, later)
    assert len(await tenants.list_all()) == 1


async def test_8_2_pre_uninstall_of_an_unknown_installation_stores_nothing(
        stores: tuple[Any, Any]) -> None:
    tenants, sites = stores
    result = await sites.record_call(a_call("a", uninstall=True), now=NOW)
    assert not result.replayed and result.tenant is None
    assert await tenants.list_all() == []


async def test_8_2_a_refused_token_is_dropped_unless_a_newer_one_replaced_it(
        stores: tuple[Any, Any]) -> None:
    tenants, sites = stores
    one = SystemToken(TOKEN, NOW + timedelta(hours=1))
    site = (await sites.record_call(a_call("a", token=one), now=NOW)).tenant
    await sites.drop_system_token(site.id, "system.token.some-other")
    assert (await tenants.get(site.id)).system_token == one
    await sites.drop_system_token(site.id, TOKEN)
    assert (await tenants.get(site.id)).system_token is None


async def test_8_2_a_call_sees_the_site_as_stored_now_never_a_remembered_one(
        stores: tuple[Any, Any]) -> None:
    """The SQLite store keeps the sites it built by their row (#14 ack-path CPU): a row
    changed by any path (here: the token dropped after Jira's 401) is a new site at once."""
    tenants, sites = stores
    one = SystemToken(TOKEN, NOW + timedelta(hours=1))
    site = (await sites.record_call(a_call("a", token=one), now=NOW)).tenant
    assert (await sites.record_call(a_call("b"), now=NOW)).tenant.system_token == one
    await sites.drop_system_token(site.id, TOKEN)
    seen = (await sites.record_call(a_call("c"), now=NOW)).tenant
    assert seen.id == site.id and seen.system_token is None
    gone = (await sites.record_call(a_call("d", uninstall=True), now=NOW)).tenant
    assert gone.status is TenantStatus.UNINSTALLED
    assert (await tenants.get(site.id)).status is TenantStatus.UNINSTALLED


async def test_8_2_a_connect_site_carrying_the_installation_id_switches_keeping_its_id(
        stores: tuple[Any, Any], tmp_path: Path) -> None:
    tenants, sites = stores
    connect = await tenants.upsert_installed(Installation(
        client_key="acme-client", shared_secret="s" * 40, base_url="https://acme.atlassian.net",
        display_url=None, installed_at=NOW - timedelta(days=1)))
    await _carry_installation_id(tenants, connect.id, tmp_path)
    switched = (await sites.record_call(a_call("a"), now=NOW)).tenant
    assert (switched.id, switched.transport, switched.client_key) == \
        (connect.id, FORGE, "acme-client")
    assert switched.shared_secret is None and switched.base_url == API
    assert len(await tenants.list_all()) == 1
    assert switched.transport != CONNECT


async def _carry_installation_id(tenants: Any, tenant_id: int, tmp_path: Path) -> None:
    """Connect on Forge stores the `installed` payload's installationId (manifest branch);
    here it is set directly on the stored row."""
    if isinstance(tenants, MemoryTenantStore):
        import attrs
        tenant = next(t for t in tenants._by_key.values() if t.id == tenant_id)
        tenants.save(attrs.evolve(tenant, installation_id=INSTALLATION_ID))
        return
    if isinstance(tenants, PgTenantStore):
        async with tenants._database.transaction() as conn:
            await conn.execute("UPDATE tenants SET installation_id = %s WHERE id = %s",
                               [INSTALLATION_ID, tenant_id])
        return
    conn = sqlite3.connect(a_settings(tmp_path).database)
    with conn:
        conn.execute("UPDATE tenants SET installation_id = ? WHERE id = ?",
                     [INSTALLATION_ID, tenant_id])
    conn.close()


def test_8_2_the_migration_lets_transport_be_forge_and_nothing_else(tmp_path: Path) -> None:
    open_database(a_settings(tmp_path)).close()
    conn = sqlite3.connect(a_settings(tmp_path).database)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        conn.execute("INSERT INTO tenants (client_key, base_url, status, installed_at, "
                     "updated_at, transport) VALUES ('f', 'u', 'installed', 't', 't', 'forge')")
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("INSERT INTO tenants (client_key, base_url, status, installed_at, "
                         "updated_at, transport) VALUES ('g', 'u', 'installed', 't', 't', 'x')")
        conn.execute("UPDATE tenants SET installation_id = 'i' WHERE client_key = 'f'")
        with pytest.raises(sqlite3.IntegrityError):  # one site per installation id
            conn.execute(
                "INSERT INTO tenants (client_key, base_url, status, installed_at, updated_at, "
                "installation_id) VALUES ('h', 'u', 'installed', 't', 't', 'i')")
    finally:
        conn.close()


def test_8_2_the_system_token_is_encrypted_at_rest(tmp_path: Path) -> None:
    import asyncio
    database = open_database(a_settings(tmp_path))
    try:
        asyncio.run(SqliteForgeSites(database).record_call(
            a_call("a", token=SystemToken(TOKEN, NOW + timedelta(hours=1))), now=NOW))
    finally:
        database.close()
    raw = a_settings(tmp_path).database.read_bytes()
    assert TOKEN.encode() not in raw
    conn = sqlite3.connect(a_settings(tmp_path).database)
    stored = conn.execute("SELECT forge_system_token FROM tenants").fetchone()[0]
    conn.close()
    assert stored and TOKEN not in stored
