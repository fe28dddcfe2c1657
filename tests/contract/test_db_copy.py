"""`sentry-jira db copy` (SPEC §9): every table between engines, either way, verified; an empty
target only; no password on the command line; encrypted values kept as they are; sequences
moved past the copied ids. And the registry it reads holds every table of both engines."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result

from adapters.cli.main import main
from adapters.postgres.forge import PgForgeSites
from adapters.postgres.inbox import PgInbox
from adapters.postgres.lifecycle import PgLifecycleStore
from adapters.postgres.sync_store import PgSyncStore
from adapters.postgres.tenants import PgTenantStore
from adapters.sqlite.forge import SqliteForgeSites
from adapters.sqlite.inbox import SqliteInbox
from adapters.sqlite.lifecycle import SqliteLifecycleStore
from adapters.sqlite.loop_connection import LoopConnection
from adapters.sqlite.sync_store import SqliteSyncStore
from adapters.sqlite.tenants import SqliteTenantStore
from adapters.storage_registry import ENCRYPTED_COLUMNS, MIGRATION_TABLES, TABLES
from adapters.wiring import open_database, open_postgres, pg_admin_stores, sqlite_admin_stores
from core.model.credentials import ApiToken, JiraFlavor
from core.model.tenant import Installation, NewSite
from ports.inbox import NewDelivery
from ports.tenants import TenantStore
from tests.support.builders import TEST_FERNET_KEY, a_settings
from tests.support.every_row import (
    AT,
    FORGE_INSTALLATION_ID,
    FORGE_SYSTEM_TOKEN,
    SENTRY_TOKEN,
    SHARED_SECRET,
    WEBHOOK_SECRETS,
    AllStores,
    populate,
)
from tests.support.postgres import PostgresCluster

REGISTERED = {table.name for table in TABLES}


def sqlite_tables(path: Path) -> dict[str, list[str]]:
    conn = sqlite3.connect(path)
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {n: sorted(r[1] for r in conn.execute(f'PRAGMA table_info("{n}")'))
                for n in names if n not in MIGRATION_TABLES}
    finally:
        conn.close()


def pg_tables(url: str) -> dict[str, list[str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT table_name, column_name FROM information_schema.columns "
                            "WHERE table_schema = current_schema()").fetchall()
    tables: dict[str, list[str]] = {}
    for table, column in rows:
        if table not in MIGRATION_TABLES:
            tables.setdefault(table, []).append(column)
    return {name: sorted(columns) for name, columns in tables.items()}


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    open_database(a_settings(tmp_path)).close()
    return tmp_path / "sentry-jira.db"


# -- the registry ---------------------------------------------------------------------------


def test_s9_every_sqlite_table_is_in_the_registry(sqlite_path: Path) -> None:
    assert set(sqlite_tables(sqlite_path)) == REGISTERED


def test_s9_every_postgresql_table_is_in_the_registry(postgres_url: str) -> None:
    assert set(pg_tables(postgres_url)) == REGISTERED


def test_s9_both_engines_have_the_same_columns_a_migration_lands_in_both(
    sqlite_path: Path, postgres_url: str,
) -> None:
    assert sqlite_tables(sqlite_path) == pg_tables(postgres_url)


def test_s9_every_encrypted_column_is_a_column_of_a_registered_table(sqlite_path: Path) -> None:
    tables = sqlite_tables(sqlite_path)
    for table, column in ENCRYPTED_COLUMNS:
        assert column in tables[table], (table, column)


# -- populating either engine through its stores --------------------------------------------


def sqlite_stores_populated(path: Path) -> dict[str, int]:
    database = open_database(a_settings(database=str(path)))
    loop = LoopConnection(database.path)
    sync = SqliteSyncStore(database)
    tenants = SqliteTenantStore(database)
    try:
        return asyncio.run(populate(AllStores(
            tenants=tenants, lifecycle=SqliteLifecycleStore(database, tenants),
            admin=sqlite_admin_stores(database), inbox=SqliteInbox(database, loop), sync=sync,
            upkeep=sync, forge=SqliteForgeSites(database))))
    finally:
        loop.close()
        database.close()


def pg_populated(url: str) -> dict[str, int]:
    async def run() -> dict[str, int]:
        pg = open_postgres(a_settings(database=url))
        try:
            tenants = PgTenantStore(pg)
            return await populate(AllStores(
                tenants=tenants, lifecycle=PgLifecycleStore(pg, tenants),
                admin=pg_admin_stores(pg), inbox=PgInbox(pg), sync=PgSyncStore(pg),
                upkeep=PgSyncStore(pg), forge=PgForgeSites(pg)))
        finally:
            await pg.aclose()

    return asyncio.run(run())


async def assert_readable(tenants: TenantStore, ids: dict[str, int], binding_token: str) -> None:
    acme = await tenants.get(ids["acme"])
    assert acme is not None and acme.shared_secret == SHARED_SECRET
    hooks = await tenants.get(ids["hooks"])
    assert hooks is not None and hooks.webhook_secrets is not None
    assert hooks.webhook_secrets.current == WEBHOOK_SECRETS[1]
    assert binding_token == SENTRY_TOKEN
    forge = await tenants.get(ids["forge"])  # §8.2: the site and its system token
    assert forge is not None and forge.installation_id == FORGE_INSTALLATION_ID
    assert forge.system_token is not None and forge.system_token.token == FORGE_SYSTEM_TOKEN


def db_copy(database: str, *args: str, key: str = TEST_FERNET_KEY) -> Result:
    return CliRunner().invoke(main, ["db", "copy", *args], env={
        "SENTRY_JIRA_DATABASE": database, "SENTRY_JIRA_SECRET_KEY": key})


@pytest.fixture
def empty_pg(postgres_cluster: PostgresCluster) -> Iterator[str]:
    yield postgres_cluster.database(migrated=False)


# -- the copy -------------------------------------------------------------------------------


def test_s9_copy_sqlite_to_postgresql_and_back_keeps_every_row(
    tmp_path: Path, empty_pg: str,
) -> None:
    source = tmp_path / "source.db"
    ids = sqlite_stores_populated(source)

    there = db_copy(str(source), "--to", empty_pg, "--json")
    assert there.exit_code == 0, there.output
    to_pg = json.loads(there.output)["tables"]
    assert set(to_pg) == REGISTERED
    assert all(to_pg[name]["rows"] > 0 for name in REGISTERED), to_pg  # every kind of row

    back_path = tmp_path / "back.db"
    back = db_copy(empty_pg, "--to", str(back_path), "--json")
    assert back.exit_code == 0, back.output
    assert json.loads(back.output)["tables"] == to_pg  # same counts, same checksums

    # Ciphertexts are copied as they are, not re-encrypted.
    def ciphertexts(rows: list[Any]) -> set[str]:
        return {row[0] for row in rows if row[0] is not None}
    for table, column in ENCRYPTED_COLUMNS:
        with sqlite3.connect(source) as conn:
            before = ciphertexts(conn.execute(f"SELECT {column} FROM {table}").fetchall())
        with psycopg.connect(empty_pg) as pconn:
            after = ciphertexts(pconn.execute(
                f"SELECT {column} FROM {table}".encode()).fetchall())
        assert before == after, (table, column)

    async def continue_on_postgresql() -> None:
        pg = open_postgres(a_settings(database=empty_pg))  # the same key reads everything
        try:
            tenants = PgTenantStore(pg)
            [binding] = await pg_admin_stores(pg).bindings.of_tenant(ids["acme"])
            await assert_readable(tenants, ids, binding.sentry_token)
            # Sequences moved past the copied ids: new rows get new ids.
            token = await pg_admin_stores(pg).search_tokens.create(
                "acme", "another-search-token-0123456789", AT)
            assert token.id > 1
            site_ids = [t.id for t in await tenants.list_all()]
            fresh = await tenants.upsert_installed(Installation(
                client_key="new-after-copy", shared_secret="s" * 40,
                base_url="https://new.atlassian.net", display_url=None, installed_at=AT))
            assert fresh.id > max(site_ids)
            assert await PgInbox(pg).record(NewDelivery(
                tenant_id=ids["acme"], delivery_id="after-copy", issue_id="1",
                issue_key="APP-9", body=b"{}", received_at=AT))
        finally:
            await pg.aclose()

    asyncio.run(continue_on_postgresql())


def test_s9_copy_postgresql_to_sqlite_then_the_sqlite_stores_read_it(
    tmp_path: Path, postgres_url: str,
) -> None:
    ids = pg_populated(postgres_url)
    target = tmp_path / "copy.db"
    result = db_copy(postgres_url, "--to", str(target))
    assert result.exit_code == 0, result.output
    assert "postgresql://" in result.output and "deliveries: 3 rows" in result.output
    database = open_database(a_settings(database=str(target)))
    try:
        [binding] = asyncio.run(sqlite_admin_stores(database).bindings.of_tenant(ids["acme"]))
        asyncio.run(assert_readable(SqliteTenantStore(database), ids, binding.sentry_token))
        new_id = asyncio.run(SqliteTenantStore(database).register_site(NewSite(
            base_url="https://later.atlassian.net", flavor=JiraFlavor.CLOUD,
            credential=ApiToken("a@b.example", "t" * 20), webhook_secret="w" * 40,
            registered_at=AT))).id
        assert new_id > ids["hooks"]
    finally:
        database.close()


def test_s9_a_non_empty_target_is_refused_and_left_as_it_was(
    tmp_path: Path, postgres_url: str,
) -> None:
    ids = pg_populated(postgres_url)
    source = tmp_path / "source.db"
    sqlite_stores_populated(source)
    before = pg_tables(postgres_url)
    with psycopg.connect(postgres_url) as conn:
        tenants_before = conn.execute("SELECT count(*) FROM tenants").fetchone()
    result = db_copy(str(source), "--to", postgres_url)
    assert result.exit_code == 1
    assert "not empty" in result.output
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT count(*) FROM tenants").fetchone() == tenants_before
    assert pg_tables(postgres_url) == before and ids


def test_s9_a_target_url_with_a_password_is_refused_before_anything_is_opened(
    tmp_path: Path, empty_pg: str,
) -> None:
    source = tmp_path / "source.db"
    sqlite_stores_populated(source)
    for url in (empty_pg + "&password=hunter2-secret",
                empty_pg.replace("postgresql:///", "postgresql://postgres:hunter2-secret@/")):
        result = db_copy(str(source), "--to", url)
        assert result.exit_code == 2, result.output
        assert "PGPASSWORD" in result.output
        assert "hunter2" not in result.output
    assert pg_tables(empty_pg) == {}  # not even migrated


def test_s9_another_url_scheme_as_target_is_a_usage_error(tmp_path: Path) -> None:
    source = tmp_path / "source.db"
    sqlite_stores_populated(source)
    result = db_copy(str(source), "--to", "mysql://root@127.0.0.1/sj")
    assert result.exit_code == 2
    assert not (tmp_path / "mysql:").exists()
