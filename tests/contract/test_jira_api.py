"""One contract suite for every JiraApi: the in-memory fake, and the httpx adapter talking
to the fake Jira server on loopback (S3–S6, S8, W5)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol

import attrs
import pytest

from adapters.memory.clock import FixedClock
from adapters.memory.jira import MemoryJiraApi
from adapters.outbound.jira import HttpJiraApi, jira_http_client
from core.model.errors import (
    UpstreamError,
    UpstreamFailed,
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamRefused,
    UpstreamTimeout,
)
from core.model.jira import JiraIssueSummary, JiraProject, JiraStatus, JiraUser, JqlSuggestion
from core.model.tenant import Tenant, TenantStatus
from ports.jira import JiraApi
from tests.support.builders import a_settings
from tests.support.fake_jira import FakeJira, FakeJiraSite, Reply, Route
from tests.support.paths import fixture_json

TIMEOUT = "0.3"


def a_tenant(tenant_id: int, base_url: str, secret: str) -> Tenant:
    return Tenant(
        id=tenant_id,
        client_key=f"client-{tenant_id}",
        base_url=base_url,
        display_url=None,
        status=TenantStatus.INSTALLED,
        installed_at=datetime(2026, 1, 1, tzinfo=UTC),
        shared_secret=secret,
    )


def new_secret() -> str:
    return secrets.token_urlsafe(32)


class World(Protocol):
    """Arranges one tenant's Jira the same way for either implementation."""

    api: JiraApi
    clock: FixedClock

    def tenant(self, n: int = 1) -> Tenant: ...
    def add_issue(self, key: str, summary: str, n: int = 1) -> None: ...
    def set_jql(self, jql: str, keys: list[str]) -> None: ...
    def add_user(
        self, account_id: str, name: str, email: str | None, projects: tuple[str, ...] = ()
    ) -> None: ...
    def add_project(self, project_id: str, key: str, name: str) -> None: ...
    def add_suggestion(self, field_name: str, value: str, display_name: str) -> None: ...
    def set_statuses(self, statuses: list[JiraStatus], n: int = 1) -> None: ...
    def set_email(self, account_id: str, email: str) -> None: ...
    def fail(self, method: str, kind: str) -> None: ...
    def reinstall(self, n: int = 1) -> Tenant: ...
    def uninstall(self, n: int = 1) -> Tenant: ...
    def sent(self) -> int: ...


ERRORS: dict[str, UpstreamError] = {
    "rate_limited": UpstreamRateLimited("rate limited", retry_after=12),
    "timeout": UpstreamTimeout("timeout"),
    "refused": UpstreamRefused("refused"),
    "not_found": UpstreamNotFound("not found"),
    "failed": UpstreamFailed("failed", status=500),
}
REPLIES: dict[str, Reply] = {
    "rate_limited": Reply.rate_limited("12"),
    "timeout": Reply.hang(30),
    "refused": Reply.status_only(401),
    "not_found": Reply.status_only(404),
    "failed": Reply.status_only(500),
}
ROUTES: dict[str, Route] = {
    "get_issue": "issue",
    "search_issues": "search",
    "assignable_users": "assignable",
    "users": "users",
    "projects": "projects",
    "autocomplete": "autocomplete",
    "statuses": "statuses",
    "user_email": "email",
}


def _now() -> datetime:
    # The fake server checks `exp` against this clock too, so it must be near real time.
    return datetime.now(UTC).replace(microsecond=0)


