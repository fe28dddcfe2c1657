"""PostgreSQL tenant store (L3–L5, §8.1) and the per-request tenant lookup (W1, §9).

Rows have the same columns as SQLite's; `tenant_of_row` (adapters/sqlite/tenants.py) turns
either engine's row into a `Tenant`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from adapters.crypto import SecretBox
from adapters.postgres.batching import Batcher
from adapters.postgres.database import Connection, PgDatabase
from adapters.postgres.forge import lock_installation
from adapters.sqlite.tenants import COLUMNS, tenant_of_row
from core.model.credentials import ApiToken, SiteCredential, WebhookSecrets
from core.model.errors import Conflict
from core.model.tenant import (
    CONNECT,
    WEBHOOK,
    Installation,
    NewSite,
    Tenant,
    TenantStatus,
    synthetic_client_key,
)

_BASE_URL_TAKEN = "SELECT 1 FROM tenants WHERE base_url = %s AND status = 'installed' LIMIT 1"


def sqlite_now() -> str:
    """The text SQLite's `datetime('now')` gives, so both engines store the same form."""
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _credential_columns(credential: SiteCredential) -> tuple[str, str | None, str]:
    if isinstance(credential, ApiToken):
        return "api-token", credential.email, credential.token
    return "pat", None, credential.token


