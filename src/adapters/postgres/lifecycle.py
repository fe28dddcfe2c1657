"""PostgreSQL lifecycle store: the single-use check, the tenant write and the remembered
token in one transaction (L3–L6, §4.3).

Two processes with the same token serialise on a transaction-scoped advisory lock named by
the token's hash (SQLite gets this from BEGIN IMMEDIATE): the second sees the first's row.
"""

from __future__ import annotations

from datetime import datetime

from adapters.postgres.database import Connection, PgDatabase
from adapters.postgres.tenants import PgTenantStore
from core.model.tenant import Installation
from core.model.used_tokens import PRUNE_MARGIN, LifecycleResult, Replay, UsedToken


async def _replay(conn: Connection, client_key: str, token: UsedToken, now: datetime) -> Replay:
    # One lock per clientKey: an install and an uninstall of one site never interleave, and
    # a token's second use waits for its first to commit.
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))",
                       ["sentry-jira lifecycle " + client_key])
    await conn.execute("DELETE FROM used_lifecycle_tokens WHERE forget_after < %s",
                       [(now - PRUNE_MARGIN).timestamp()])
    cursor = await conn.execute(
        "SELECT body_hash FROM used_lifecycle_tokens WHERE token_hash = %s", [token.token_hash])
    row = await cursor.fetchone()
    if row is None:
        return Replay.FIRST_USE
    return Replay.SAME_BODY if row[0] == token.body_hash else Replay.OTHER_BODY


async def _remember(conn: Connection, token: UsedToken) -> None:
    await conn.execute(
        "INSERT INTO used_lifecycle_tokens (token_hash, body_hash, forget_after) "
        "VALUES (%s, %s, %s)",
        [token.token_hash, token.body_hash, token.forget_after.timestamp()],
    )


class PgLifecycleStore:
    def __init__(self, database: PgDatabase, tenants: PgTenantStore | None = None) -> None:
        self._database = database
        self._tenants = tenants or PgTenantStore(database)

    async def record_install(
        self, installation: Installation, token: UsedToken, *, now: datetime
    ) -> LifecycleResult:
        async with self._database.transaction() as conn:
            replay = await _replay(conn, installation.client_key, token, now)
            if replay is not Replay.FIRST_USE:
                found = await self._tenants.one_in(conn, "client_key = %s",
                                                   [installation.client_key])
                return LifecycleResult(replay, found)
            tenant = await self._tenants.upsert_installed_in(conn, installation)
            await _remember(conn, token)
            return LifecycleResult(replay, tenant)

    async def record_uninstall(
        self, client_key: str, token: UsedToken, *, now: datetime
    ) -> LifecycleResult:
        async with self._database.transaction() as conn:
            replay = await _replay(conn, client_key, token, now)
            found = await self._tenants.one_in(conn, "client_key = %s", [client_key])
            if replay is not Replay.FIRST_USE:
                return LifecycleResult(replay, found)
            if found is None:
                return LifecycleResult(replay, None)  # L5: unknown site, nothing stored
            tenant = await self._tenants.mark_uninstalled_in(conn, client_key)
            await _remember(conn, token)
            return LifecycleResult(replay, tenant)