class MemoryWorld:
    def __init__(self) -> None:
        self.clock = FixedClock(_now())
        self.memory = MemoryJiraApi(clock=self.clock)
        self.api: JiraApi = self.memory
        self._tenants = {
            n: a_tenant(n, f"https://site{n}.atlassian.net", new_secret()) for n in (1, 2)
        }
        for n in (1, 2):
            self.set_statuses(_fixture_statuses(), n)

    def tenant(self, n: int = 1) -> Tenant:
        return self._tenants[n]

    def add_issue(self, key: str, summary: str, n: int = 1) -> None:
        self.memory.site(n).issues[key] = summary

    def set_jql(self, jql: str, keys: list[str]) -> None:
        self.memory.site(1).jql_results[jql] = keys

    def add_user(
        self, account_id: str, name: str, email: str | None, projects: tuple[str, ...] = ()
    ) -> None:
        site = self.memory.site(1)
        site.users.append(JiraUser(account_id, name, email))
        for project in projects:
            site.project_members.setdefault(project, set()).add(account_id)

    def add_project(self, project_id: str, key: str, name: str) -> None:
        self.memory.site(1).projects.append(JiraProject(project_id, key, name))

    def add_suggestion(self, field_name: str, value: str, display_name: str) -> None:
        site = self.memory.site(1)
        site.suggestions.setdefault(field_name, []).append(JqlSuggestion(value, display_name))

    def set_statuses(self, statuses: list[JiraStatus], n: int = 1) -> None:
        self.memory.site(n).statuses = list(statuses)

    def set_email(self, account_id: str, email: str) -> None:
        self.memory.site(1).emails[account_id] = email

    def fail(self, method: str, kind: str) -> None:
        self.memory.fail(method, ERRORS[kind])

    def reinstall(self, n: int = 1) -> Tenant:
        old = self._tenants[n]
        self._tenants[n] = attrs.evolve(
            old, shared_secret=new_secret(), secret_version=old.secret_version + 1
        )
        return self._tenants[n]

    def uninstall(self, n: int = 1) -> Tenant:
        old = self._tenants[n]
        self._tenants[n] = attrs.evolve(
            old,
            status=TenantStatus.UNINSTALLED,
            shared_secret=None,
            secret_version=old.secret_version + 1,
        )
        return self._tenants[n]

    def sent(self) -> int:
        return len(self.memory.calls)


def _fixture_statuses() -> list[JiraStatus]:
    return [
        JiraStatus(s["id"], s["name"], s["statusCategory"]["key"])
        for s in fixture_json("jira-status-list.json")
    ]


def _status_json(status: JiraStatus) -> dict[str, Any]:
    return {
        "id": status.id,
        "name": status.name,
        "statusCategory": {"id": 1, "key": status.category_key, "name": status.category_key},
    }


class HttpWorld:
    def __init__(self, servers: list[FakeJira], api: HttpJiraApi, clock: FixedClock) -> None:
        self.servers = servers
        self.api: JiraApi = api
        self.clock = clock
        self.sites: dict[int, FakeJiraSite] = {}
        self._tenants: dict[int, Tenant] = {}
        for n, server in enumerate(servers, start=1):
            secret = new_secret()
            self.sites[n] = server.add_site(f"client-{n}", secret)
            self._tenants[n] = a_tenant(n, self.sites[n].base_url, secret)

    def tenant(self, n: int = 1) -> Tenant:
        return self._tenants[n]

    def add_issue(self, key: str, summary: str, n: int = 1) -> None:
        self.sites[n].add_issue(key, summary)

    def set_jql(self, jql: str, keys: list[str]) -> None:
        self.sites[1].jql_results[jql] = keys

    def add_user(
        self, account_id: str, name: str, email: str | None, projects: tuple[str, ...] = ()
    ) -> None:
        self.sites[1].add_user(account_id, name, email, projects)

    def add_project(self, project_id: str, key: str, name: str) -> None:
        self.sites[1].add_project(project_id, key, name)

    def add_suggestion(self, field_name: str, value: str, display_name: str) -> None:
        self.sites[1].add_suggestion(field_name, value, display_name)

    def set_statuses(self, statuses: list[JiraStatus], n: int = 1) -> None:
        self.sites[n].statuses = [_status_json(s) for s in statuses]

    def set_email(self, account_id: str, email: str) -> None:
        self.sites[1].emails[account_id] = email

    def fail(self, method: str, kind: str) -> None:
        self.sites[1].reply(ROUTES[method], REPLIES[kind])

    def reinstall(self, n: int = 1) -> Tenant:
        # L4 rotates the secret: Jira signs-verifies with the new one from now on.
        secret = new_secret()
        self.sites[n].shared_secret = secret
        old = self._tenants[n]
        self._tenants[n] = attrs.evolve(
            old, shared_secret=secret, secret_version=old.secret_version + 1
        )
        return self._tenants[n]

    def uninstall(self, n: int = 1) -> Tenant:
        old = self._tenants[n]
        self._tenants[n] = attrs.evolve(
            old,
            status=TenantStatus.UNINSTALLED,
            shared_secret=None,
            secret_version=old.secret_version + 1,
        )
        return self._tenants[n]

    def sent(self) -> int:
        return sum(len(server.requests) for server in self.servers)


@pytest.fixture(params=["memory", "http"])
async def world(request: pytest.FixtureRequest) -> AsyncIterator[World]:
    if request.param == "memory":
        yield MemoryWorld()
        return
    clock = FixedClock(_now())
    settings = a_settings(jira_hosts="http://127.0.0.1:*", http_timeout_seconds=TIMEOUT)
    servers = [
        FakeJira(settings.app.app_key, clock=lambda: clock.now().timestamp()).start()
        for _ in (1, 2)
    ]
    try:
        async with jira_http_client(settings) as client:
            yield HttpWorld(servers, HttpJiraApi(client, settings, clock=clock), clock)
    finally:
        for server in servers:
            server.stop()


