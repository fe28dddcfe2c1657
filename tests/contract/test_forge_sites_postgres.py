"""§8.2 on PostgreSQL (§9): what SQLite gets from `BEGIN IMMEDIATE` and its schema, shown for
the server engine — the migration's constraints, the system token encrypted at rest, and two
processes (two pools) racing on one installation: one site, each FIT id spent once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from adapters.postgres.database import PgDatabase
from adapters.postgres.forge import PgForgeSites
from adapters.postgres.tenants import PgTenantStore
from core.model.forge import ForgeCall, SystemToken, VerifiedForgeCall
from core.model.tenant import CONNECT, FORGE, Installation
from tests.support.forge import INSTALLATION_ID
from tests.support.pg_stores import a_pg_database

NOW = datetime(2026, 12, 5, 3, 0, tzinfo=UTC)
API = "https://api.atlassian.com/ex/jira/c1"
TOKEN = "system.token.at-rest-0123456789"


def a_call(jti: str, *, token: SystemToken | None = None) -> ForgeCall:
    verified = VerifiedForgeCall(installation_id=INSTALLATION_ID, api_base_url=API,
                                 module_key="lifecycle-endpoint", environment="PRODUCTION",
                                 jti=jti, expires_at=NOW + timedelta(minutes=1))
    return ForgeCall(call=verified, remember_jti_until=NOW + timedelta(minutes=7),
                     system_token=token)


@pytest.fixture
async def two_pools(request: pytest.FixtureRequest) -> AsyncIterator[tuple[PgDatabase,
                                                                           PgDatabase]]:
    """Two pools on one database: two processes (or machines) of one deployment."""
    async with a_pg_database(request) as first:
        second = PgDatabase(first.conninfo, first.box)
        try:
            yield first, second
        finally:
            await second.aclose()


def test_8_2_s9_the_migration_lets_transport_be_forge_and_nothing_else(
        postgres_url: str) -> None:
    insert = ("INSERT INTO tenants (client_key, base_url, status, installed_at, updated_at, "
              "transport, installation_id) VALUES (%s, 'u', 'installed', 't', 't', %s, %s)")
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(insert, ["f", FORGE, "i"])
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(insert, ["g", "x", None])
        with pytest.raises(psycopg.errors.UniqueViolation):  # one site per installation id
            conn.execute(insert, ["h", CONNECT, "i"])
        conn.execute(insert, ["j", CONNECT, None])  # many sites without one
        conn.execute(insert, ["k", CONNECT, None])
        with pytest.raises(psycopg.errors.NotNullViolation):
            conn.execute("INSERT INTO used_forge_tokens (jti_hash) VALUES ('x')")


async def test_8_2_s9_the_system_token_is_encrypted_at_rest_and_the_jti_hashed(
        request: pytest.FixtureRequest) -> None:
    async with a_pg_database(request) as pg:
        await PgForgeSites(pg).record_call(
            a_call("a-plain-jti", token=SystemToken(TOKEN, NOW + timedelta(hours=1))), now=NOW)
        [(stored, expires)] = await pg.fetchall(
            "SELECT forge_system_token, forge_system_token_expires_at FROM tenants")
        assert stored and TOKEN not in stored and pg.box.decrypt(stored) == TOKEN
        assert datetime.fromisoformat(expires) == NOW + timedelta(hours=1)
        [(jti_hash,)] = await pg.fetchall("SELECT jti_hash FROM used_forge_tokens")
        assert "a-plain-jti" not in jti_hash and len(jti_hash) == 64


async def test_8_2_s9_two_processes_first_calls_of_one_installation_make_one_site(
        two_pools: tuple[PgDatabase, PgDatabase]) -> None:
    first, second = two_pools
    sites = [PgForgeSites(first), PgForgeSites(second)]
    results = await asyncio.gather(*(
        sites[n % 2].record_call(a_call(f"jti-{n}"), now=NOW) for n in range(8)))
    assert not any(result.replayed for result in results)
    ids = {result.tenant.id for result in results if result.tenant is not None}
    assert len(ids) == 1
    assert len(await PgTenantStore(first).list_all()) == 1


async def test_8_2_s9_one_fit_raced_by_two_processes_is_spent_once(
        two_pools: tuple[PgDatabase, PgDatabase]) -> None:
    first, second = two_pools
    await PgForgeSites(first).record_call(a_call("warm-up"), now=NOW)  # the site exists
    for round_ in range(5):
        results = await asyncio.gather(*(
            PgForgeSites(pool).record_call(a_call(f"raced-{round_}"), now=NOW)
            for pool in (first, second, first, second)))
        assert sorted(result.replayed for result in results) == [False, True, True, True]


async def test_8_2_s9_connect_install_carries_the_installation_id_unless_another_site_has_it(
        request: pytest.FixtureRequest) -> None:
    async with a_pg_database(request) as pg:
        tenants = PgTenantStore(pg)
        acme = await tenants.upsert_installed(Installation(
            client_key="acme-client", shared_secret="s" * 40,
            base_url="https://acme.atlassian.net", display_url=None, installed_at=NOW,
            installation_id=INSTALLATION_ID))
        assert acme.installation_id == INSTALLATION_ID
        other = await tenants.upsert_installed(Installation(
            client_key="other-client", shared_secret="o" * 40,
            base_url="https://other.atlassian.net", display_url=None, installed_at=NOW,
            installation_id=INSTALLATION_ID))
        assert other.installation_id is None  # the id stays acme's: one site per id
        again = await tenants.upsert_installed(Installation(
            client_key="acme-client", shared_secret="t" * 40,
            base_url="https://acme.atlassian.net", display_url=None, installed_at=NOW))
        assert again.installation_id == INSTALLATION_ID  # a later install without it keeps it
        switched = (await PgForgeSites(pg).record_call(a_call("a"), now=NOW)).tenant
        assert switched is not None and (switched.id, switched.transport) == (acme.id, FORGE)


async def test_8_2_s9_the_lock_free_path_spends_nothing_once_the_site_moved_on(
        request: pytest.FixtureRequest) -> None:
    """The common call takes no lock: it spends its FIT id only while the site's row is as it
    read it. A site read before another process changed it (a newer token, an uninstall) is
    refused by the statement itself — nothing spent — and the locked path decides afresh."""
    async with a_pg_database(request) as pg:
        sites = PgForgeSites(pg)
        first = SystemToken(TOKEN, NOW + timedelta(hours=1))
        stale = (await sites.record_call(a_call("a", token=first), now=NOW)).tenant
        assert stale is not None
        newer = SystemToken("system.token.newer-0123456789", NOW + timedelta(hours=2))
        assert (await sites.record_call(a_call("b", token=newer), now=NOW)).tenant is not None
        async with pg.connection() as conn:
            assert await sites.spend_if_current(conn, stale, a_call("c"), NOW) is None
        [(spent,)] = await pg.fetchall("SELECT count(*) FROM used_forge_tokens")
        assert spent == 2  # "c" was not spent
        current = await PgTenantStore(pg).get(stale.id)
        assert current is not None
        async with pg.connection() as conn:
            accepted = await sites.spend_if_current(conn, current, a_call("c"), NOW)
            replayed = await sites.spend_if_current(conn, current, a_call("c"), NOW)
        assert accepted is not None and not accepted.replayed and accepted.tenant == current
        assert replayed is not None and replayed.replayed
        result = await sites.record_call(a_call("d", token=first), now=NOW)  # an older token
        assert result.tenant is not None and result.tenant.system_token == newer