class PgTenantStore:
    def __init__(self, database: PgDatabase) -> None:
        self._database = database

    def _decrypt(self, ciphertext: str | None) -> str | None:
        return None if ciphertext is None else self._database.box.decrypt(ciphertext)

    def _encrypt(self, plain: str | None) -> str | None:
        return None if plain is None else self._database.box.encrypt(plain)

    async def one_in(self, conn: Connection, where: str, params: list[Any],
                     *, lock: bool = False) -> Tenant | None:
        suffix = " FOR UPDATE" if lock else ""
        cursor = await conn.execute(f"SELECT {COLUMNS} FROM tenants WHERE {where}{suffix}"
                                    .encode(), params)
        row = await cursor.fetchone()
        return None if row is None else tenant_of_row(row, self._decrypt)

    async def _one(self, where: str, params: list[Any]) -> Tenant | None:
        async with self._database.connection() as conn:
            return await self.one_in(conn, where, params)

    async def get(self, tenant_id: int) -> Tenant | None:
        return await self._one("id = %s", [tenant_id])

    async def by_id(self, tenant_id: int) -> Tenant | None:
        return await self.get(tenant_id)

    async def by_client_key(self, client_key: str) -> Tenant | None:
        return await self._one("client_key = %s", [client_key])

    async def list_all(self) -> list[Tenant]:
        rows = await self._database.fetchall(f"SELECT {COLUMNS} FROM tenants ORDER BY id")
        return [tenant_of_row(row, self._decrypt) for row in rows]

    async def upsert_installed(self, installation: Installation) -> Tenant:
        async with self._database.transaction() as conn:
            return await self.upsert_installed_in(conn, installation)

    async def upsert_installed_in(self, conn: Connection, installation: Installation) -> Tenant:
        stamp = installation.installed_at.isoformat()
        # §8.2 Connect on Forge: the installation id, unless another site holds it (one site
        # per installation id; that site stays the one Forge's calls reach). The check and
        # the write hold the installation's advisory lock, as Forge calls do
        # (adapters/postgres/forge.py), so they see one database.
        installation_id = installation.installation_id
        if installation_id is not None:
            await lock_installation(conn, installation_id)
            cursor = await conn.execute(
                "SELECT 1 FROM tenants WHERE installation_id = %s AND client_key != %s",
                [installation_id, installation.client_key])
            if await cursor.fetchone() is not None:
                installation_id = None
        # One statement: concurrent installs of one clientKey can't both insert (L6). A row
        # of another transport is never taken over by a Connect install.
        await conn.execute(
            """
            INSERT INTO tenants (client_key, shared_secret, secret_version, base_url,
                                 display_url, status, installed_at, updated_at,
                                 installation_id)
            VALUES (%s, %s, 1, %s, %s, 'installed', %s, %s, %s)
            ON CONFLICT (client_key) DO UPDATE SET
                shared_secret = excluded.shared_secret,
                secret_version = tenants.secret_version + 1,
                base_url = excluded.base_url,
                display_url = excluded.display_url,
                status = 'installed',
                installed_at = excluded.installed_at,
                updated_at = excluded.updated_at,
                installation_id = COALESCE(excluded.installation_id, tenants.installation_id)
            WHERE tenants.transport = 'connect'
            """,
            [installation.client_key, self._database.box.encrypt(installation.shared_secret),
             installation.base_url, installation.display_url, stamp, stamp, installation_id],
        )
        tenant = await self.one_in(conn, "client_key = %s", [installation.client_key])
        assert tenant is not None
        return tenant

    async def mark_uninstalled(self, client_key: str) -> Tenant | None:
        async with self._database.transaction() as conn:
            return await self.mark_uninstalled_in(conn, client_key)

    async def mark_uninstalled_in(self, conn: Connection, client_key: str) -> Tenant | None:
        await conn.execute(
            "UPDATE tenants SET status = 'uninstalled', shared_secret = NULL, "
            "secret_version = secret_version + 1, updated_at = %s "
            "WHERE client_key = %s AND transport = %s",
            [sqlite_now(), client_key, CONNECT],
        )
        return await self.one_in(conn, "client_key = %s", [client_key])

    # -- webhook sites (§8.1) --------------------------------------------------------------

    async def base_url_taken(self, base_url: str) -> bool:
        return await self._database.fetchone(_BASE_URL_TAKEN, [base_url]) is not None

    async def register_site(self, site: NewSite) -> Tenant:
        kind, email, token = _credential_columns(site.credential)
        stamp = site.registered_at.isoformat()
        values = [synthetic_client_key(), site.base_url, stamp, stamp, WEBHOOK, site.flavor.value,
                  self._encrypt(site.webhook_secret), kind, email, self._encrypt(token)]
        async with self._database.transaction() as conn:
            # Two registrations of one base_url serialise on this lock (SQLite: BEGIN
            # IMMEDIATE), so the check and the insert see the same database.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))",
                               ["sentry-jira site " + site.base_url])
            cursor = await conn.execute(_BASE_URL_TAKEN, [site.base_url])
            if await cursor.fetchone() is not None:
                raise Conflict("an installed site already has this base_url")
            cursor = await conn.execute(
                """
                INSERT INTO tenants (client_key, shared_secret, secret_version, base_url,
                                     display_url, status, installed_at, updated_at, transport,
                                     flavor, webhook_secret, jira_auth_kind, jira_email,
                                     jira_token)
                VALUES (%s, NULL, 1, %s, NULL, 'installed', %s, %s, %s, %s, %s, %s, %s, %s)
                RETURNING id
                """,
                values,
            )
            row = await cursor.fetchone()
            assert row is not None
            tenant = await self.one_in(conn, "id = %s", [row[0]])
            assert tenant is not None
            return tenant

    async def _update_site(self, tenant_id: int, *, installed: bool,
                           change: Callable[[Tenant], tuple[str, list[Any]]]) -> Tenant | None:
        async with self._database.transaction() as conn:
            where = "id = %s AND transport = %s"
            params: list[Any] = [tenant_id, WEBHOOK]
            if installed:
                where += " AND status = 'installed'"
            tenant = await self.one_in(conn, where, params, lock=True)
            if tenant is None:
                return None
            if tenant.status is not TenantStatus.INSTALLED:
                return tenant  # removing a removed site changes nothing
            assignments, values = change(tenant)
            await conn.execute(
                f"UPDATE tenants SET {assignments}, secret_version = secret_version + 1, "
                "updated_at = %s WHERE id = %s".encode(),
                [*values, sqlite_now(), tenant_id],
            )
            return await self.one_in(conn, "id = %s", [tenant_id])

    async def rotate_webhook_secret(
        self, tenant_id: int, new_secret: str, *, now: datetime
    ) -> Tenant | None:
        def change(tenant: Tenant) -> tuple[str, list[Any]]:
            current = tenant.webhook_secrets or WebhookSecrets(current=new_secret)
            rotated = current.rotated(new_secret, now=now)
            until = rotated.previous_valid_until
            return ("webhook_secret = %s, webhook_secret_previous = %s, "
                    "webhook_secret_previous_until = %s",
                    [self._encrypt(rotated.current), self._encrypt(rotated.previous),
                     None if until is None else until.isoformat()])

        return await self._update_site(tenant_id, installed=True, change=change)

    async def set_site_credential(
        self, tenant_id: int, credential: SiteCredential
    ) -> Tenant | None:
        kind, email, token = _credential_columns(credential)

        def change(_: Tenant) -> tuple[str, list[Any]]:
            return ("jira_auth_kind = %s, jira_email = %s, jira_token = %s",
                    [kind, email, self._encrypt(token)])

        return await self._update_site(tenant_id, installed=True, change=change)

    async def remove_site(self, tenant_id: int) -> Tenant | None:
        def change(_: Tenant) -> tuple[str, list[Any]]:
            return ("status = 'uninstalled', webhook_secret = NULL, "
                    "webhook_secret_previous = NULL, webhook_secret_previous_until = NULL, "
                    "jira_auth_kind = NULL, jira_email = NULL, jira_token = NULL", [])

        return await self._update_site(tenant_id, installed=False, change=change)


_BY_CLIENT_KEYS = f"SELECT {COLUMNS} FROM tenants WHERE client_key = ANY(%s)".encode()
_BY_IDS = f"SELECT {COLUMNS} FROM tenants WHERE id = ANY(%s)".encode()


