"""PostgreSQL administration stores (§A): bindings (Sentry token encrypted), links, account
mappings, search tokens — the tables and rules of adapters/sqlite/admin.py."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from adapters.postgres.database import Connection, PgDatabase
from adapters.postgres.tenants import sqlite_now
from adapters.sqlite.admin import _status_map, _status_map_json
from core.admin.search_tokens import hash_search_token, matches_any
from core.model.bindings import AccountMapping, Binding, Link, ResolutionStrategy, SearchToken

_BINDING_COLUMNS = (
    "tenant_id, org, sentry_url, sentry_token, sync_status, sync_assignee, "
    "resolution_strategy, skip_archived, status_map"
)


class PgBindingStore:
    def __init__(self, database: PgDatabase) -> None:
        self._database = database

    def _binding(self, row: Any) -> Binding:
        (tenant_id, org, sentry_url, sentry_token, sync_status, sync_assignee, strategy,
         skip_archived, status_map) = row
        return Binding(
            tenant_id=tenant_id, org=org, sentry_url=sentry_url,
            sentry_token=self._database.box.decrypt(sentry_token),
            sync_status=bool(sync_status), sync_assignee=bool(sync_assignee),
            resolution_strategy=ResolutionStrategy(strategy),
            skip_archived=bool(skip_archived), status_map=_status_map(status_map))

    async def _get(self, conn: Connection, tenant_id: int, org: str,
                   *, lock: bool = False) -> Binding | None:
        cursor = await conn.execute(
            (f"SELECT {_BINDING_COLUMNS} FROM bindings WHERE tenant_id = %s AND org = %s"
             + (" FOR UPDATE" if lock else "")).encode(), [tenant_id, org])
        row = await cursor.fetchone()
        return None if row is None else self._binding(row)

    async def get(self, tenant_id: int, org: str) -> Binding | None:
        async with self._database.connection() as conn:
            return await self._get(conn, tenant_id, org)

    async def of_tenant(self, tenant_id: int) -> list[Binding]:
        rows = await self._database.fetchall(
            f"SELECT {_BINDING_COLUMNS} FROM bindings WHERE tenant_id = %s ORDER BY org",
            [tenant_id])
        return [self._binding(row) for row in rows]

    async def orgs_by_tenant(self) -> dict[int, list[str]]:
        result: dict[int, list[str]] = {}
        for tenant_id, org in await self._database.fetchall(
                "SELECT tenant_id, org FROM bindings ORDER BY tenant_id, org"):
            result.setdefault(tenant_id, []).append(org)
        return result

    async def change(
        self, tenant_id: int, org: str, decide: Callable[[Binding | None], Binding]
    ) -> Binding:
        async with self._database.transaction() as conn:
            # The read and the write serialise per (tenant, org), as under BEGIN IMMEDIATE.
            await conn.execute("SELECT pg_advisory_xact_lock(%s::int, hashtext(%s))",
                               [tenant_id, "binding " + org])
            binding = decide(await self._get(conn, tenant_id, org, lock=True))
            stamp = sqlite_now()
            await conn.execute(
                """
                INSERT INTO bindings (tenant_id, org, sentry_url, sentry_token, sync_status,
                    sync_assignee, resolution_strategy, skip_archived, status_map,
                    created_at, updated_at)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                ON CONFLICT (tenant_id, org) DO UPDATE SET
                    sentry_url = excluded.sentry_url,
                    sentry_token = excluded.sentry_token,
                    sync_status = excluded.sync_status,
                    sync_assignee = excluded.sync_assignee,
                    resolution_strategy = excluded.resolution_strategy,
                    skip_archived = excluded.skip_archived,
                    status_map = excluded.status_map,
                    updated_at = excluded.updated_at
                """,
                [tenant_id, org, binding.sentry_url,
                 self._database.box.encrypt(binding.sentry_token), int(binding.sync_status),
                 int(binding.sync_assignee), binding.resolution_strategy.value,
                 int(binding.skip_archived), _status_map_json(binding.status_map), stamp,
                 stamp])
            return binding

    async def delete(self, tenant_id: int, org: str) -> bool:
        async with self._database.connection() as conn:
            cursor = await conn.execute(
                "DELETE FROM bindings WHERE tenant_id = %s AND org = %s", [tenant_id, org])
            return bool(cursor.rowcount)


async def _lock_bound(conn: Connection, tenant_id: int, org: str) -> bool:
    """Is the org bound? The binding row is locked (FOR SHARE) so that an unbind waits."""
    cursor = await conn.execute(
        "SELECT 1 FROM bindings WHERE tenant_id = %s AND org = %s FOR SHARE", [tenant_id, org])
    return await cursor.fetchone() is not None


class PgLinkStore:
    def __init__(self, database: PgDatabase) -> None:
        self._database = database

    async def get(self, tenant_id: int, org: str, issue_key: str) -> Link | None:
        rows = await self._database.fetchall(
            "SELECT sentry_issue_id FROM links WHERE tenant_id = %s AND org = %s "
            "AND issue_key = %s", [tenant_id, org, issue_key])
        if not rows:
            return None
        return Link(tenant_id, org, issue_key, tuple(sorted((r[0] for r in rows), key=int)))

    async def replace(self, link: Link) -> bool:
        async with self._database.transaction() as conn:
            if not await _lock_bound(conn, link.tenant_id, link.org):
                return False
            await conn.execute(
                "DELETE FROM links WHERE tenant_id = %s AND org = %s AND issue_key = %s",
                [link.tenant_id, link.org, link.issue_key])
            async with conn.cursor() as cursor:
                await cursor.executemany(
                    "INSERT INTO links (tenant_id, org, issue_key, sentry_issue_id) "
                    "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    [(link.tenant_id, link.org, link.issue_key, sid)
                     for sid in link.sentry_issue_ids])
            return True

    async def delete(self, tenant_id: int, org: str, issue_key: str) -> bool:
        async with self._database.connection() as conn:
            cursor = await conn.execute(
                "DELETE FROM links WHERE tenant_id = %s AND org = %s AND issue_key = %s",
                [tenant_id, org, issue_key])
            return bool(cursor.rowcount)

    async def rekey(self, tenant_id: int, from_key: str, to_key: str) -> int:
        if from_key == to_key:
            return 0
        async with self._database.transaction() as conn:
            cursor = await conn.execute(
                "SELECT count(DISTINCT org) FROM links WHERE tenant_id = %s AND issue_key = %s",
                [tenant_id, from_key])
            row = await cursor.fetchone()
            orgs = 0 if row is None else int(row[0])
            # The sets merge: a pair already linked to `to_key` stays once.
            await conn.execute(
                "INSERT INTO links (tenant_id, org, issue_key, sentry_issue_id) "
                "SELECT tenant_id, org, %s, sentry_issue_id FROM links "
                "WHERE tenant_id = %s AND issue_key = %s ON CONFLICT DO NOTHING",
                [to_key, tenant_id, from_key])
            await conn.execute("DELETE FROM links WHERE tenant_id = %s AND issue_key = %s",
                               [tenant_id, from_key])
            return orgs


class PgAccountMappingStore:
    def __init__(self, database: PgDatabase) -> None:
        self._database = database

    async def get(self, tenant_id: int, org: str, account_id: str) -> AccountMapping | None:
        row = await self._database.fetchone(
            "SELECT sentry_user_id FROM account_mappings WHERE tenant_id = %s AND org = %s "
            "AND account_id = %s", [tenant_id, org, account_id])
        return None if row is None else AccountMapping(tenant_id, org, account_id, row[0])

    async def put(self, mapping: AccountMapping) -> bool:
        async with self._database.transaction() as conn:
            if not await _lock_bound(conn, mapping.tenant_id, mapping.org):
                return False
            await conn.execute(
                "INSERT INTO account_mappings (tenant_id, org, account_id, sentry_user_id) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (tenant_id, org, account_id) "
                "DO UPDATE SET sentry_user_id = excluded.sentry_user_id",
                [mapping.tenant_id, mapping.org, mapping.account_id, mapping.sentry_user_id])
            return True

    async def delete(self, tenant_id: int, org: str, account_id: str) -> bool:
        async with self._database.connection() as conn:
            cursor = await conn.execute(
                "DELETE FROM account_mappings WHERE tenant_id = %s AND org = %s "
                "AND account_id = %s", [tenant_id, org, account_id])
            return bool(cursor.rowcount)


class PgSearchTokenStore:
    def __init__(self, database: PgDatabase) -> None:
        self._database = database

    async def create(self, org: str, token: str, created_at: datetime) -> SearchToken:
        async with self._database.connection() as conn:
            cursor = await conn.execute(
                "INSERT INTO search_tokens (org, token_hash, created_at) VALUES (%s, %s, %s) "
                "RETURNING id", [org, hash_search_token(token), created_at.isoformat()])
            row = await cursor.fetchone()
        assert row is not None
        return SearchToken(id=row[0], org=org, created_at=created_at)

    async def of_org(self, org: str) -> list[SearchToken]:
        rows = await self._database.fetchall(
            "SELECT id, created_at FROM search_tokens WHERE org = %s ORDER BY id", [org])
        return [SearchToken(id=r[0], org=org, created_at=datetime.fromisoformat(r[1]))
                for r in rows]

    async def revoke(self, org: str, token_id: int) -> bool:
        async with self._database.connection() as conn:
            cursor = await conn.execute(
                "DELETE FROM search_tokens WHERE org = %s AND id = %s", [org, token_id])
            return bool(cursor.rowcount)

    async def verify(self, org: str, token: str) -> bool:
        rows = await self._database.fetchall(
            "SELECT token_hash FROM search_tokens WHERE org = %s", [org])
        return matches_any(token, [r[0] for r in rows])
