"""SQLite store of Forge sites (SPEC §8.2): the FIT's single use, the site found by its
installation id and the app system token (encrypted), in one `BEGIN IMMEDIATE` transaction.

The schema change is the one migration below (`sentry_jira.forge`); a PostgreSQL engine
mirrors it: `tenants.transport` also takes `forge`; `tenants` gains `installation_id`
(unique where set), `forge_system_token` (Fernet-encrypted) and
`forge_system_token_expires_at` (ISO 8601 UTC); `used_forge_tokens(jti_hash, forget_after)`.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

import sqlite_utils
from sqlite_utils.migrations import Migrations

from adapters.sqlite.database import Database
from adapters.sqlite.tenants import COLUMNS, tenant_of_row
from core.forge.sites import NEW_SITE_ID, forge_site_after
from core.model.forge import ForgeCall, ForgeCallResult
from core.model.tenant import FORGE, Tenant

migrations = Migrations("sentry_jira.forge")

_OLD_CHECK = "CHECK (transport IN ('connect', 'webhook'))"
_NEW_CHECK = "CHECK (transport IN ('connect', 'webhook', 'forge'))"


@migrations()
def add_forge_sites(db: sqlite_utils.Database) -> None:
    # `transport` takes 'forge' too. SQLite cannot alter a CHECK, and rebuilding `tenants`
    # would fight the foreign keys of bindings; widening a CHECK changes no stored row, which
    # is the case SQLite documents for editing the schema text (ALTER TABLE, "other kinds of
    # table schema changes"): rewrite it, bump schema_version, then verify.
    conn = db.conn
    version = conn.execute("PRAGMA schema_version").fetchone()[0]
    conn.execute("PRAGMA writable_schema = ON")
    try:
        conn.execute(
            "UPDATE sqlite_master SET sql = replace(sql, ?, ?) "
            "WHERE type = 'table' AND name = 'tenants'",
            [_OLD_CHECK, _NEW_CHECK],
        )
        conn.execute(f"PRAGMA schema_version = {int(version) + 1}")
    finally:
        conn.execute("PRAGMA writable_schema = OFF")
    for column in (
        "installation_id TEXT",                # §8.2 ari:cloud:ecosystem::installation/<uuid>
        "forge_system_token TEXT",             # Fernet-encrypted; NULL when none / uninstalled
        "forge_system_token_expires_at TEXT",  # ISO 8601 UTC: the token's `exp`
    ):
        db.execute(f"ALTER TABLE tenants ADD COLUMN {column}")
    db.execute(
        "CREATE UNIQUE INDEX tenants_installation_id ON tenants (installation_id) "
        "WHERE installation_id IS NOT NULL"
    )
    # Hashes only: a spent FIT is never stored.
    db.execute(
        """
        CREATE TABLE used_forge_tokens (
            jti_hash TEXT PRIMARY KEY,
            forget_after REAL NOT NULL      -- unix time: exp + leeway + a margin
        )
        """
    )
    db.execute("CREATE INDEX used_forge_tokens_forget_after ON used_forge_tokens (forget_after)")


def jti_hash(jti: str) -> str:
    return hashlib.sha256(jti.encode("utf-8", "surrogatepass")).hexdigest()


class SqliteForgeSites:
    def __init__(self, database: Database) -> None:
        self._database = database

    def _decrypt(self, ciphertext: str | None) -> str | None:
        return None if ciphertext is None else self._database.box.decrypt(ciphertext)

    def _one(self, db: sqlite_utils.Database, where: str, params: list[object]) -> Tenant | None:
        row = db.execute(f"SELECT {COLUMNS} FROM tenants WHERE {where}", params).fetchone()
        return None if row is None else tenant_of_row(row, self._decrypt)

    async def record_call(self, call: ForgeCall, *, now: datetime) -> ForgeCallResult:
        return await self._database.write(lambda db: self._record(db, call, now))

    def _record(self, db: sqlite_utils.Database, call: ForgeCall,
                now: datetime) -> ForgeCallResult:
        db.execute("DELETE FROM used_forge_tokens WHERE forget_after < ?", [now.timestamp()])
        spent = db.execute(
            "INSERT OR IGNORE INTO used_forge_tokens (jti_hash, forget_after) VALUES (?, ?)",
            [jti_hash(call.call.jti), call.remember_jti_until.timestamp()],
        )
        if spent.rowcount == 0:
            return ForgeCallResult(replayed=True)
        existing = self._one(db, "installation_id = ?", [call.call.installation_id])
        after = forge_site_after(existing, call, now=now)
        if after is None or after == existing:
            return ForgeCallResult(replayed=False, tenant=after)
        token = after.system_token
        values = [
            after.base_url,
            after.status.value,
            after.installed_at.isoformat(),
            after.transport,
            None if after.shared_secret is None else self._database.box.encrypt(
                after.shared_secret),
            after.secret_version,
            None if token is None else self._database.box.encrypt(token.token),
            None if token is None else token.expires_at.isoformat(),
            now.isoformat(),
        ]
        if after.id == NEW_SITE_ID:
            cursor = db.execute(
                """
                INSERT INTO tenants (base_url, status, installed_at, transport, shared_secret,
                                     secret_version, forge_system_token,
                                     forge_system_token_expires_at, updated_at, client_key,
                                     installation_id, display_url)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)
                """,
                [*values, after.client_key, after.installation_id],
            )
            site_id = cursor.lastrowid
        else:
            db.execute(
                """
                UPDATE tenants SET base_url = ?, status = ?, installed_at = ?, transport = ?,
                    shared_secret = ?, secret_version = ?, forge_system_token = ?,
                    forge_system_token_expires_at = ?, updated_at = ?
                WHERE id = ?
                """,
                [*values, after.id],
            )
            site_id = after.id
        return ForgeCallResult(replayed=False, tenant=self._one(db, "id = ?", [site_id]))

    async def drop_system_token(self, tenant_id: int, token: str) -> None:
        def drop(db: sqlite_utils.Database) -> None:
            site = self._one(db, f"id = ? AND transport = '{FORGE}'", [tenant_id])
            if site is None or site.system_token is None or site.system_token.token != token:
                return  # already gone, or a newer token replaced it
            db.execute(
                "UPDATE tenants SET forge_system_token = NULL, "
                "forge_system_token_expires_at = NULL, updated_at = ? WHERE id = ?",
                [datetime.now().astimezone().isoformat(), tenant_id],
            )

        await self._database.write(drop)