class PgTenantLookup:
    """W1 on PostgreSQL: every request reads the tenant's row (one indexed read), so a
    rotation or uninstall committed by any process on any machine is seen by the next
    request — no notification to wait for (§9). Only decryption is cached, keyed by the
    ciphertext: a rotated secret is a new ciphertext and can never come back stale.
    Concurrent requests share one statement (adapters/postgres/batching.py); each still
    reads the row as committed when its statement ran, never an older answer."""

    def __init__(self, database: PgDatabase, box: SecretBox, *, cache_size: int = 4096) -> None:
        self._database = database
        self._box = box
        self._cache_size = cache_size
        self._plaintexts: OrderedDict[str, str] = OrderedDict()
        self._tenants: OrderedDict[tuple[Any, ...], Tenant] = OrderedDict()
        self._by_client_key: Batcher[Connection, str, Tenant | None] = Batcher(
            lambda conn, keys: self._read_many(conn, _BY_CLIENT_KEYS, keys, column=1),
            session=database.connection)
        self._by_id: Batcher[Connection, int, Tenant | None] = Batcher(
            lambda conn, ids: self._read_many(conn, _BY_IDS, ids, column=0),
            session=database.connection)

    def _secret(self, ciphertext: str | None) -> str | None:
        if ciphertext is None:
            return None
        plain = self._plaintexts.get(ciphertext)
        if plain is None:
            plain = self._box.decrypt(ciphertext)
            self._plaintexts[ciphertext] = plain
            if len(self._plaintexts) > self._cache_size:
                self._plaintexts.popitem(last=False)
        return plain

    async def _read_many(self, conn: Connection, sql: bytes, keys: Sequence[Any],
                         *, column: int) -> list[Tenant | None]:
        cursor = await conn.execute(sql, [list(set(keys))], prepare=True)
        rows = {row[column]: row for row in await cursor.fetchall()}
        found = {key: self._tenant(row) for key, row in rows.items()}
        return [found.get(key) for key in keys]

    def _tenant(self, row: tuple[Any, ...]) -> Tenant:
        # The same row read again is the same tenant: a row differs in every column a
        # rotation or uninstall changes (secret_version moves), so a changed row is a miss.
        tenant = self._tenants.get(row)
        if tenant is None:
            tenant = tenant_of_row(row, self._secret)
            self._tenants[row] = tenant
            if len(self._tenants) > self._cache_size:
                self._tenants.popitem(last=False)
        return tenant

    async def by_client_key(self, client_key: str) -> Tenant | None:
        return await self._by_client_key.submit(client_key)

    async def by_id(self, tenant_id: int) -> Tenant | None:
        return await self._by_id.submit(tenant_id)


class RememberedTenants:
    """The acknowledgement path's first try on PostgreSQL (§7, §9): the tenant as this
    process last read it, without a round trip. Safe only with its two checks, which
    adapters/http/connect/issue_updated.py makes: a token refused against a remembered
    tenant is verified again against a fresh read (the secret may have been rotated to the
    one it was signed with), and a delivery verified against a remembered tenant is recorded
    only while the row still has that `secret_version` (`PgInbox.record_verified`: the
    version check rides on the insert) — else it is verified again, freshly. A rotation or
    uninstall is thus still honoured by the very next request on every machine."""

    def __init__(self, fresh: PgTenantLookup, *, size: int = 4096) -> None:
        self._fresh = fresh
        self._size = size
        self._known: OrderedDict[str, Tenant] = OrderedDict()

    def attempt(self, *, fresh: bool = False) -> RememberedAttempt:
        return RememberedAttempt(self, fresh=fresh)

    async def read(self, client_key: str) -> Tenant | None:
        tenant = await self._fresh.by_client_key(client_key)
        self.remember(client_key, tenant)
        return tenant

    async def read_id(self, tenant_id: int) -> Tenant | None:
        return await self._fresh.by_id(tenant_id)

    def remember(self, client_key: str, tenant: Tenant | None) -> None:
        if tenant is None:
            self._known.pop(client_key, None)
            return
        self._known[client_key] = tenant
        if len(self._known) > self._size:
            self._known.popitem(last=False)

    def known(self, client_key: str) -> Tenant | None:
        return self._known.get(client_key)


class RememberedAttempt:
    """One request's lookup (a `TenantLookup`): remembered tenants first; says whether it
    answered from memory (then the answer must be confirmed, see `RememberedTenants`)."""

    def __init__(self, tenants: RememberedTenants, *, fresh: bool = False) -> None:
        self._tenants = tenants
        self._fresh = fresh
        self.from_memory = False

    async def by_client_key(self, client_key: str) -> Tenant | None:
        known = None if self._fresh else self._tenants.known(client_key)
        if known is not None:
            self.from_memory = True
            return known
        return await self._tenants.read(client_key)

    async def by_id(self, tenant_id: int) -> Tenant | None:  # not used by Connect (W1)
        return await self._tenants.read_id(tenant_id)

