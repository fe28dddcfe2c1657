"""Administration storage ports (§A): bindings, links, account mappings, search tokens.

The read methods marked "worker" / "search" are what the sync worker (W5, W7) and the
search endpoint (S1) call; the rest are the admin use cases'.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from core.model.bindings import AccountMapping, Binding, Link, SearchToken


class BindingStore(Protocol):
    async def get(self, tenant_id: int, org: str) -> Binding | None:
        """The binding of this org to this tenant, Sentry token decrypted."""
        ...

    async def of_tenant(self, tenant_id: int) -> list[Binding]:
        """Worker (W5): every org bound to the tenant, by org slug, Sentry tokens decrypted."""
        ...

    async def orgs_by_tenant(self) -> dict[int, list[str]]:
        """Tenant id → its bound org slugs, sorted; tenants without bindings are absent."""
        ...

    async def change(
        self, tenant_id: int, org: str, decide: Callable[[Binding | None], Binding]
    ) -> Binding:
        """Store `decide(current)` atomically (read and write in one transaction).

        `decide` is pure and may raise (nothing is written then). The tenant must exist.
        """
        ...

    async def delete(self, tenant_id: int, org: str) -> bool:
        """Remove the binding and the org's links and account mappings; False when absent."""
        ...


class LinkStore(Protocol):
    async def get(self, tenant_id: int, org: str, issue_key: str) -> Link | None:
        """Worker (W5) and admin: the Sentry issues linked to the key in that org, or None."""
        ...

    async def replace(self, link: Link) -> bool:
        """Replace the key's set of Sentry issues (non-empty); False when the org is not bound."""
        ...

    async def delete(self, tenant_id: int, org: str, issue_key: str) -> bool:
        """Remove the key's link; False when there was none."""
        ...

    async def rekey(self, tenant_id: int, from_key: str, to_key: str) -> int:
        """Worker (W7): move the tenant's links from one key to another in every org.

        When `to_key` already has a link in an org the two sets are merged. Returns the
        number of orgs in which `from_key` had a link (0: nothing to move).
        """
        ...


class AccountMappingStore(Protocol):
    async def get(self, tenant_id: int, org: str, account_id: str) -> AccountMapping | None:
        """Worker (W5 assignee): the Sentry user mapped to this Jira account in that org."""
        ...

    async def put(self, mapping: AccountMapping) -> bool:
        """Create or replace the mapping; False when the org is not bound to the tenant."""
        ...

    async def delete(self, tenant_id: int, org: str, account_id: str) -> bool:
        """Remove the mapping; False when there was none."""
        ...


class SearchTokenStore(Protocol):
    async def create(self, org: str, token: str, created_at: datetime) -> SearchToken:
        """Store the token's hash (never the token) under a new id."""
        ...

    async def of_org(self, org: str) -> list[SearchToken]:
        """The org's live tokens, by id."""
        ...

    async def revoke(self, org: str, token_id: int) -> bool:
        """Delete the org's token with this id; False when it has none such."""
        ...

    async def verify(self, org: str, token: str) -> bool:
        """Search (S1): is `token` a live search token of this org? Constant-time on hashes."""
        ...
