"""SQLite store of Forge sites (SPEC §8.2): the FIT's single use, the site found by its
installation id and the app system token (encrypted), in one `BEGIN IMMEDIATE` transaction.

The schema change is the one migration below (`sentry_jira.forge`); a PostgreSQL engine
mirrors it: `tenants.transport` also takes `forge`; `tenants` gains `installation_id`
(unique where set), `forge_system_token` (Fernet-encrypted) and
`forge_system_token_expires_at` (ISO 8601 UTC); `used_forge_tokens(jti_hash, forget_after)`.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections import OrderedDict
from datetime import datetime
from typing import Any, Protocol

import sqlite_utils
from sqlite_utils.migrations import Migrations

from adapters.sqlite.database import Database
from adapters.sqlite.loop_connection import LoopConnection
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


class _Executes(Protocol):
    """A `sqlite3.Connection` (the loop's) or a `sqlite_utils.Database` (the storage thread's)."""

    def execute(self, sql: str, parameters: Any = ...) -> sqlite3.Cursor: ...


PRUNE_EVERY_SECONDS = 10.0
_PLAINTEXT_CACHE = 1024
_SITE_CACHE = 1024
_BY_INSTALLATION = f"SELECT {COLUMNS} FROM tenants WHERE installation_id = ?"


class SqliteForgeSites:
    """With a `LoopConnection`, every call is one item of the loop's group commit (the ack
    path's hot write: no thread hop, see adapters/sqlite/loop_connection.py); else a write
    transaction on the storage thread. Decrypted tokens are cached by their ciphertext (a
    replaced or erased token can never come back stale)."""

    def __init__(self, database: Database, loop: LoopConnection | None = None) -> None:
        self._database = database
        self._loop = loop
        self._plaintexts: OrderedDict[str, str] = OrderedDict()
        # A row as read → its Tenant: every column is part of the key (ciphertexts, status,
        # times), so a changed row is a new key and can never come back stale; it saves
        # building the Tenant on every call of a known site (the ack path).
        self._sites: OrderedDict[tuple[Any, ...], Tenant] = OrderedDict()
        self._next_prune = 0.0

    def _decrypt(self, ciphertext: str | None) -> str | None:
        if ciphertext is None:
            return None
        plain = self._plaintexts.get(ciphertext)
        if plain is None:
            plain = self._database.box.decrypt(ciphertext)
            self._plaintexts[ciphertext] = plain
            if len(self._plaintexts) > _PLAINTEXT_CACHE:
                self._plaintexts.popitem(last=False)
        return plain

    def _one(self, db: _Executes, where: str, params: list[object]) -> Tenant | None:
        row = db.execute(f"SELECT {COLUMNS} FROM tenants WHERE {where}", params).fetchone()
        return None if row is None else tenant_of_row(row, self._decrypt)

    def _by_installation(self, db: _Executes, installation_id: str) -> Tenant | None:
        row = db.execute(_BY_INSTALLATION, [installation_id]).fetchone()
        if row is None:
            return None
        key = tuple(row)
        site = self._sites.get(key)
        if site is None:
            site = self._sites[key] = tenant_of_row(row, self._decrypt)
            if len(self._sites) > _SITE_CACHE:
                self._sites.popitem(last=False)
        return site

    async def record_call(self, call: ForgeCall, *, now: datetime) -> ForgeCallResult:
        if self._loop is not None:
            # The common call changes no site (known, installed, no newer token): only its
            # jti is spent, on the loop. A call that changes a site row commits on the
            # storage thread instead: a commit of another connection is what moves the loop
            # connection's `data_version`, so every cached tenant row (the Connect route's
            # lookup) is read again at once (§8.2: a switched site refuses Connect calls).
            fast = await self._loop.write(
                lambda conn: self._record(conn, call, now, may_change_site=False))
            if fast is not None:
                return fast
        return await self._database.write(lambda db: self._recorded(db, call, now))

    def _recorded(self, db: _Executes, call: ForgeCall, now: datetime) -> ForgeCallResult:
        result = self._record(db, call, now)
        assert result is not None  # a site change is allowed here
        return result

    def _record(self, db: _Executes, call: ForgeCall, now: datetime, *,
                may_change_site: bool = True) -> ForgeCallResult | None:
        """None (nothing written) when the site would change and `may_change_site` is off."""
        existing = self._by_installation(db, call.call.installation_id)
        after = forge_site_after(existing, call, now=now)
        if not may_change_site and after is not None and after is not existing:
            return None
        if time.monotonic() >= self._next_prune:  # spent ids expire: no scan per call
            self._next_prune = time.monotonic() + PRUNE_EVERY_SECONDS
            db.execute("DELETE FROM used_forge_tokens WHERE forget_after < ?",
                       [now.timestamp()])
        # A row past its `forget_after` counts as forgotten even before the next prune.
        spent = db.execute(
            "INSERT INTO used_forge_tokens (jti_hash, forget_after) VALUES (?, ?) "
            "ON CONFLICT (jti_hash) DO UPDATE SET forget_after = excluded.forget_after "
            "WHERE used_forge_tokens.forget_after < ?",
            [jti_hash(call.call.jti), call.remember_jti_until.timestamp(), now.timestamp()],
        )
        if spent.rowcount == 0:
            return ForgeCallResult(replayed=True)
        if after is None or after is existing:
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
