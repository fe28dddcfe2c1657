"""In-memory tenant store (and the webhook sites of §8.1, in the same id space)."""

from __future__ import annotations

from datetime import datetime

import attrs

from core.model.credentials import SiteCredential, WebhookSecrets
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


class MemoryTenantStore:
    def __init__(self) -> None:
        self._by_key: dict[str, Tenant] = {}
        self._next_id = 1

    async def get(self, tenant_id: int) -> Tenant | None:
        return next((t for t in self._by_key.values() if t.id == tenant_id), None)

    async def by_client_key(self, client_key: str) -> Tenant | None:
        return self._by_key.get(client_key)

    async def by_id(self, tenant_id: int) -> Tenant | None:
        return await self.get(tenant_id)

    async def list_all(self) -> list[Tenant]:
        return sorted(self._by_key.values(), key=lambda t: t.id)

    async def base_url_taken(self, base_url: str) -> bool:
        return any(t.base_url == base_url and t.status is TenantStatus.INSTALLED
                   for t in self._by_key.values())

    async def register_site(self, site: NewSite) -> Tenant:
        if await self.base_url_taken(site.base_url):
            raise Conflict("an installed site already has this base_url")
        tenant = Tenant(
            id=self._next_id,
            client_key=synthetic_client_key(),
            base_url=site.base_url,
            display_url=None,
            status=TenantStatus.INSTALLED,
            installed_at=site.registered_at,
            shared_secret=None,
            transport=WEBHOOK,
            site_credential=site.credential,
            flavor=site.flavor,
            webhook_secrets=WebhookSecrets(current=site.webhook_secret),
        )
        self._next_id += 1
        self._by_key[tenant.client_key] = tenant
        return tenant

    def _webhook_site(self, tenant_id: int, *, installed: bool) -> Tenant | None:
        tenant = next((t for t in self._by_key.values() if t.id == tenant_id), None)
        if tenant is None or tenant.transport != WEBHOOK:
            return None
        if installed and tenant.status is not TenantStatus.INSTALLED:
            return None
        return tenant

    def _save(self, tenant: Tenant) -> Tenant:
        self._by_key[tenant.client_key] = tenant
        return tenant

    def save(self, tenant: Tenant) -> Tenant:
        """Store `tenant` as it is (the Forge fake's writes, adapters/memory/forge.py)."""
        return self._save(tenant)

    def allocate_id(self) -> int:
        """A fresh id in the one id space."""
        self._next_id += 1
        return self._next_id - 1

    async def rotate_webhook_secret(
        self, tenant_id: int, new_secret: str, *, now: datetime
    ) -> Tenant | None:
        old = self._webhook_site(tenant_id, installed=True)
        if old is None or old.webhook_secrets is None:
            return None
        return self._save(attrs.evolve(
            old, webhook_secrets=old.webhook_secrets.rotated(new_secret, now=now),
            secret_version=old.secret_version + 1))

    async def set_site_credential(
        self, tenant_id: int, credential: SiteCredential
    ) -> Tenant | None:
        old = self._webhook_site(tenant_id, installed=True)
        if old is None:
            return None
        return self._save(attrs.evolve(old, site_credential=credential,
                                       secret_version=old.secret_version + 1))

    async def remove_site(self, tenant_id: int) -> Tenant | None:
        old = self._webhook_site(tenant_id, installed=False)
        if old is None or old.status is TenantStatus.UNINSTALLED:
            return old  # removing a removed site changes nothing
        return self._save(attrs.evolve(
            old, status=TenantStatus.UNINSTALLED, site_credential=None, webhook_secrets=None,
            secret_version=old.secret_version + 1))

    async def upsert_installed(self, installation: Installation) -> Tenant:
        old = self._by_key.get(installation.client_key)
        if old is not None and old.transport != CONNECT:
            return old  # a Connect install never takes over another transport's site
        # §8.2: one site per installation id; an id another site holds is not taken.
        held = any(t.installation_id == installation.installation_id
                   and t.client_key != installation.client_key
                   for t in self._by_key.values()) if installation.installation_id else True
        installation_id = (old.installation_id if old else None) if held \
            else installation.installation_id
        if old is None:
            tenant = Tenant(
                id=self._next_id,
                client_key=installation.client_key,
                base_url=installation.base_url,
                display_url=installation.display_url,
                status=TenantStatus.INSTALLED,
                installed_at=installation.installed_at,
                shared_secret=installation.shared_secret,
                installation_id=installation_id,
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
                installation_id=installation_id,
            )
        self._by_key[tenant.client_key] = tenant
        return tenant

    async def mark_uninstalled(self, client_key: str) -> Tenant | None:
        old = self._by_key.get(client_key)
        if old is None or old.transport != CONNECT:
            return old
        tenant = attrs.evolve(
            old,
            status=TenantStatus.UNINSTALLED,
            shared_secret=None,
            secret_version=old.secret_version + 1,
        )
        self._by_key[client_key] = tenant
        return tenant
