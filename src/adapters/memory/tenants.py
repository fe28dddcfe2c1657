"""In-memory tenant store."""

from __future__ import annotations

import attrs

from core.model.tenant import Installation, Tenant, TenantStatus


class MemoryTenantStore:
    def __init__(self) -> None:
        self._by_key: dict[str, Tenant] = {}
        self._next_id = 1

    async def get(self, tenant_id: int) -> Tenant | None:
        return next((t for t in self._by_key.values() if t.id == tenant_id), None)

    async def by_client_key(self, client_key: str) -> Tenant | None:
        return self._by_key.get(client_key)

    async def list_all(self) -> list[Tenant]:
        return sorted(self._by_key.values(), key=lambda t: t.id)

    async def upsert_installed(self, installation: Installation) -> Tenant:
        old = self._by_key.get(installation.client_key)
        if old is None:
            tenant = Tenant(
                id=self._next_id,
                client_key=installation.client_key,
                base_url=installation.base_url,
                display_url=installation.display_url,
                status=TenantStatus.INSTALLED,
                installed_at=installation.installed_at,
                shared_secret=installation.shared_secret,
            )
            self._next_id += 1
        else:
            tenant = attrs.evolve(
                old,
                base_url=installation.base_url,
                display_url=installation.display_url,
                status=TenantStatus.INSTALLED,
                installed_at=installation.installed_at,
                shared_secret=installation.shared_secret,
                secret_version=old.secret_version + 1,
            )
        self._by_key[tenant.client_key] = tenant
        return tenant

    async def mark_uninstalled(self, client_key: str) -> Tenant | None:
        old = self._by_key.get(client_key)
        if old is None:
            return None
        tenant = attrs.evolve(
            old,
            status=TenantStatus.UNINSTALLED,
            shared_secret=None,
            secret_version=old.secret_version + 1,
        )
        self._by_key[client_key] = tenant
        return tenant
