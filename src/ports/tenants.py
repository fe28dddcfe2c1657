"""The tenant store port (L3–L5)."""

from __future__ import annotations

from typing import Protocol

from core.model.tenant import Tenant


class TenantLookup(Protocol):
    """The read the webhook's token check needs (W1); the hot path has its own fast one."""

    async def by_client_key(self, client_key: str) -> Tenant | None:
        """The tenant with this clientKey, installed or not."""
        ...


class TenantStore(Protocol):
    """The reads the use cases need. Installing and uninstalling go through the
    `LifecycleStore` (ports/lifecycle.py), atomically with the single-use token (L6)."""

    async def get(self, tenant_id: int) -> Tenant | None:
        """The tenant with this id, installed or not."""
        ...

    async def by_client_key(self, client_key: str) -> Tenant | None:
        """The tenant with this clientKey, installed or not."""
        ...

    async def list_all(self) -> list[Tenant]:
        """Every tenant, by id."""
        ...
