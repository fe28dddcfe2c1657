"""In-memory Jira REST API: what each tenant's Jira holds, and failures on demand.

Same semantics as `adapters/outbound/jira.py` (the contract suite runs over both):
an unknown issue key → None, a hidden e-mail → None, an uninstalled tenant →
`UpstreamRefused` with nothing "sent". No status cache: wrap it in
`jira_status_cache.CachingJiraApi` as the composition root wraps the httpx client.

Arrange data with `site(tenant)`; make a method raise with `fail(method, error)`;
every call that would have reached Jira is appended to `calls`.
"""

from __future__ import annotations

from typing import Any, Final

import attrs

from core.model.errors import UpstreamError, UpstreamNotFound, UpstreamRefused
from core.model.jira import JiraIssueSummary, JiraProject, JiraStatus, JiraUser, JqlSuggestion
from core.model.tenant import Tenant

METHODS: Final = (
    "get_issue",
    "search_issues",
    "assignable_users",
    "users",
    "projects",
    "autocomplete",
    "statuses",
    "user_email",
    "myself",
)


@attrs.define
class MemoryJiraSite:
    """One tenant's Jira. Searches match a case-insensitive substring, as the fake server."""

    issues: dict[str, str] = attrs.Factory(dict)  # key -> summary
    jql_results: dict[str, list[str]] = attrs.Factory(dict)  # exact JQL -> issue keys
    users: list[JiraUser] = attrs.Factory(list)
    project_members: dict[str, set[str]] = attrs.Factory(dict)  # project id/key -> account ids
    projects: list[JiraProject] = attrs.Factory(list)
    suggestions: dict[str, list[JqlSuggestion]] = attrs.Factory(dict)  # field name -> values
    statuses: list[JiraStatus] = attrs.Factory(list)
    emails: dict[str, str] = attrs.Factory(dict)  # account id -> address; absent = hidden
    # §8.1 credential check: who the credential belongs to; None = Jira refuses it.
    me: JiraUser | None = attrs.Factory(
        lambda: JiraUser("557058:fake-site-admin", "Site Admin", "admin@example.com")
    )


@attrs.frozen
class JiraCall:
    """A call that reached the (fake) Jira."""

    tenant_id: int
    method: str
    args: tuple[Any, ...]


def _matches(query: str, *texts: str | None) -> bool:
    needle = query.lower()
    return any(needle in text.lower() for text in texts if text)


class MemoryJiraApi:
    def __init__(self) -> None:
        self._sites: dict[int, MemoryJiraSite] = {}
        self._failures: dict[str, UpstreamError] = {}
        self.calls: list[JiraCall] = []

    def site(self, tenant: Tenant | int) -> MemoryJiraSite:
        """The data of a tenant's Jira (created empty on first use)."""
        tenant_id = tenant if isinstance(tenant, int) else tenant.id
        return self._sites.setdefault(tenant_id, MemoryJiraSite())

    def fail(self, method: str, error: UpstreamError | None) -> None:
        """Make `method` raise `error` on every call from now on (None: answer again)."""
        if method not in METHODS:
            raise ValueError(f"not a JiraApi method: {method}")
        if error is None:
            self._failures.pop(method, None)
        else:
            self._failures[method] = error

    def _enter(self, tenant: Tenant, method: str, *args: Any) -> MemoryJiraSite:
        if tenant.jira_credential is None:
            raise UpstreamRefused("the tenant is not installed: no credential to call Jira with")
        self.calls.append(JiraCall(tenant.id, method, args))
        failure = self._failures.get(method)
        if failure is not None:
            raise failure
        return self.site(tenant)

    async def get_issue(self, tenant: Tenant, key: str) -> JiraIssueSummary | None:
        site = self._enter(tenant, "get_issue", key)
        summary = site.issues.get(key)
        return None if summary is None else JiraIssueSummary(key=key, summary=summary)

    async def search_issues(
        self, tenant: Tenant, jql: str, max_results: int = 20
    ) -> list[JiraIssueSummary]:
        site = self._enter(tenant, "search_issues", jql, max_results)
        keys = [key for key in site.jql_results.get(jql, []) if key in site.issues]
        return [JiraIssueSummary(key=key, summary=site.issues[key]) for key in keys][:max_results]

    async def assignable_users(self, tenant: Tenant, project: str, query: str) -> list[JiraUser]:
        site = self._enter(tenant, "assignable_users", project, query)
        members = site.project_members.get(project)
        if members is None:  # Jira answers 404 for a project it does not know
            raise UpstreamNotFound("Jira answered 404")
        return [
            user
            for user in site.users
            if user.id in members and _matches(query, user.display_name, user.email_address)
        ]

    async def users(self, tenant: Tenant, query: str) -> list[JiraUser]:
        site = self._enter(tenant, "users", query)
        return [u for u in site.users if _matches(query, u.display_name, u.email_address)]

    async def projects(self, tenant: Tenant, query: str) -> list[JiraProject]:
        site = self._enter(tenant, "projects", query)
        return [p for p in site.projects if _matches(query, p.key, p.name)]

    async def autocomplete(
        self, tenant: Tenant, field_name: str, field_value: str
    ) -> list[JqlSuggestion]:
        site = self._enter(tenant, "autocomplete", field_name, field_value)
        return [
            s
            for s in site.suggestions.get(field_name, [])
            if _matches(field_value, s.value, s.display_name)
        ]

    async def statuses(self, tenant: Tenant) -> list[JiraStatus]:
        site = self._enter(tenant, "statuses")
        return list(site.statuses)

    async def user_email(self, tenant: Tenant, account_id: str) -> str | None:
        site = self._enter(tenant, "user_email", account_id)
        return site.emails.get(account_id)

    async def myself(self, tenant: Tenant) -> JiraUser:
        site = self._enter(tenant, "myself")
        if site.me is None:
            raise UpstreamRefused("Jira refused the credential (401)")
        return site.me
