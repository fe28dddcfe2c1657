"""SQLite administration stores: bindings (Sentry token encrypted), links, mappings, tokens.

Links and account mappings reference their binding with ON DELETE CASCADE: unbinding an
org removes them in the same transaction. Bindings reference their tenant; tenants are
never deleted (L5 keeps everything).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlite_utils
from sqlite_utils.migrations import Migrations

from adapters.sqlite.database import Database
from core.admin.search_tokens import hash_search_token, matches_any
from core.model.bindings import (
    AccountMapping,
    Binding,
    Link,
    ResolutionStrategy,
    SearchToken,
    StatusRule,
)

admin = Migrations("sentry_jira.admin")


@admin()
def create_admin_tables(db: sqlite_utils.Database) -> None:
    db.execute(
        """
        CREATE TABLE bindings (
            tenant_id INTEGER NOT NULL REFERENCES tenants (id),
            org TEXT NOT NULL,
            sentry_url TEXT NOT NULL,
            sentry_token TEXT NOT NULL,     -- Fernet-encrypted
            sync_status INTEGER NOT NULL,
            sync_assignee INTEGER NOT NULL,
            resolution_strategy TEXT NOT NULL,
            skip_archived INTEGER NOT NULL,
            status_map TEXT NOT NULL,       -- JSON {"<project id>": {"resolve", "unresolve"}}
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (tenant_id, org)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE links (
            tenant_id INTEGER NOT NULL,
            org TEXT NOT NULL,
            issue_key TEXT NOT NULL,
            sentry_issue_id TEXT NOT NULL,
            PRIMARY KEY (tenant_id, org, issue_key, sentry_issue_id),
            FOREIGN KEY (tenant_id, org) REFERENCES bindings (tenant_id, org) ON DELETE CASCADE
        )
        """
    )
    # W7 re-keys by (tenant, key) across every org.
    db.execute("CREATE INDEX links_by_key ON links (tenant_id, issue_key)")
    db.execute(
        """
        CREATE TABLE account_mappings (
            tenant_id INTEGER NOT NULL,
            org TEXT NOT NULL,
            account_id TEXT NOT NULL,
            sentry_user_id TEXT NOT NULL,
            PRIMARY KEY (tenant_id, org, account_id),
            FOREIGN KEY (tenant_id, org) REFERENCES bindings (tenant_id, org) ON DELETE CASCADE
        )
        """
    )
    db.execute(
        """
        CREATE TABLE search_tokens (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            org TEXT NOT NULL,
            token_hash TEXT NOT NULL UNIQUE,  -- hex SHA-256; the token itself is never stored
            created_at TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX search_tokens_by_org ON search_tokens (org)")


_BINDING_COLUMNS = (
    "tenant_id, org, sentry_url, sentry_token, sync_status, sync_assignee, "
    "resolution_strategy, skip_archived, status_map"
)


def _status_map_json(status_map: dict[str, StatusRule]) -> str:
    return json.dumps(
        {
            project: {
                "resolve": sorted(rule.resolve, key=int),
                "unresolve": sorted(rule.unresolve, key=int),
            }
            for project, rule in sorted(status_map.items(), key=lambda item: int(item[0]))
        }
    )


def _status_map(text: str) -> dict[str, StatusRule]:
    return {
        project: StatusRule(
            resolve=frozenset(rule["resolve"]), unresolve=frozenset(rule["unresolve"])
        )
        for project, rule in json.loads(text).items()
    }


def _rows(db: sqlite_utils.Database, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    """The rows of a read as dicts, without `db.query`'s savepoint around every query (two
    extra statements on the worker's per-delivery reads)."""
    cursor = db.execute(sql, params)
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


class SqliteBindingStore:
    def __init__(self, database: Database) -> None:
        self._database = database

    def _binding(self, row: dict[str, Any]) -> Binding:
        return Binding(
            tenant_id=row["tenant_id"],
            org=row["org"],
            sentry_url=row["sentry_url"],
            sentry_token=self._database.box.decrypt(row["sentry_token"]),
            sync_status=bool(row["sync_status"]),
            sync_assignee=bool(row["sync_assignee"]),
            resolution_strategy=ResolutionStrategy(row["resolution_strategy"]),
            skip_archived=bool(row["skip_archived"]),
            status_map=_status_map(row["status_map"]),
        )

    def _get(self, db: sqlite_utils.Database, tenant_id: int, org: str) -> Binding | None:
        rows = _rows(db, f"SELECT {_BINDING_COLUMNS} FROM bindings WHERE tenant_id = ? AND org = ?",
                     [tenant_id, org])
        return self._binding(rows[0]) if rows else None

    async def get(self, tenant_id: int, org: str) -> Binding | None:
        return await self._database.read(lambda db: self._get(db, tenant_id, org))

    async def of_tenant(self, tenant_id: int) -> list[Binding]:
        def query(db: sqlite_utils.Database) -> list[Binding]:
            rows = _rows(
                db, f"SELECT {_BINDING_COLUMNS} FROM bindings WHERE tenant_id = ? ORDER BY org",
                [tenant_id])
            return [self._binding(row) for row in rows]

        return await self._database.read(query)

    async def orgs_by_tenant(self) -> dict[int, list[str]]:
        def query(db: sqlite_utils.Database) -> dict[int, list[str]]:
            result: dict[int, list[str]] = {}
            for row in db.query("SELECT tenant_id, org FROM bindings ORDER BY tenant_id, org"):
                result.setdefault(row["tenant_id"], []).append(row["org"])
            return result

        return await self._database.read(query)

    async def change(
        self, tenant_id: int, org: str, decide: Callable[[Binding | None], Binding]
    ) -> Binding:
        def apply(db: sqlite_utils.Database) -> Binding:
            binding = decide(self._get(db, tenant_id, org))
            db.execute(
                """
                INSERT INTO bindings (tenant_id, org, sentry_url, sentry_token, sync_status,
                    sync_assignee, resolution_strategy, skip_archived, status_map,
                    created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, datetime('now'), datetime('now'))
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
                [
                    tenant_id,
                    org,
                    binding.sentry_url,
                    self._database.box.encrypt(binding.sentry_token),
                    int(binding.sync_status),
                    int(binding.sync_assignee),
                    binding.resolution_strategy.value,
                    int(binding.skip_archived),
                    _status_map_json(binding.status_map),
                ],
            )
            return binding

        return await self._database.write(apply)

    async def delete(self, tenant_id: int, org: str) -> bool:
        def apply(db: sqlite_utils.Database) -> bool:
            cursor = db.execute(
                "DELETE FROM bindings WHERE tenant_id = ? AND org = ?", [tenant_id, org]
            )
            return bool(cursor.rowcount)

        return await self._database.write(apply)


def _is_bound(db: sqlite_utils.Database, tenant_id: int, org: str) -> bool:
    row = next(
        db.query(
            "SELECT 1 AS bound FROM bindings WHERE tenant_id = ? AND org = ?", [tenant_id, org]
        ),
        None,
    )
    return row is not None


class SqliteLinkStore:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def get(self, tenant_id: int, org: str, issue_key: str) -> Link | None:
        def query(db: sqlite_utils.Database) -> Link | None:
            ids = [
                row[0]
                for row in db.execute(
                    "SELECT sentry_issue_id FROM links "
                    "WHERE tenant_id = ? AND org = ? AND issue_key = ?",
                    [tenant_id, org, issue_key],
                ).fetchall()
            ]
            if not ids:
                return None
            return Link(tenant_id, org, issue_key, tuple(sorted(ids, key=int)))

        return await self._database.read(query)

    async def replace(self, link: Link) -> bool:
        def apply(db: sqlite_utils.Database) -> bool:
            if not _is_bound(db, link.tenant_id, link.org):
                return False
            db.execute(
                "DELETE FROM links WHERE tenant_id = ? AND org = ? AND issue_key = ?",
                [link.tenant_id, link.org, link.issue_key],
            )
            db.conn.executemany(
                "INSERT OR IGNORE INTO links (tenant_id, org, issue_key, sentry_issue_id) "
                "VALUES (?, ?, ?, ?)",
                [(link.tenant_id, link.org, link.issue_key, sid) for sid in link.sentry_issue_ids],
            )
            return True

        return await self._database.write(apply)

    async def delete(self, tenant_id: int, org: str, issue_key: str) -> bool:
        def apply(db: sqlite_utils.Database) -> bool:
            cursor = db.execute(
                "DELETE FROM links WHERE tenant_id = ? AND org = ? AND issue_key = ?",
                [tenant_id, org, issue_key],
            )
            return bool(cursor.rowcount)

        return await self._database.write(apply)

    async def rekey(self, tenant_id: int, from_key: str, to_key: str) -> int:
        def apply(db: sqlite_utils.Database) -> int:
            if from_key == to_key:
                return 0
            orgs = [
                row["org"]
                for row in db.query(
                    "SELECT DISTINCT org FROM links WHERE tenant_id = ? AND issue_key = ?",
                    [tenant_id, from_key],
                )
            ]
            # OR IGNORE: a pair already linked to `to_key` stays once (the sets merge).
            db.execute(
                "UPDATE OR IGNORE links SET issue_key = ? WHERE tenant_id = ? AND issue_key = ?",
                [to_key, tenant_id, from_key],
            )
            db.execute(
                "DELETE FROM links WHERE tenant_id = ? AND issue_key = ?", [tenant_id, from_key]
            )
            return len(orgs)

        return await self._database.write(apply)


class SqliteAccountMappingStore:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def get(self, tenant_id: int, org: str, account_id: str) -> AccountMapping | None:
        def query(db: sqlite_utils.Database) -> AccountMapping | None:
            row = next(
                db.query(
                    "SELECT sentry_user_id FROM account_mappings "
                    "WHERE tenant_id = ? AND org = ? AND account_id = ?",
                    [tenant_id, org, account_id],
                ),
                None,
            )
            if row is None:
                return None
            return AccountMapping(tenant_id, org, account_id, row["sentry_user_id"])

        return await self._database.read(query)

    async def put(self, mapping: AccountMapping) -> bool:
        def apply(db: sqlite_utils.Database) -> bool:
            if not _is_bound(db, mapping.tenant_id, mapping.org):
                return False
            db.execute(
                """
                INSERT INTO account_mappings (tenant_id, org, account_id, sentry_user_id)
                VALUES (?, ?, ?, ?)
                ON CONFLICT (tenant_id, org, account_id)
                DO UPDATE SET sentry_user_id = excluded.sentry_user_id
                """,
                [mapping.tenant_id, mapping.org, mapping.account_id, mapping.sentry_user_id],
            )
            return True

        return await self._database.write(apply)

    async def delete(self, tenant_id: int, org: str, account_id: str) -> bool:
        def apply(db: sqlite_utils.Database) -> bool:
            cursor = db.execute(
                "DELETE FROM account_mappings WHERE tenant_id = ? AND org = ? AND account_id = ?",
                [tenant_id, org, account_id],
            )
            return bool(cursor.rowcount)

        return await self._database.write(apply)


class SqliteSearchTokenStore:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def create(self, org: str, token: str, created_at: datetime) -> SearchToken:
        def apply(db: sqlite_utils.Database) -> SearchToken:
            cursor = db.execute(
                "INSERT INTO search_tokens (org, token_hash, created_at) VALUES (?, ?, ?)",
                [org, hash_search_token(token), created_at.isoformat()],
            )
            token_id = cursor.lastrowid
            assert token_id is not None
            return SearchToken(id=token_id, org=org, created_at=created_at)

        return await self._database.write(apply)

    async def of_org(self, org: str) -> list[SearchToken]:
        def query(db: sqlite_utils.Database) -> list[SearchToken]:
            return [
                SearchToken(
                    id=row["id"], org=org, created_at=datetime.fromisoformat(row["created_at"])
                )
                for row in db.query(
                    "SELECT id, created_at FROM search_tokens WHERE org = ? ORDER BY id", [org]
                )
            ]

        return await self._database.read(query)

    async def revoke(self, org: str, token_id: int) -> bool:
        def apply(db: sqlite_utils.Database) -> bool:
            cursor = db.execute(
                "DELETE FROM search_tokens WHERE org = ? AND id = ?", [org, token_id]
            )
            return bool(cursor.rowcount)

        return await self._database.write(apply)

    async def verify(self, org: str, token: str) -> bool:
        def query(db: sqlite_utils.Database) -> list[str]:
            return [
                row["token_hash"]
                for row in db.query("SELECT token_hash FROM search_tokens WHERE org = ?", [org])
            ]

        return matches_any(token, await self._database.read(query))
