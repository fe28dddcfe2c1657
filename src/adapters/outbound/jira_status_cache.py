"""The per-tenant cache of Jira's status list (W5 "cached per tenant"), and
`CachingJiraApi`, the `JiraApi` wrapper the composition root puts around any Jira client
(httpx or in-memory) so that neither carries a cache of its own.

Keyed by tenant id and remembered with the tenant's `secret_version`: a re-install
(L4) or an uninstall (L5) bumps the version, so the next lookup misses and fetches
again. Entries expire after a TTL, and the cache holds a bounded number of tenants
(least recently used evicted first).
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime, timedelta

from core.model.jira import JiraIssueSummary, JiraProject, JiraStatus, JiraUser, JqlSuggestion
from core.model.tenant import Tenant
from ports.clock import Clock
from ports.jira import JiraApi

DEFAULT_TTL = timedelta(minutes=10)
DEFAULT_MAX_TENANTS = 1024


class StatusCache:
    def __init__(
        self,
        clock: Clock,
        *,
        ttl: timedelta = DEFAULT_TTL,
        max_tenants: int = DEFAULT_MAX_TENANTS,
    ) -> None:
        self._clock = clock
        self._ttl = ttl
        self._max = max_tenants
        # tenant id -> (secret version, expires at, statuses)
        self._entries: OrderedDict[int, tuple[int, datetime, tuple[JiraStatus, ...]]] = (
            OrderedDict()
        )

    def get(self, tenant: Tenant) -> list[JiraStatus] | None:
        entry = self._entries.get(tenant.id)
        if entry is None:
            return None
        version, expires_at, statuses = entry
        if version != tenant.secret_version or self._clock.now() >= expires_at:
            del self._entries[tenant.id]
            return None
        self._entries.move_to_end(tenant.id)
        return list(statuses)

    def put(self, tenant: Tenant, statuses: list[JiraStatus]) -> None:
        expires_at = self._clock.now() + self._ttl
        self._entries[tenant.id] = (tenant.secret_version, expires_at, tuple(statuses))
        self._entries.move_to_end(tenant.id)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class CachingJiraApi:
    """A `JiraApi` answering `statuses` from a `StatusCache`, everything else from `inner`.

    A tenant with nothing to call Jira with (uninstalled) is never answered from the cache:
    the inner client refuses it. Failures are not cached."""

    def __init__(self, inner: JiraApi, cache: StatusCache) -> None:
        self.inner = inner
        self.cache = cache

    async def statuses(self, tenant: Tenant) -> list[JiraStatus]:
        if tenant.jira_credential is not None:
            cached = self.cache.get(tenant)
            if cached is not None:
                return cached
        statuses = await self.inner.statuses(tenant)
        self.cache.put(tenant, statuses)
        return statuses

    async def get_issue(self, tenant: Tenant, key: str) -> JiraIssueSummary | None:
        return await self.inner.get_issue(tenant, key)

    async def search_issues(
        self, tenant: Tenant, jql: str, max_results: int = 20
    ) -> list[JiraIssueSummary]:
        return await self.inner.search_issues(tenant, jql, max_results)

    async def assignable_users(self, tenant: Tenant, project: str, query: str) -> list[JiraUser]:
        return await self.inner.assignable_users(tenant, project, query)

    async def users(self, tenant: Tenant, query: str) -> list[JiraUser]:
        return await self.inner.users(tenant, query)

    async def projects(self, tenant: Tenant, query: str) -> list[JiraProject]:
        return await self.inner.projects(tenant, query)

    async def autocomplete(
        self, tenant: Tenant, field_name: str, field_value: str
    ) -> list[JqlSuggestion]:
        return await self.inner.autocomplete(tenant, field_name, field_value)

    async def user_email(self, tenant: Tenant, account_id: str) -> str | None:
        return await self.inner.user_email(tenant, account_id)

    async def myself(self, tenant: Tenant) -> JiraUser:
        return await self.inner.myself(tenant)
