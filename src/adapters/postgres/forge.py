"""PostgreSQL store of Forge sites (SPEC §8.2, §9), the counterpart of
adapters/sqlite/forge.py: the FIT's single use, the site found by its installation id and the
app system token (Fernet-encrypted), in one transaction.

SQLite serialises every writer with `BEGIN IMMEDIATE`; here two processes (two machines) may
handle calls of one installation at once, so each call first takes a transaction-scoped
advisory lock named by the installation id: the read of the site, the decision
(`core.forge.sites.forge_site_after`) and its write see one database, and two first calls of
a new installation cannot both insert (the unique index would refuse the second). Connect
installs that carry an installation id take the same lock (adapters/postgres/tenants.py).
Calls of different installations never wait for each other, and the common call (a known
site it leaves unchanged: most calls) takes no lock at all: it reads the site, and spends its
FIT id in one statement only while the row still has every column the decision read.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from datetime import datetime
from typing import Any

from adapters.postgres.database import Connection, PgDatabase
from adapters.sqlite.forge import jti_hash
from adapters.sqlite.tenants import COLUMNS, tenant_of_row
from core.forge.sites import NEW_SITE_ID, forge_site_after
from core.model.forge import ForgeCall, ForgeCallResult
from core.model.tenant import FORGE, Tenant

PRUNE_EVERY_SECONDS = 10.0
_PLAINTEXT_CACHE = 1024

_SPEND = (
    "INSERT INTO used_forge_tokens (jti_hash, forget_after) VALUES (%s, %s) "
    "ON CONFLICT (jti_hash) DO UPDATE SET forget_after = excluded.forget_after "
    "WHERE used_forge_tokens.forget_after < %s"
)


# The common call (a known, installed site that this call leaves as it is) in one statement,
# without a lock: the FIT id is spent only while the site's row still has every column the
# decision read (else nothing is written and the locked path decides afresh).
_SPEND_IF_CURRENT = (
    b"WITH current AS (SELECT 1 FROM tenants WHERE id = %s AND secret_version = %s "
    b"AND status = %s AND transport = %s AND base_url = %s AND installation_id = %s "
    b"AND forge_system_token_expires_at IS NOT DISTINCT FROM %s), "
    b"spent AS (INSERT INTO used_forge_tokens (jti_hash, forget_after) "
    b"SELECT %s, %s WHERE EXISTS (SELECT 1 FROM current) "
    b"ON CONFLICT (jti_hash) DO UPDATE SET forget_after = excluded.forget_after "
    b"WHERE used_forge_tokens.forget_after < %s RETURNING 1) "
    b"SELECT EXISTS (SELECT 1 FROM current), EXISTS (SELECT 1 FROM spent)"
)
_BY_INSTALLATION = f"SELECT {COLUMNS} FROM tenants WHERE installation_id = %s".encode()


def installation_lock_key(installation_id: str) -> str:
    """The advisory lock text every writer of one installation's site takes (§8.2)."""
    return "sentry-jira forge installation " + installation_id


async def lock_installation(conn: Connection, installation_id: str) -> None:
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))",
                       [installation_lock_key(installation_id)])


