"""SQLite tenant store: shared secrets encrypted at rest."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlite_utils

from adapters.sqlite.database import Database
from core.model.tenant import Installation, Tenant, TenantStatus

_COLUMNS = (
    "id, client_key, shared_secret, secret_version, base_url, display_url, status, installed_at"
)


class SqliteTenantStore:
    def __init__(self, database: Database) -> None:
        self._database = database

    def _tenant(self, row: dict[str, Any] | None) -> Tenant | None:
        if row is None:
            return None
        secret = row["shared_secret"]
        return Tenant(
            id=row["id"],
            client_key=row["client_key"],
            base_url=row["base_url"],
            display_url=row["display_url"],
            status=TenantStatus(row["status"]),
            installed_at=datetime.fromisoformat(row["installed_at"]),
            shared_secret=None if secret is None else self._database.box.decrypt(secret),
            secret_version=row["secret_version"],
        )

    def _one(self, db: sqlite_utils.Database, where: str, params: list[Any]) -> Tenant | None:
        return self._tenant(
            next(db.query(f"SELECT {_COLUMNS} FROM tenants WHERE {where}", params), None)
        )

    def find_in(self, db: sqlite_utils.Database, client_key: str) -> Tenant | None:
        """The tenant with this clientKey, read inside an open transaction."""
        return self._one(db, "client_key = ?", [client_key])

    async def get(self, tenant_id: int) -> Tenant | None:
        return await self._database.read(lambda db: self._one(db, "id = ?", [tenant_id]))

    async def by_client_key(self, client_key: str) -> Tenant | None:
        return await self._database.read(lambda db: self._one(db, "client_key = ?", [client_key]))

    async def list_all(self) -> list[Tenant]:
        def query(db: sqlite_utils.Database) -> list[Tenant]:
            rows = db.query(f"SELECT {_COLUMNS} FROM tenants ORDER BY id")
            return [t for t in (self._tenant(row) for row in rows) if t is not None]

        return await self._database.read(query)

    async def upsert_installed(self, installation: Installation) -> Tenant:
        return await self._database.write(lambda db: self.upsert_installed_in(db, installation))

    def upsert_installed_in(self, db: sqlite_utils.Database, installation: Installation) -> Tenant:
        """The upsert inside an open write transaction (callers may add their own writes)."""
        stamp = installation.installed_at.isoformat()
        # One statement: concurrent installs of one clientKey can't both insert (L6).
        db.execute(
            """
            INSERT INTO tenants (client_key, shared_secret, secret_version, base_url,
                                 display_url, status, installed_at, updated_at)
            VALUES (?, ?, 1, ?, ?, 'installed', ?, ?)
            ON CONFLICT (client_key) DO UPDATE SET
                shared_secret = excluded.shared_secret,
                secret_version = tenants.secret_version + 1,
                base_url = excluded.base_url,
                display_url = excluded.display_url,
                status = 'installed',
                installed_at = excluded.installed_at,
                updated_at = excluded.updated_at
            """,
            [
                installation.client_key,
                self._database.box.encrypt(installation.shared_secret),
                installation.base_url,
                installation.display_url,
                stamp,
                stamp,
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
            "WHERE client_key = ?",
            [client_key],
        )
        return self._one(db, "client_key = ?", [client_key])