# -- S3 issues ------------------------------------------------------------------------


async def test_S3_get_issue_returns_key_and_summary_as_jira_wrote_them(world: World) -> None:
    world.add_issue("ABC-1", "<b>Crash</b> on start &amp; exit")
    issue = await world.api.get_issue(world.tenant(), "ABC-1")
    assert issue == JiraIssueSummary("ABC-1", "<b>Crash</b> on start &amp; exit")


async def test_S3_get_issue_of_an_unknown_key_is_none(world: World) -> None:
    world.add_issue("ABC-1", "Crash")
    assert await world.api.get_issue(world.tenant(), "ABC-2") is None


async def test_S3_search_returns_the_issues_of_the_jql_in_order(world: World) -> None:
    world.add_issue("ABC-1", "First crash")
    world.add_issue("ABC-7", "Second crash")
    world.set_jql('text ~ "crash"', ["ABC-7", "ABC-1"])
    found = await world.api.search_issues(world.tenant(), 'text ~ "crash"')
    assert found == [
        JiraIssueSummary("ABC-7", "Second crash"),
        JiraIssueSummary("ABC-1", "First crash"),
    ]


async def test_S3_search_returns_at_most_max_results(world: World) -> None:
    for n in range(1, 6):
        world.add_issue(f"ABC-{n}", f"crash {n}")
    world.set_jql('text ~ "crash"', [f"ABC-{n}" for n in range(1, 6)])
    found = await world.api.search_issues(world.tenant(), 'text ~ "crash"', max_results=2)
    assert [issue.key for issue in found] == ["ABC-1", "ABC-2"]


async def test_S3_search_without_matches_is_empty(world: World) -> None:
    world.add_issue("ABC-1", "Crash")
    assert await world.api.search_issues(world.tenant(), 'text ~ "nothing"') == []


# -- S4 users -------------------------------------------------------------------------


async def test_S4_users_match_the_query_and_keep_hidden_emails_empty(world: World) -> None:
    world.add_user("acc-1", "Ada Lovelace", "ada@example.com")
    world.add_user("acc-2", "Ada Hidden", None)
    world.add_user("acc-3", "Grace Hopper", "grace@example.com")
    users = await world.api.users(world.tenant(), "ada")
    assert users == [
        JiraUser("acc-1", "Ada Lovelace", "ada@example.com"),
        JiraUser("acc-2", "Ada Hidden", None),
    ]


async def test_S4_assignable_users_are_those_of_the_project(world: World) -> None:
    world.add_user("acc-1", "Ada Lovelace", "ada@example.com", projects=("ABC", "10000"))
    world.add_user("acc-2", "Ada Other", "other@example.com", projects=("XYZ",))
    users = await world.api.assignable_users(world.tenant(), "ABC", "ada")
    assert users == [JiraUser("acc-1", "Ada Lovelace", "ada@example.com")]
    assert await world.api.assignable_users(world.tenant(), "10000", "lovelace") == users


async def test_S4_assignable_users_of_an_unknown_project_is_not_found(world: World) -> None:
    world.add_user("acc-1", "Ada Lovelace", "ada@example.com", projects=("ABC",))
    with pytest.raises(UpstreamNotFound):
        await world.api.assignable_users(world.tenant(), "NOPE", "ada")


# -- S5, S6 ---------------------------------------------------------------------------


async def test_S5_projects_match_key_or_name(world: World) -> None:
    world.add_project("10000", "ABC", "Alphabet")
    world.add_project("10001", "XYZ", "Zebra <Ops>")
    assert await world.api.projects(world.tenant(), "zeb") == [
        JiraProject("10001", "XYZ", "Zebra <Ops>")
    ]
    assert await world.api.projects(world.tenant(), "abc") == [
        JiraProject("10000", "ABC", "Alphabet")
    ]


async def test_S6_autocomplete_returns_the_fields_suggestions(world: World) -> None:
    world.add_suggestion("cf[10010]", "ab c", "<b>ab</b> c")
    world.add_suggestion("cf[10010]", "zz", "zz")
    world.add_suggestion("labels", "ab c", "ab c (label)")
    found = await world.api.autocomplete(world.tenant(), "cf[10010]", "ab c")
    assert found == [JqlSuggestion("ab c", "<b>ab</b> c")]