class PgForgeSites:
    """Decrypted tokens are cached by their ciphertext (a replaced or erased token can never
    come back stale); spent ids past their `forget_after` are deleted at most every 10 s."""

    def __init__(self, database: PgDatabase) -> None:
        self._database = database
        self._plaintexts: OrderedDict[str, str] = OrderedDict()
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

    async def _one(self, conn: Connection, where: str, params: list[Any], *,
                   lock: bool = False) -> Tenant | None:
        suffix = " FOR UPDATE" if lock else ""
        cursor = await conn.execute(
            f"SELECT {COLUMNS} FROM tenants WHERE {where}{suffix}".encode(), params)
        row = await cursor.fetchone()
        return None if row is None else tenant_of_row(row, self._decrypt)

    async def record_call(self, call: ForgeCall, *, now: datetime) -> ForgeCallResult:
        fast = await self._record_unchanged(call, now)
        if fast is not None:
            return fast
        return await self._record_locked(call, now)

    async def _record_unchanged(self, call: ForgeCall, now: datetime) -> ForgeCallResult | None:
        """Two statements, no lock: read the site; when the call changes nothing, spend the
        `jti` only while the row is as read. None (nothing written): the locked path."""
        async with self._database.connection() as conn:
            cursor = await conn.execute(_BY_INSTALLATION, [call.call.installation_id],
                                        prepare=True)
            row = await cursor.fetchone()
            if row is None:
                return None
            existing = tenant_of_row(row, self._decrypt)
            if forge_site_after(existing, call, now=now) is not existing:
                return None
            return await self.spend_if_current(conn, existing, call, now)

    async def spend_if_current(self, conn: Connection, existing: Tenant, call: ForgeCall,
                               now: datetime) -> ForgeCallResult | None:
        """Spend the call's `jti` only while `existing`'s row is as read (None: it moved on,
        nothing written)."""
        await self._prune(conn, now)
        token = existing.system_token
        cursor = await conn.execute(_SPEND_IF_CURRENT, [
            existing.id, existing.secret_version, existing.status.value, existing.transport,
            existing.base_url, existing.installation_id,
            None if token is None else token.expires_at.isoformat(),
            jti_hash(call.call.jti), call.remember_jti_until.timestamp(), now.timestamp(),
        ], prepare=True)
        answer = await cursor.fetchone()
        assert answer is not None
        current, spent = answer
        if not current:
            return None  # the row moved on since it was read
        if not spent:
            return ForgeCallResult(replayed=True)
        return ForgeCallResult(replayed=False, tenant=existing)

    async def _prune(self, conn: Connection, now: datetime) -> None:
        if time.monotonic() >= self._next_prune:  # spent ids expire: no scan per call
            self._next_prune = time.monotonic() + PRUNE_EVERY_SECONDS
            await conn.execute("DELETE FROM used_forge_tokens WHERE forget_after < %s",
                               [now.timestamp()])

    async def _record_locked(self, call: ForgeCall, now: datetime) -> ForgeCallResult:
        installation_id = call.call.installation_id
        async with self._database.transaction() as conn:
            await lock_installation(conn, installation_id)
            # FOR UPDATE too: a Connect uninstall of the same row (by client key, without
            # the advisory lock) waits for this decision or is seen by it.
            existing = await self._one(conn, "installation_id = %s", [installation_id],
                                       lock=True)
            after = forge_site_after(existing, call, now=now)
            await self._prune(conn, now)
            # A row past its `forget_after` counts as forgotten even before the next prune.
            spent = await conn.execute(
                _SPEND, [jti_hash(call.call.jti), call.remember_jti_until.timestamp(),
                         now.timestamp()])
            if spent.rowcount == 0:
                return ForgeCallResult(replayed=True)
            if after is None or after is existing:
                return ForgeCallResult(replayed=False, tenant=after)
            site_id = await self._write(conn, after, now)
            return ForgeCallResult(replayed=False,
                                   tenant=await self._one(conn, "id = %s", [site_id]))

    async def _write(self, conn: Connection, after: Tenant, now: datetime) -> int:
        box = self._database.box
        token = after.system_token
        values = [
            after.base_url,
            after.status.value,
            after.installed_at.isoformat(),
            after.transport,
            None if after.shared_secret is None else box.encrypt(after.shared_secret),
            after.secret_version,
            None if token is None else box.encrypt(token.token),
            None if token is None else token.expires_at.isoformat(),
            now.isoformat(),
        ]
        if after.id == NEW_SITE_ID:
            cursor = await conn.execute(
                """
                INSERT INTO tenants (base_url, status, installed_at, transport, shared_secret,
                                     secret_version, forge_system_token,
                                     forge_system_token_expires_at, updated_at, client_key,
                                     installation_id, display_url)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, NULL)
                RETURNING id
                """,
                [*values, after.client_key, after.installation_id],
            )
            row = await cursor.fetchone()
            assert row is not None
            return int(row[0])
        await conn.execute(
            """
            UPDATE tenants SET base_url = %s, status = %s, installed_at = %s, transport = %s,
                shared_secret = %s, secret_version = %s, forge_system_token = %s,
                forge_system_token_expires_at = %s, updated_at = %s
            WHERE id = %s
            """,
            [*values, after.id],
        )
        return after.id

    async def drop_system_token(self, tenant_id: int, token: str) -> None:
        async with self._database.transaction() as conn:
            site = await self._one(conn, "id = %s AND transport = %s", [tenant_id, FORGE],
                                   lock=True)
            if site is None or site.system_token is None or site.system_token.token != token:
                return  # already gone, or a newer token replaced it
            await conn.execute(
                "UPDATE tenants SET forge_system_token = NULL, "
                "forge_system_token_expires_at = NULL, updated_at = %s WHERE id = %s",
                [datetime.now().astimezone().isoformat(), tenant_id])
