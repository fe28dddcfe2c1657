"""The Jira REST API port: every outbound call the use cases make to a tenant's Jira.

Every method takes the tenant (a site of any transport) first. How a call authenticates and
which REST paths it takes are the adapter's business, chosen per call from
`tenant.jira_credential` and `tenant.flavor` (SPEC §8.0, §8.1): a Connect JWT signed with the
shared secret, `Basic` with a Cloud API token (REST v3), or `Bearer` with a Data Center
personal access token (REST v2). Calls go only to the tenant's stored `baseUrl` (SPEC
"Outbound calls to Jira"). Failures are `core.model.errors.Upstream*`:
`UpstreamRateLimited` (429, `retry_after`), `UpstreamTimeout`, `UpstreamRefused` (401/403,
a tenant without a credential, or a credential that does not fit the site's flavor),
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
        """S4: users matching `query`; users without an identity (Cloud `accountId`, Data
        Center `key`) are left out."""
        ...

    async def projects(self, tenant: Tenant, query: str) -> list[JiraProject]:
        """S5: projects whose key or name contains `query` (Data Center: the full project
        list, filtered here)."""
        ...

    async def autocomplete(
        self, tenant: Tenant, field_name: str, field_value: str
    ) -> list[JqlSuggestion]:
        """S6: JQL value suggestions; `field_name` is sent as given (e.g. `cf[10010]`)."""
        ...

    async def statuses(self, tenant: Tenant) -> list[JiraStatus]:
        """W5: every workflow status. Not cached here: `adapters.outbound.jira_status_cache`
        wraps any `JiraApi` with the per-tenant cache."""
        ...

    async def user_email(self, tenant: Tenant, account_id: str) -> str | None:
        """W5: a user's e-mail address; None when Jira hides it (403 / 404, or no address).
        Connect: `/rest/api/3/user/email`; a Cloud API token: `/rest/api/3/user?accountId=`
        (`/user/email` is for apps only); Data Center: `/rest/api/2/user?key=`."""
        ...

    async def myself(self, tenant: Tenant) -> JiraUser:
        """§8.1 credential check: the user the credential belongs to (`/rest/api/3/myself`,
        Data Center `/rest/api/2/myself`). Jira refusing it → `UpstreamRefused` whose detail
        names the problem; Jira unreachable or answering oddly → `UpstreamTimeout` /
        `UpstreamFailed`."""
        ...