# -- W5 statuses and e-mail -----------------------------------------------------------


async def test_W5_statuses_are_jiras_status_list_with_categories(world: World) -> None:
    statuses = await world.api.statuses(world.tenant())
    assert statuses == _fixture_statuses()
    assert {s.id for s in statuses if s.is_done} == {"10101", "10102"}


async def test_W5_statuses_are_cached_per_tenant(world: World) -> None:
    first = await world.api.statuses(world.tenant())
    sent = world.sent()
    world.set_statuses([JiraStatus("1", "Open", "new")])
    assert await world.api.statuses(world.tenant()) == first
    assert world.sent() == sent  # answered from the cache
    world.set_statuses([JiraStatus("9", "Shipped", "done")], n=2)
    assert await world.api.statuses(world.tenant(2)) == [JiraStatus("9", "Shipped", "done")]


async def test_W5_L4_a_reinstall_invalidates_the_cached_statuses(world: World) -> None:
    await world.api.statuses(world.tenant())
    world.set_statuses([JiraStatus("1", "Open", "new")])
    tenant = world.reinstall()
    assert await world.api.statuses(tenant) == [JiraStatus("1", "Open", "new")]


async def test_W5_cached_statuses_expire_after_ten_minutes(world: World) -> None:
    await world.api.statuses(world.tenant())
    world.set_statuses([JiraStatus("1", "Open", "new")])
    world.clock.advance(9 * 60)
    assert await world.api.statuses(world.tenant()) == _fixture_statuses()
    world.clock.advance(61)
    assert await world.api.statuses(world.tenant()) == [JiraStatus("1", "Open", "new")]


async def test_W5_user_email_returns_the_address(world: World) -> None:
    world.set_email("acc-1", "ada@example.com")
    assert await world.api.user_email(world.tenant(), "acc-1") == "ada@example.com"


async def test_W5_a_hidden_user_email_is_none_not_a_failure(world: World) -> None:
    world.set_email("acc-1", "ada@example.com")
    assert await world.api.user_email(world.tenant(), "acc-2") is None


# -- S8 errors ------------------------------------------------------------------------

CALLS: dict[str, Callable[[JiraApi, Tenant], Awaitable[Any]]] = {
    "get_issue": lambda api, t: api.get_issue(t, "ABC-1"),
    "search_issues": lambda api, t: api.search_issues(t, 'text ~ "crash"'),
    "assignable_users": lambda api, t: api.assignable_users(t, "ABC", "ada"),
    "users": lambda api, t: api.users(t, "ada"),
    "projects": lambda api, t: api.projects(t, "abc"),
    "autocomplete": lambda api, t: api.autocomplete(t, "labels", "ab"),
    "statuses": lambda api, t: api.statuses(t),
    "user_email": lambda api, t: api.user_email(t, "acc-1"),
}
EXPECTED: dict[str, type[UpstreamError]] = {
    "rate_limited": UpstreamRateLimited,
    "timeout": UpstreamTimeout,
    "refused": UpstreamRefused,
    "not_found": UpstreamNotFound,
    "failed": UpstreamFailed,
}
MATRIX = [
    (method, kind)
    for method in CALLS
    for kind in EXPECTED
    # For these two a 404 has a meaning of its own (None), covered above.
    if not (kind == "not_found" and method in ("get_issue", "user_email"))
]


@pytest.mark.parametrize(("method", "kind"), MATRIX, ids=[f"{m}-{k}" for m, k in MATRIX])
async def test_S8_each_upstream_failure_has_its_kind(world: World, method: str, kind: str) -> None:
    world.add_issue("ABC-1", "Crash")
    world.add_user("acc-1", "Ada", "ada@example.com", projects=("ABC",))
    world.set_email("acc-1", "ada@example.com")
    world.fail(method, kind)
    with pytest.raises(EXPECTED[kind]) as raised:
        await CALLS[method](world.api, world.tenant())
    if kind == "rate_limited":
        assert isinstance(raised.value, UpstreamRateLimited)
        assert raised.value.retry_after == 12
    if kind == "failed":
        assert isinstance(raised.value, UpstreamFailed)
        assert raised.value.status == 500


@pytest.mark.parametrize("method", list(CALLS))
async def test_L7_an_uninstalled_tenant_is_refused_and_nothing_is_sent(
    world: World, method: str
) -> None:
    tenant = world.uninstall()
    with pytest.raises(UpstreamRefused):
        await CALLS[method](world.api, tenant)
    assert world.sent() == 0
