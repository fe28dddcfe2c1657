"""One contract suite for the administration stores: in-memory fakes and SQLite (§A, W5, W7, S1)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import attrs
import pytest

from adapters.memory.tenants import MemoryTenantStore
from adapters.postgres.tenants import PgTenantStore
from adapters.sqlite.tenants import SqliteTenantStore
from adapters.wiring import (
    AdminStores,
    memory_admin_stores,
    open_database,
    pg_admin_stores,
    sqlite_admin_stores,
)
from core.admin.search_tokens import hash_search_token, new_search_token
from core.model.bindings import AccountMapping, Binding, Link, ResolutionStrategy, StatusRule
from core.model.errors import BadRequest
from core.model.tenant import Installation
from ports.tenants import TenantStore
from tests.support.builders import a_settings
from tests.support.pg_stores import a_pg_database

SENTRY_TOKEN = "sntrys_contract-token-that-must-stay-encrypted-0123456789"
CREATED = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


@attrs.define
class World:
    stores: AdminStores
    tenants: TenantStore
    tenant_id: int = 0
    other_tenant_id: int = 0


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    if request.param == "postgres":
        async with a_pg_database(request) as pg:
            w = World(stores=pg_admin_stores(pg), tenants=PgTenantStore(pg))
            w.tenant_id = (await w.tenants.upsert_installed(an_installation("one"))).id
            w.other_tenant_id = (await w.tenants.upsert_installed(an_installation("two"))).id
            yield w
        return
    if request.param == "memory":
        w = World(stores=memory_admin_stores(), tenants=MemoryTenantStore())
        database = None
    else:
        database = open_database(a_settings(tmp_path))
        w = World(stores=sqlite_admin_stores(database), tenants=SqliteTenantStore(database))
    w.tenant_id = (await w.tenants.upsert_installed(an_installation("one"))).id
    w.other_tenant_id = (await w.tenants.upsert_installed(an_installation("two"))).id
    try:
        yield w
    finally:
        if database is not None:
            database.close()


def an_installation(client_key: str) -> Installation:
    return Installation(
        client_key=client_key,
        shared_secret="s" * 40,
        base_url="https://acme.atlassian.net",
        display_url=None,
        installed_at=CREATED,
    )


def a_binding(tenant_id: int, org: str = "acme", **changes: object) -> Binding:
    binding = Binding(
        tenant_id=tenant_id, org=org, sentry_url="https://sentry.io", sentry_token=SENTRY_TOKEN
    )
    return attrs.evolve(binding, **changes)


async def bind(
    w: World, org: str = "acme", tenant_id: int | None = None, **changes: object
) -> Binding:
    tenant = w.tenant_id if tenant_id is None else tenant_id
    return await w.stores.bindings.change(tenant, org, lambda _: a_binding(tenant, org, **changes))


# -- bindings -------------------------------------------------------------------------------


async def test_a_binding_round_trips_with_every_field(world: World) -> None:
    binding = a_binding(
        world.tenant_id,
        sync_status=False,
        sync_assignee=False,
        resolution_strategy=ResolutionStrategy.RESOLVE_CURRENT_RELEASE,
        skip_archived=True,
        status_map={
            "10000": StatusRule(resolve=frozenset({"3", "10001"}), unresolve=frozenset({"1"})),
            "7": StatusRule(),
        },
    )
    stored = await world.stores.bindings.change(world.tenant_id, "acme", lambda _: binding)
    assert stored == binding
    assert await world.stores.bindings.get(world.tenant_id, "acme") == binding


async def test_change_sees_the_current_binding_and_replaces_it(world: World) -> None:
    seen: list[Binding | None] = []

    def decide(current: Binding | None) -> Binding:
        seen.append(current)
        return a_binding(world.tenant_id, sync_status=current is None)

    first = await world.stores.bindings.change(world.tenant_id, "acme", decide)
    second = await world.stores.bindings.change(world.tenant_id, "acme", decide)
    assert seen == [None, first]
    assert second.sync_status is False
    assert await world.stores.bindings.get(world.tenant_id, "acme") == second


async def test_change_writes_nothing_when_the_decision_refuses(world: World) -> None:
    def refuse(_: Binding | None) -> Binding:
        raise BadRequest("no")

    with pytest.raises(BadRequest):
        await world.stores.bindings.change(world.tenant_id, "acme", refuse)
    assert await world.stores.bindings.get(world.tenant_id, "acme") is None


async def test_W5_bindings_of_a_tenant_by_org_with_their_tokens(world: World) -> None:
    await bind(world, "zeta")
    await bind(world, "acme")
    await bind(world, "acme", tenant_id=world.other_tenant_id)
    found = await world.stores.bindings.of_tenant(world.tenant_id)
    assert [b.org for b in found] == ["acme", "zeta"]
    assert all(b.sentry_token == SENTRY_TOKEN for b in found)
    assert await world.stores.bindings.orgs_by_tenant() == {
        world.tenant_id: ["acme", "zeta"],
        world.other_tenant_id: ["acme"],
    }
    assert await world.stores.bindings.of_tenant(999) == []


async def test_delete_binding_cascades_to_its_links_and_mappings_only(world: World) -> None:
    await bind(world, "acme")
    await bind(world, "zeta")
    links, accounts = world.stores.links, world.stores.accounts
    assert await links.replace(Link(world.tenant_id, "acme", "P-1", ("1",)))
    assert await links.replace(Link(world.tenant_id, "zeta", "P-1", ("2",)))
    assert await accounts.put(AccountMapping(world.tenant_id, "acme", "acc", "5"))
    assert await accounts.put(AccountMapping(world.tenant_id, "zeta", "acc", "6"))

    assert await world.stores.bindings.delete(world.tenant_id, "acme")
    assert not await world.stores.bindings.delete(world.tenant_id, "acme")

    assert await links.get(world.tenant_id, "acme", "P-1") is None
    assert await accounts.get(world.tenant_id, "acme", "acc") is None
    assert await links.get(world.tenant_id, "zeta", "P-1") == Link(
        world.tenant_id, "zeta", "P-1", ("2",)
    )
    assert await accounts.get(world.tenant_id, "zeta", "acc") is not None
    # rebinding starts with nothing linked
    await bind(world, "acme")
    assert await links.get(world.tenant_id, "acme", "P-1") is None


async def test_uninstall_keeps_bindings(world: World) -> None:
    await bind(world)
    await world.tenants.mark_uninstalled("one")
    assert await world.stores.bindings.get(world.tenant_id, "acme") is not None


# -- links ----------------------------------------------------------------------------------


async def test_W5_link_replace_get_delete(world: World) -> None:
    await bind(world)
    links = world.stores.links
    assert await links.get(world.tenant_id, "acme", "P-1") is None
    assert await links.replace(Link(world.tenant_id, "acme", "P-1", ("30", "4")))
    assert await links.get(world.tenant_id, "acme", "P-1") == Link(
        world.tenant_id, "acme", "P-1", ("4", "30")
    )
    assert await links.replace(Link(world.tenant_id, "acme", "P-1", ("5",)))
    assert await links.get(world.tenant_id, "acme", "P-1") == Link(
        world.tenant_id, "acme", "P-1", ("5",)
    )
    assert await links.delete(world.tenant_id, "acme", "P-1")
    assert not await links.delete(world.tenant_id, "acme", "P-1")
    assert await links.get(world.tenant_id, "acme", "P-1") is None


async def test_links_need_a_bound_org(world: World) -> None:
    assert not await world.stores.links.replace(Link(world.tenant_id, "acme", "P-1", ("1",)))
    assert await world.stores.links.get(world.tenant_id, "acme", "P-1") is None


async def test_links_are_kept_apart_by_tenant_org_and_key(world: World) -> None:
    await bind(world, "acme")
    await bind(world, "zeta")
    await bind(world, "acme", tenant_id=world.other_tenant_id)
    links = world.stores.links
    await links.replace(Link(world.tenant_id, "acme", "P-1", ("1", "2")))
    await links.replace(Link(world.tenant_id, "acme", "P-2", ("2",)))  # one issue, two keys
    await links.replace(Link(world.tenant_id, "zeta", "P-1", ("9",)))
    await links.replace(Link(world.other_tenant_id, "acme", "P-1", ("8",)))
    assert await links.get(world.tenant_id, "acme", "P-1") == Link(
        world.tenant_id, "acme", "P-1", ("1", "2")
    )
    assert await links.get(world.tenant_id, "acme", "P-2") == Link(
        world.tenant_id, "acme", "P-2", ("2",)
    )
    assert await links.get(world.tenant_id, "zeta", "P-1") == Link(
        world.tenant_id, "zeta", "P-1", ("9",)
    )
    assert await links.get(world.other_tenant_id, "acme", "P-1") == Link(
        world.other_tenant_id, "acme", "P-1", ("8",)
    )


async def test_W7_rekey_moves_links_in_every_org_of_the_tenant_and_merges(world: World) -> None:
    await bind(world, "acme")
    await bind(world, "zeta")
    await bind(world, "acme", tenant_id=world.other_tenant_id)
    links = world.stores.links
    t, other = world.tenant_id, world.other_tenant_id
    await links.replace(Link(t, "acme", "OLD-1", ("1", "2")))
    await links.replace(Link(t, "acme", "NEW-7", ("2", "3")))  # already linked: merged
    await links.replace(Link(t, "zeta", "OLD-1", ("9",)))
    await links.replace(Link(other, "acme", "OLD-1", ("8",)))  # another tenant: untouched

    moved = await links.rekey(t, "OLD-1", "NEW-7")

    assert moved == 2
    assert await links.get(t, "acme", "OLD-1") is None
    assert await links.get(t, "zeta", "OLD-1") is None
    assert await links.get(t, "acme", "NEW-7") == Link(t, "acme", "NEW-7", ("1", "2", "3"))
    assert await links.get(t, "zeta", "NEW-7") == Link(t, "zeta", "NEW-7", ("9",))
    assert await links.get(other, "acme", "OLD-1") == Link(other, "acme", "OLD-1", ("8",))
    assert await links.rekey(t, "OLD-1", "NEW-7") == 0
    assert await links.rekey(t, "NEW-7", "NEW-7") == 0
    assert await links.get(t, "acme", "NEW-7") == Link(t, "acme", "NEW-7", ("1", "2", "3"))


# -- account mappings -----------------------------------------------------------------------


async def test_W5_account_mapping_put_get_replace_delete(world: World) -> None:
    await bind(world)
    accounts = world.stores.accounts
    account = "712020:0c2d5a34-aaaa"
    assert await accounts.get(world.tenant_id, "acme", account) is None
    assert await accounts.put(AccountMapping(world.tenant_id, "acme", account, "11"))
    assert await accounts.put(AccountMapping(world.tenant_id, "acme", account, "12"))
    assert await accounts.get(world.tenant_id, "acme", account) == AccountMapping(
        world.tenant_id, "acme", account, "12"
    )
    assert await accounts.get(world.other_tenant_id, "acme", account) is None
    assert await accounts.delete(world.tenant_id, "acme", account)
    assert not await accounts.delete(world.tenant_id, "acme", account)


async def test_account_mappings_need_a_bound_org(world: World) -> None:
    assert not await world.stores.accounts.put(AccountMapping(world.tenant_id, "acme", "a", "1"))
    assert await world.stores.accounts.get(world.tenant_id, "acme", "a") is None


# -- search tokens --------------------------------------------------------------------------


async def test_S1_search_tokens_create_list_verify_revoke(world: World) -> None:
    tokens = world.stores.search_tokens
    first_token, second_token = new_search_token(), new_search_token()
    first = await tokens.create("acme", first_token, CREATED)
    second = await tokens.create("acme", second_token, CREATED)
    other = await tokens.create("zeta", new_search_token(), CREATED)
    assert first.id != second.id != other.id
    assert [t.id for t in await tokens.of_org("acme")] == [first.id, second.id]
    assert (await tokens.of_org("acme"))[0].created_at == CREATED

    assert await tokens.verify("acme", first_token)
    assert await tokens.verify("acme", second_token)
    assert not await tokens.verify("zeta", first_token)
    assert not await tokens.verify("acme", first_token + "x")
    assert not await tokens.verify("acme", "")
    assert not await tokens.verify("acme", hash_search_token(first_token))  # the hash is no token
    assert not await tokens.verify("nobody", first_token)

    assert not await tokens.revoke("zeta", first.id)  # not that org's token
    assert await tokens.revoke("acme", first.id)
    assert not await tokens.revoke("acme", first.id)
    assert not await tokens.verify("acme", first_token)
    assert await tokens.verify("acme", second_token)
    assert [t.id for t in await tokens.of_org("acme")] == [second.id]


def test_new_search_tokens_are_long_and_random() -> None:
    made = {new_search_token() for _ in range(50)}
    assert len(made) == 50
    assert all(len(t) >= 43 + len("sjst_") for t in made)


# -- at rest (SQLite) -----------------------------------------------------------------------


def _database_bytes(tmp_path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("sentry-jira"))


def test_the_sentry_token_is_not_in_the_database_file_in_clear(tmp_path: Path) -> None:
    database = open_database(a_settings(tmp_path))
    stores = sqlite_admin_stores(database)
    tenant_id = asyncio.run(SqliteTenantStore(database).upsert_installed(an_installation("one"))).id
    asyncio.run(
        stores.bindings.change(
            tenant_id, "visible-org", lambda _: a_binding(tenant_id, "visible-org")
        )
    )
    stored = asyncio.run(stores.bindings.get(tenant_id, "visible-org"))
    database.close()
    raw = _database_bytes(tmp_path)
    assert stored is not None and stored.sentry_token == SENTRY_TOKEN
    assert b"visible-org" in raw  # the row is there...
    assert SENTRY_TOKEN.encode() not in raw  # ...its token is not, in the file or its WAL


def test_a_search_tokens_plaintext_is_not_stored(tmp_path: Path) -> None:
    database = open_database(a_settings(tmp_path))
    stores = sqlite_admin_stores(database)
    token = new_search_token()
    asyncio.run(stores.search_tokens.create("acme", token, CREATED))
    database.close()
    raw = _database_bytes(tmp_path)
    assert hash_search_token(token).encode() in raw
    assert token.encode() not in raw
    assert token.removeprefix("sjst_").encode() not in raw
