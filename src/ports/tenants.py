"""The tenant store port (L3–L5) and the webhook sites it also keeps (§8.1)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from core.model.credentials import SiteCredential
from core.model.tenant import NewSite, Tenant


class TenantLookup(Protocol):
    """The reads the transports' verifiers need (W1, §8.1); the hot path has its own fast one.

    A rotation or removal committed by any process must be seen by the next call: no answer
    may be served from a cache that a later commit could have made stale."""

    async def by_client_key(self, client_key: str) -> Tenant | None:
        """The tenant with this clientKey, installed or not."""
        ...

    async def by_id(self, tenant_id: int) -> Tenant | None:
        """The site with this id, of any transport, installed or not."""
        ...


class TenantStore(Protocol):
    """The reads the use cases need, and the webhook sites' writes (§8.1). Installing and
    uninstalling Connect tenants go through the `LifecycleStore` (ports/lifecycle.py),
    atomically with the single-use token (L6)."""

    async def get(self, tenant_id: int) -> Tenant | None:
        """The tenant with this id, installed or not."""
        ...

    async def by_client_key(self, client_key: str) -> Tenant | None:
        """The tenant with this clientKey, installed or not."""
        ...

    async def by_id(self, tenant_id: int) -> Tenant | None:
        """As `get` (so that a store can serve as a `TenantLookup`)."""
        ...

    async def list_all(self) -> list[Tenant]:
        """Every tenant, by id."""
        ...

    async def base_url_taken(self, base_url: str) -> bool:
        """Whether an installed site (any transport) has this `base_url` (§8.1 409), read
        without decrypting anything."""
        ...

    async def register_site(self, site: NewSite) -> Tenant:
        """A new installed `webhook` site with a fresh id. `Conflict` when an installed site
        (any transport) already has this `base_url`: checked in the same transaction as the
        insert, so two concurrent registrations cannot both succeed."""
        ...

    async def rotate_webhook_secret(
        self, tenant_id: int, new_secret: str, *, now: datetime
    ) -> Tenant | None:
        """`new_secret` becomes current, the current one verifies for an hour
        (`WebhookSecrets.rotated`). None unless `tenant_id` is an installed webhook site."""
        ...

    async def set_site_credential(
        self, tenant_id: int, credential: SiteCredential
    ) -> Tenant | None:
        """Replace the site's Jira credential. None unless an installed webhook site."""
        ...

    async def remove_site(self, tenant_id: int) -> Tenant | None:
        """Status `uninstalled`, every secret and credential erased (as L5); bindings, links
        and journal kept. None unless `tenant_id` is a webhook site (removed ones included)."""
        ...
