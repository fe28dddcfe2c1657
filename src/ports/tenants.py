"""The tenant store port (L3–L5)."""

from __future__ import annotations

from typing import Protocol

from core.model.tenant import Installation, Tenant


class TenantLookup(Protocol):
    """The read the webhook's token check needs (W1); the hot path has its own fast one."""

    async def by_client_key(self, client_key: str) -> Tenant | None:
        """The tenant with this clientKey, installed or not."""
        ...


class TenantStore(Protocol):
    async def get(self, tenant_id: int) -> Tenant | None:
        """The tenant with this id, installed or not."""
        ...

    async def by_client_key(self, client_key: str) -> Tenant | None:
        """The tenant with this clientKey, installed or not."""
        ...

    async def list_all(self) -> list[Tenant]:
        """Every tenant, by id."""
        ...

    async def upsert_installed(self, installation: Installation) -> Tenant:
        """Create the tenant (L3) or rotate its secret and URLs (L4), atomically (L6)."""
        ...

    async def mark_uninstalled(self, client_key: str) -> Tenant | None:
        """L5: status `uninstalled`, secret erased; None when the clientKey is unknown."""
        ...
