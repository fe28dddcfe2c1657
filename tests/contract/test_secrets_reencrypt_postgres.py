"""`secrets reencrypt` on PostgreSQL (§A, §9): the same registry, the same rules as SQLite."""

from __future__ import annotations

import asyncio
import json

import psycopg
import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet

from adapters.cli.main import main
from adapters.config import ConfigError
from adapters.postgres.forge import PgForgeSites
from adapters.postgres.inbox import PgInbox
from adapters.postgres.lifecycle import PgLifecycleStore
from adapters.postgres.sync_store import PgSyncStore
from adapters.postgres.tenants import PgTenantStore
from adapters.storage_registry import ENCRYPTED_COLUMNS
from adapters.wiring import open_postgres, pg_admin_stores
from tests.support.builders import a_settings
from tests.support.every_row import (
    FORGE_SYSTEM_TOKEN,
    SENTRY_TOKEN,
    SHARED_SECRET,
    AllStores,
    populate,
)

OLD = Fernet.generate_key().decode()
NEW = Fernet.generate_key().decode()


def reencrypt(url: str, keys: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["secrets", "reencrypt", "--json"], env={
        "SENTRY_JIRA_DATABASE": url, "SENTRY_JIRA_SECRET_KEY": keys})
    return result.exit_code, result.output


def test_A_s9_reencrypt_on_postgresql_then_the_new_key_alone_reads_everything(
    postgres_url: str,
) -> None:
    async def fill() -> dict[str, int]:
        pg = open_postgres(a_settings(database=postgres_url, secret_key=OLD))
        try:
            tenants, sync = PgTenantStore(pg), PgSyncStore(pg)
            return await populate(AllStores(tenants, PgLifecycleStore(pg, tenants),
                                            pg_admin_stores(pg), PgInbox(pg), sync, sync,
                                            PgForgeSites(pg)))
        finally:
            await pg.aclose()

    ids = asyncio.run(fill())
    code, output = reencrypt(postgres_url, f"{NEW},{OLD}")
    assert code == 0, output
    counts = json.loads(output)["reencrypted"]
    assert set(counts) == {f"{t}.{c}" for t, c in ENCRYPTED_COLUMNS} | {"meta.key_check"}
    assert counts["bindings.sentry_token"] == 1 and counts["meta.key_check"] == 1
    assert counts["tenants.forge_system_token"] == 1  # §8.2
    assert SHARED_SECRET not in output and SENTRY_TOKEN not in output
    assert FORGE_SYSTEM_TOKEN not in output

    with pytest.raises(ConfigError):
        open_postgres(a_settings(database=postgres_url, secret_key=OLD))  # retired

    async def read() -> None:
        pg = open_postgres(a_settings(database=postgres_url, secret_key=NEW))
        try:
            tenant = await PgTenantStore(pg).get(ids["acme"])
            assert tenant is not None and tenant.shared_secret == SHARED_SECRET
            [binding] = await pg_admin_stores(pg).bindings.of_tenant(ids["acme"])
            assert binding.sentry_token == SENTRY_TOKEN
            forge = await PgTenantStore(pg).get(ids["forge"])
            assert forge is not None and forge.system_token is not None
            assert forge.system_token.token == FORGE_SYSTEM_TOKEN
        finally:
            await pg.aclose()

    asyncio.run(read())


def test_A_s9_a_value_no_key_reads_changes_nothing(postgres_url: str) -> None:
    open_postgres(a_settings(database=postgres_url, secret_key=OLD))
    with psycopg.connect(postgres_url) as conn:
        before = conn.execute("SELECT value FROM meta").fetchall()
    code, output = reencrypt(postgres_url, NEW)
    assert code in (1, 2), output  # the key check itself is unreadable: refused
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT value FROM meta").fetchall() == before
