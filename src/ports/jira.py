"""The Jira REST API port: every outbound call the use cases make to a tenant's Jira.

Every method takes the tenant first; the adapter signs the call with the tenant's shared
secret and sends it only to the tenant's stored `baseUrl` (SPEC "Outbound calls to Jira").
Failures are `core.model.errors.Upstream*`: `UpstreamRateLimited` (429, `retry_after`),
`UpstreamTimeout`, `UpstreamRefused` (401/403, or a tenant without a secret),
`UpstreamNotFound` (404 where a method gives 404 no meaning) and `UpstreamFailed`
(everything else: 5xx, 410, 3xx, HTML, bad JSON, a refused host or address).
"""

from __future__ import annotations

from typing import Protocol

from core.model.jira import JiraIssueSummary, JiraProject, JiraStatus, JiraUser, JqlSuggestion
from core.model.tenant import Tenant


class JiraApi(Protocol):
    async def get_issue(self, tenant: Tenant, key: str) -> JiraIssueSummary | None:
        """S3: `GET /rest/api/3/issue/<key>?fields=summary`; None when Jira answers 404."""
        ...

    async def search_issues(
        self, tenant: Tenant, jql: str, max_results: int = 20
    ) -> list[JiraIssueSummary]:
        """S3: enhanced JQL search `GET /rest/api/3/search/jql` (summary field only)."""
        ...

    async def assignable_users(self, tenant: Tenant, project: str, query: str) -> list[JiraUser]:
        """S4: users assignable in `project` (an id or key) matching `query`."""
        ...

    async def users(self, tenant: Tenant, query: str) -> list[JiraUser]:
        """S4: users matching `query`; accounts without an `accountId` are left out."""
        ...

    async def projects(self, tenant: Tenant, query: str) -> list[JiraProject]:
        """S5: projects matching `query`."""
        ...

    async def autocomplete(
        self, tenant: Tenant, field_name: str, field_value: str
    ) -> list[JqlSuggestion]:
        """S6: JQL value suggestions; `field_name` is sent as given (e.g. `cf[10010]`)."""
        ...

    async def statuses(self, tenant: Tenant) -> list[JiraStatus]:
        """W5: every workflow status; cached per (tenant id, secret version) for a while."""
        ...

    async def user_email(self, tenant: Tenant, account_id: str) -> str | None:
        """W5: an account's e-mail address; None when Jira hides it (403 / 404)."""
        ...
