"""SQLite lifecycle store: the single-use check, the tenant write and the remembered token
in one `BEGIN IMMEDIATE` transaction (L3–L6, §4.3)."""

from __future__ import annotations

from datetime import datetime

import sqlite_utils
from sqlite_utils.migrations import Migrations

from adapters.sqlite.database import Database
from adapters.sqlite.tenants import SqliteTenantStore
from core.model.tenant import Installation
from core.model.used_tokens import PRUNE_MARGIN, LifecycleResult, Replay, UsedToken

migrations = Migrations("sentry_jira.lifecycle")


@migrations()
def create_used_lifecycle_tokens(db: sqlite_utils.Database) -> None:
    # Hashes only: neither the token nor the body (it carries the shared secret) is kept.
    db.execute(
        """
        CREATE TABLE used_lifecycle_tokens (
            token_hash TEXT PRIMARY KEY,
            body_hash TEXT NOT NULL,
            forget_after REAL NOT NULL      -- unix time: exp + leeway
        )
        """
    )
    db.execute(
        "CREATE INDEX used_lifecycle_tokens_forget_after ON used_lifecycle_tokens (forget_after)"
    )


class SqliteLifecycleStore:
    def __init__(self, database: Database, tenants: SqliteTenantStore | None = None) -> None:
        self._database = database
        self._tenants = tenants or SqliteTenantStore(database)

    @staticmethod
    def _replay(db: sqlite_utils.Database, token: UsedToken, now: datetime) -> Replay:
        db.execute(
            "DELETE FROM used_lifecycle_tokens WHERE forget_after < ?",
            [(now - PRUNE_MARGIN).timestamp()],
        )
        row = next(
            db.query(
                "SELECT body_hash FROM used_lifecycle_tokens WHERE token_hash = ?",
                [token.token_hash],
            ),
            None,
        )
        if row is None:
            return Replay.FIRST_USE
        return Replay.SAME_BODY if row["body_hash"] == token.body_hash else Replay.OTHER_BODY

    @staticmethod
    def _remember(db: sqlite_utils.Database, token: UsedToken) -> None:
        db.execute(
            "INSERT INTO used_lifecycle_tokens (token_hash, body_hash, forget_after) "
            "VALUES (?, ?, ?)",
            [token.token_hash, token.body_hash, token.forget_after.timestamp()],
        )

    async def record_install(
        self, installation: Installation, token: UsedToken, *, now: datetime
    ) -> LifecycleResult:
        def write(db: sqlite_utils.Database) -> LifecycleResult:
            replay = self._replay(db, token, now)
            if replay is not Replay.FIRST_USE:
                return LifecycleResult(replay, self._tenants.find_in(db, installation.client_key))
            tenant = self._tenants.upsert_installed_in(db, installation)
            self._remember(db, token)
            return LifecycleResult(replay, tenant)

        return await self._database.write(write)

    async def record_uninstall(
        self, client_key: str, token: UsedToken, *, now: datetime
    ) -> LifecycleResult:
        def write(db: sqlite_utils.Database) -> LifecycleResult:
            replay = self._replay(db, token, now)
            if replay is not Replay.FIRST_USE:
                return LifecycleResult(replay, self._tenants.find_in(db, client_key))
            if self._tenants.find_in(db, client_key) is None:
                return LifecycleResult(replay, None)  # L5: unknown site, nothing stored
            tenant = self._tenants.mark_uninstalled_in(db, client_key)
            self._remember(db, token)
            return LifecycleResult(replay, tenant)

        return await self._database.write(write)
