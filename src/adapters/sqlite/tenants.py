"""SQLite tenant store: Connect tenants and webhook sites (§8.1), secrets encrypted at rest."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import sqlite_utils

from adapters.sqlite.database import Database
from core.model.credentials import (
    ApiToken,
    JiraFlavor,
    PersonalAccessToken,
    SiteCredential,
    WebhookSecrets,
)
from core.model.errors import Conflict
from core.model.forge import SystemToken
from core.model.tenant import (
    CONNECT,
    WEBHOOK,
    Installation,
    NewSite,
    Tenant,
    TenantStatus,
    synthetic_client_key,
)

# The one column list every reader of a tenant row selects (the loop lookup too).
COLUMNS = (
    "id, client_key, shared_secret, secret_version, base_url, display_url, status, installed_at, "
    "transport, flavor, webhook_secret, webhook_secret_previous, webhook_secret_previous_until, "
    "jira_auth_kind, jira_email, jira_token, installation_id, forge_system_token, "
    "forge_system_token_expires_at"
)

Decrypt = Callable[[str | None], str | None]


def tenant_of_row(row: Sequence[Any], decrypt: Decrypt) -> Tenant:
    """A `Tenant` from a row of `COLUMNS`; `decrypt` maps a ciphertext (or None) to plain."""
    (tenant_id, client_key, shared_secret, secret_version, base_url, display_url, status,
     installed_at, transport, flavor, webhook_secret, previous, previous_until, auth_kind,
     email, token, installation_id, system_token, system_token_expires_at) = row
    credential: SiteCredential | None = None
    plain_token = decrypt(token)
    if plain_token is not None:
        if auth_kind == "pat":
            credential = PersonalAccessToken(plain_token)
        elif auth_kind == "api-token" and email is not None:
            credential = ApiToken(email=email, token=plain_token)
    secrets: WebhookSecrets | None = None
    current = decrypt(webhook_secret)
    if current is not None:
        prior = decrypt(previous)
        until = datetime.fromisoformat(previous_until) if previous_until else None
        secrets = WebhookSecrets(current=current, previous=prior if until else None,
                                 previous_valid_until=until if prior else None)
    plain_system_token = decrypt(system_token)
    forge_token = None if plain_system_token is None or system_token_expires_at is None \
        else SystemToken(plain_system_token, datetime.fromisoformat(system_token_expires_at))
    return Tenant(
        id=tenant_id,
        client_key=client_key,
        base_url=base_url,
        display_url=display_url,
        status=TenantStatus(status),
        installed_at=datetime.fromisoformat(installed_at),
        shared_secret=decrypt(shared_secret),
        secret_version=secret_version,
        transport=transport,
        site_credential=credential,
        flavor=JiraFlavor(flavor),
        webhook_secrets=secrets,
        installation_id=installation_id,
        system_token=forge_token,
    )


def _credential_columns(credential: SiteCredential) -> tuple[str, str | None, str]:
    if isinstance(credential, ApiToken):
        return "api-token", credential.email, credential.token
    return "pat", None, credential.token


# §8.1 409: an installed site of any transport already has this base_url (decrypts nothing).
_BASE_URL_TAKEN = "SELECT 1 FROM tenants WHERE base_url = ? AND status = 'installed' LIMIT 1"


class SqliteTenantStore:
    def __init__(self, database: Database) -> None:
        self._database = database

    def _decrypt(self, ciphertext: str | None) -> str | None:
        return None if ciphertext is None else self._database.box.decrypt(ciphertext)

    def _encrypt(self, plain: str | None) -> str | None:
        return None if plain is None else self._database.box.encrypt(plain)

    def _one(self, db: sqlite_utils.Database, where: str, params: list[Any]) -> Tenant | None:
        row = db.execute(f"SELECT {COLUMNS} FROM tenants WHERE {where}", params).fetchone()
        return None if row is None else tenant_of_row(row, self._decrypt)

    def find_in(self, db: sqlite_utils.Database, client_key: str) -> Tenant | None:
        """The tenant with this clientKey, read inside an open transaction."""
        return self._one(db, "client_key = ?", [client_key])

    async def get(self, tenant_id: int) -> Tenant | None:
        return await self._database.read(lambda db: self._one(db, "id = ?", [tenant_id]))

    async def by_id(self, tenant_id: int) -> Tenant | None:
        return await self.get(tenant_id)

    async def by_client_key(self, client_key: str) -> Tenant | None:
        return await self._database.read(lambda db: self._one(db, "client_key = ?", [client_key]))

    async def list_all(self) -> list[Tenant]:
        def query(db: sqlite_utils.Database) -> list[Tenant]:
            rows = db.execute(f"SELECT {COLUMNS} FROM tenants ORDER BY id").fetchall()
            return [tenant_of_row(row, self._decrypt) for row in rows]

        return await self._database.read(query)

    async def upsert_installed(self, installation: Installation) -> Tenant:
        return await self._database.write(lambda db: self.upsert_installed_in(db, installation))

    def upsert_installed_in(self, db: sqlite_utils.Database, installation: Installation) -> Tenant:
        """The upsert inside an open write transaction (callers may add their own writes)."""
        stamp = installation.installed_at.isoformat()
        # §8.2 Connect on Forge: the installation id, unless another site holds it (one site
        # per installation id; that site stays the one Forge's calls reach).
        installation_id = installation.installation_id
        if installation_id is not None and db.execute(
            "SELECT 1 FROM tenants WHERE installation_id = ? AND client_key != ?",
            [installation_id, installation.client_key],
        ).fetchone() is not None:
            installation_id = None
        # One statement: concurrent installs of one clientKey can't both insert (L6). A row
        # of another transport is never taken over by a Connect install.
        db.execute(
            """
            INSERT INTO tenants (client_key, shared_secret, secret_version, base_url,
                                 display_url, status, installed_at, updated_at,
                                 installation_id)
            VALUES (?, ?, 1, ?, ?, 'installed', ?, ?, ?)
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
            [
                installation.client_key,
                self._database.box.encrypt(installation.shared_secret),
                installation.base_url,
                installation.display_url,
                stamp,
                stamp,
                installation_id,
            ],
        )
        tenant = self._one(db, "client_key = ?", [installation.client_key])
        assert tenant is not None
        return tenant

    async def mark_uninstalled(self, client_key: str) -> Tenant | None:
        return await self._database.write(lambda db: self.mark_uninstalled_in(db, client_key))

    def mark_uninstalled_in(self, db: sqlite_utils.Database, client_key: str) -> Tenant | None:
        db.execute(
            "UPDATE tenants SET status = 'uninstalled', shared_secret = NULL, "
            "secret_version = secret_version + 1, updated_at = datetime('now') "
            f"WHERE client_key = ? AND transport = '{CONNECT}'",
            [client_key],
        )
        return self._one(db, "client_key = ?", [client_key])

    # -- webhook sites (§8.1) --------------------------------------------------------------

    async def base_url_taken(self, base_url: str) -> bool:
        def query(db: sqlite_utils.Database) -> bool:
            return db.execute(_BASE_URL_TAKEN, [base_url]).fetchone() is not None

        return await self._database.read(query)

    async def register_site(self, site: NewSite) -> Tenant:
        kind, email, token = _credential_columns(site.credential)
        stamp = site.registered_at.isoformat()
        values = [synthetic_client_key(), site.base_url, stamp, stamp, WEBHOOK, site.flavor.value,
                  self._encrypt(site.webhook_secret), kind, email, self._encrypt(token)]

        def insert(db: sqlite_utils.Database) -> Tenant:
            # Inside BEGIN IMMEDIATE: the check and the insert see the same database.
            taken = db.execute(_BASE_URL_TAKEN, [site.base_url]).fetchone()
            if taken is not None:
                raise Conflict("an installed site already has this base_url")
            cursor = db.execute(
                """
                INSERT INTO tenants (client_key, shared_secret, secret_version, base_url,
                                     display_url, status, installed_at, updated_at, transport,
                                     flavor, webhook_secret, jira_auth_kind, jira_email,
                                     jira_token)
                VALUES (?, NULL, 1, ?, NULL, 'installed', ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                values,
            )
            tenant = self._one(db, "id = ?", [cursor.lastrowid])
            assert tenant is not None
            return tenant

        return await self._database.write(insert)

    def _update_site(self, tenant_id: int, *, installed: bool,
                     change: Callable[[Tenant], tuple[str, list[Any]]]) -> Callable[
                         [sqlite_utils.Database], Tenant | None]:
        def update(db: sqlite_utils.Database) -> Tenant | None:
            where = f"id = ? AND transport = '{WEBHOOK}'"
            if installed:
                where += " AND status = 'installed'"
            tenant = self._one(db, where, [tenant_id])
            if tenant is None:
                return None
            if tenant.status is not TenantStatus.INSTALLED:
                return tenant  # removing a removed site changes nothing
            assignments, params = change(tenant)
            db.execute(
                f"UPDATE tenants SET {assignments}, secret_version = secret_version + 1, "
                "updated_at = datetime('now') WHERE id = ?",
                [*params, tenant_id],
            )
            return self._one(db, "id = ?", [tenant_id])

        return update

    async def rotate_webhook_secret(
        self, tenant_id: int, new_secret: str, *, now: datetime
    ) -> Tenant | None:
        def change(tenant: Tenant) -> tuple[str, list[Any]]:
            current = tenant.webhook_secrets or WebhookSecrets(current=new_secret)
            rotated = current.rotated(new_secret, now=now)
            until = rotated.previous_valid_until
            return ("webhook_secret = ?, webhook_secret_previous = ?, "
                    "webhook_secret_previous_until = ?",
                    [self._encrypt(rotated.current), self._encrypt(rotated.previous),
                     None if until is None else until.isoformat()])

        return await self._database.write(self._update_site(tenant_id, installed=True,
                                                            change=change))

    async def set_site_credential(
        self, tenant_id: int, credential: SiteCredential
    ) -> Tenant | None:
        kind, email, token = _credential_columns(credential)

        def change(_: Tenant) -> tuple[str, list[Any]]:
            return ("jira_auth_kind = ?, jira_email = ?, jira_token = ?",
                    [kind, email, self._encrypt(token)])

        return await self._database.write(self._update_site(tenant_id, installed=True,
                                                            change=change))

    async def remove_site(self, tenant_id: int) -> Tenant | None:
        def change(_: Tenant) -> tuple[str, list[Any]]:
            return ("status = 'uninstalled', webhook_secret = NULL, "
                    "webhook_secret_previous = NULL, webhook_secret_previous_until = NULL, "
                    "jira_auth_kind = NULL, jira_email = NULL, jira_token = NULL", [])

        return await self._database.write(self._update_site(tenant_id, installed=False,
                                                            change=change))
