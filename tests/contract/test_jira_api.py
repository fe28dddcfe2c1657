"""One contract suite for every JiraApi: the in-memory fake, and the httpx adapter talking
to the fake Jira server on loopback with each credential (S3–S6, S8, W5, §8.0, §8.1):
a Connect JWT, a Cloud API token (Basic, REST v3) and a Data Center PAT (Bearer, REST v2,
under a context path). The fake server checks every credential it receives. The status
cache is the `CachingJiraApi` wrapper, put around each as the composition root does."""

from __future__ import annotations

import base64
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol

import attrs
import pytest

from adapters.memory.clock import FixedClock
from adapters.memory.jira import MemoryJiraApi
from adapters.outbound.jira import HttpJiraApi, jira_http_client
from adapters.outbound.jira_status_cache import CachingJiraApi, StatusCache
from core.model.credentials import ApiToken, JiraFlavor, PersonalAccessToken
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


def a_tenant(
    tenant_id: int,
    base_url: str,
    secret: str | None,
    credential: ApiToken | PersonalAccessToken | None = None,
) -> Tenant:
    return Tenant(
        id=tenant_id,
        client_key=f"client-{tenant_id}",
        base_url=base_url,
        display_url=None,
        status=TenantStatus.INSTALLED,
        installed_at=datetime(2026, 1, 1, tzinfo=UTC),
        shared_secret=secret,
        transport="connect" if credential is None else "webhook",
        site_credential=credential,
        flavor=(
            JiraFlavor.DATA_CENTER
            if isinstance(credential, PersonalAccessToken)
            else JiraFlavor.CLOUD
        ),
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
    def with_a_wrong_credential(self, n: int = 1) -> Tenant | None: ...


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
    "myself": "myself",
}


def _now() -> datetime:
    # The fake server checks `exp` against this clock too, so it must be near real time.
    return datetime.now(UTC).replace(microsecond=0)


class MemoryWorld:
    def __init__(self) -> None:
        self.clock = FixedClock(_now())
        self.memory = MemoryJiraApi()
        self.api: JiraApi = CachingJiraApi(self.memory, StatusCache(self.clock))
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

    def with_a_wrong_credential(self, n: int = 1) -> Tenant | None:
        return None  # the memory fake checks no credential


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


Mode = str  # "connect" | "cloud-token" | "data-center"
HTTP_MODES: tuple[Mode, ...] = ("connect", "cloud-token", "data-center")


class HttpWorld:
    """One fake Jira server per tenant; the site authenticates as `mode` says (§8.1)."""

    def __init__(
        self, servers: list[FakeJira], api: HttpJiraApi, clock: FixedClock, mode: Mode
    ) -> None:
        self.servers = servers
        self.api: JiraApi = CachingJiraApi(api, StatusCache(clock))
        self.clock = clock
        self.mode = mode
        self.sites: dict[int, FakeJiraSite] = {}
        self._tenants: dict[int, Tenant] = {}
        for n, server in enumerate(servers, start=1):
            self.sites[n], self._tenants[n] = self._new_site(n, server)

    def _new_site(self, n: int, server: FakeJira) -> tuple[FakeJiraSite, Tenant]:
        secret = new_secret()
        if self.mode == "cloud-token":
            email = f"admin{n}@example.com"
            site = server.add_cloud_token_site(f"cloud-{n}", email, secret)
            return site, a_tenant(n, site.base_url, None, ApiToken(email, secret))
        if self.mode == "data-center":
            # §8.1: a Data Center base URL may carry a context path.
            site = server.add_data_center_site(f"dc-{n}", secret, base_path="/jira")
            return site, a_tenant(n, site.base_url, None, PersonalAccessToken(secret))
        site = server.add_site(f"client-{n}", secret)
        return site, a_tenant(n, site.base_url, secret)

    def tenant(self, n: int = 1) -> Tenant:
        return self._tenants[n]

    def add_issue(self, key: str, summary: str, n: int = 1) -> None:
        self.sites[n].add_issue(key, summary)

    def set_jql(self, jql: str, keys: list[str]) -> None:
        self.sites[1].jql_results[jql] = keys

    def add_user(
        self, account_id: str, name: str, email: str | None, projects: tuple[str, ...] = ()
    ) -> None:
        if self.mode == "data-center":  # the user's key plays the account id's part
            self.sites[1].add_data_center_user(account_id, f"u{account_id}", name, email, projects)
        else:
            self.sites[1].add_user(account_id, name, email, projects)

    def add_project(self, project_id: str, key: str, name: str) -> None:
        self.sites[1].add_project(project_id, key, name)

    def add_suggestion(self, field_name: str, value: str, display_name: str) -> None:
        self.sites[1].add_suggestion(field_name, value, display_name)

    def set_statuses(self, statuses: list[JiraStatus], n: int = 1) -> None:
        self.sites[n].statuses = [_status_json(s) for s in statuses]

    def set_email(self, account_id: str, email: str) -> None:
        site = self.sites[1]
        if self.mode == "connect":
            site.emails[account_id] = email
            return
        # Webhook sites read the address from the user resource (W5, §8.1).
        identity = "key" if self.mode == "data-center" else "accountId"
        for user in site.users:
            if user.get(identity) == account_id:
                user["emailAddress"] = email
                return
        self.add_user(account_id, "Someone", email)

    def fail(self, method: str, kind: str) -> None:
        route = ROUTES[method]
        if method == "user_email" and self.mode != "connect":
            route = "user"
        self.sites[1].reply(route, REPLIES[kind])

    def reinstall(self, n: int = 1) -> Tenant:
        # L4 / credential rotation: Jira accepts only the new one from now on.
        secret = new_secret()
        site, old = self.sites[n], self._tenants[n]
        if self.mode == "connect":
            site.shared_secret = secret
            new = attrs.evolve(old, shared_secret=secret)
        elif self.mode == "cloud-token":
            owner = site.api_tokens[0]
            site.api_tokens[:] = [attrs.evolve(owner, token=secret)]
            new = attrs.evolve(old, site_credential=ApiToken(owner.email, secret))
        else:
            site.pats[:] = [attrs.evolve(site.pats[0], token=secret)]
            new = attrs.evolve(old, site_credential=PersonalAccessToken(secret))
        self._tenants[n] = attrs.evolve(new, secret_version=old.secret_version + 1)
        return self._tenants[n]

    def uninstall(self, n: int = 1) -> Tenant:
        old = self._tenants[n]
        self._tenants[n] = attrs.evolve(
            old,
            status=TenantStatus.UNINSTALLED,
            shared_secret=None,
            site_credential=None,
            secret_version=old.secret_version + 1,
        )
        return self._tenants[n]

    def sent(self) -> int:
        return sum(len(server.requests) for server in self.servers)

    def with_a_wrong_credential(self, n: int = 1) -> Tenant | None:
        tenant, wrong = self._tenants[n], new_secret()
        if self.mode == "connect":
            return attrs.evolve(tenant, shared_secret=wrong)
        if self.mode == "cloud-token":
            credential = tenant.site_credential
            assert isinstance(credential, ApiToken)
            return attrs.evolve(tenant, site_credential=ApiToken(credential.email, wrong))
        return attrs.evolve(tenant, site_credential=PersonalAccessToken(wrong))


@pytest.fixture(params=["memory", *HTTP_MODES])
async def world(request: pytest.FixtureRequest) -> AsyncIterator[World]:
    if request.param == "memory":
        yield MemoryWorld()
        return
    clock = FixedClock(_now())
    # A short deadline only where a test waits for it to pass; elsewhere a loaded machine
    # (CI on 2 cores) must not turn a slow answer into a timeout.
    callspec = getattr(request.node, "callspec", None)
    waits_for_timeout = callspec is not None and callspec.params.get("kind") == "timeout"
    settings = a_settings(jira_hosts="http://127.0.0.1:*",
                          http_timeout_seconds=TIMEOUT if waits_for_timeout else "10")
    servers = [
        FakeJira(settings.app.app_key, clock=lambda: clock.now().timestamp()).start()
        for _ in (1, 2)
    ]
    try:
        async with jira_http_client(settings) as client:
            api = HttpJiraApi(client, settings, clock=clock)
            yield HttpWorld(servers, api, clock, request.param)
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


# -- §8.1 the webhook transport's credentials -------------------------------------------

ALL_CALLS: dict[str, Callable[[JiraApi, Tenant], Awaitable[Any]]] = {
    **CALLS,
    "myself": lambda api, t: api.myself(t),
}


def _http(world: World) -> HttpWorld:
    if not isinstance(world, HttpWorld):
        pytest.skip("the in-memory fake checks no credential and sends nothing")
    return world


@pytest.mark.parametrize("method", list(CALLS))
async def test_8_1_every_call_carries_a_credential_the_fake_jira_accepts(
    world: World, method: str
) -> None:
    http = _http(world)
    world.add_issue("ABC-1", "Crash")
    world.add_user("acc-1", "Ada", "ada@example.com", projects=("ABC",))
    await CALLS[method](world.api, world.tenant())
    [request] = [r for server in http.servers for r in server.requests]
    assert request.verified and request.status in (200, 404)
    authorization = request.headers["authorization"]
    if http.mode == "connect":
        assert authorization.startswith("JWT ") and request.claims is not None
    elif http.mode == "cloud-token":
        credential = world.tenant().site_credential
        assert isinstance(credential, ApiToken)
        expected = base64.b64encode(f"{credential.email}:{credential.token}".encode()).decode()
        assert authorization == f"Basic {expected}"
        assert request.principal == credential.email
        assert "/rest/api/2/" not in request.raw_path or method in ("autocomplete", "statuses")
    else:
        assert authorization.startswith("Bearer ")
        assert request.principal == "JIRAUSER10000"
        # §8.1: REST v2 under the site's context path.
        assert request.raw_path.startswith("/jira/rest/api/2/")


@pytest.mark.parametrize("method", list(ALL_CALLS))
async def test_8_1_a_wrong_credential_is_refused_by_jira_and_reported_as_refused(
    world: World, method: str
) -> None:
    http = _http(world)
    wrong = world.with_a_wrong_credential()
    assert wrong is not None
    with pytest.raises(UpstreamRefused) as raised:
        await ALL_CALLS[method](world.api, wrong)
    assert sum(server.refused for server in http.servers) == 1
    secret = wrong.shared_secret or getattr(wrong.site_credential, "token", "")
    assert secret and secret not in raised.value.detail


async def test_8_1_myself_names_the_credentials_owner(world: World) -> None:
    if isinstance(world, HttpWorld) and world.mode == "connect":
        pytest.skip("a Connect site is checked by its signed install, not /myself")
    me = await world.api.myself(world.tenant())
    if isinstance(world, HttpWorld) and world.mode == "data-center":
        assert me == JiraUser("JIRAUSER10000", "Admin", "admin@corp.example")
        assert world.servers[0].requests[-1].raw_path == "/jira/rest/api/2/myself"
    elif isinstance(world, HttpWorld):
        assert me == JiraUser("557058:fake-site-admin", "Site Admin", "admin1@example.com")
        assert world.servers[0].requests[-1].raw_path == "/rest/api/3/myself"
    else:
        assert me.id and me.display_name


async def test_8_1_myself_refused_names_the_problem_and_unreachable_is_another_error(
    world: World,
) -> None:
    http = _http(world)
    if http.mode == "connect":
        pytest.skip("a Connect site is checked by its signed install, not /myself")
    wrong = world.with_a_wrong_credential()
    assert wrong is not None
    with pytest.raises(UpstreamRefused) as refused:
        await world.api.myself(wrong)
    noun = "API token" if http.mode == "cloud-token" else "personal access token"
    assert noun in refused.value.detail and "401" in refused.value.detail
    http.sites[1].reply("myself", Reply.status_only(503))
    with pytest.raises(UpstreamFailed):
        await world.api.myself(world.tenant())
    http.servers[0].stop()
    with pytest.raises(UpstreamFailed) as unreachable:
        await world.api.myself(world.tenant())
    assert not isinstance(unreachable.value, UpstreamRefused)


async def test_W5_8_1_a_cloud_token_site_reads_the_email_from_the_user_resource(
    world: World,
) -> None:
    http = _http(world)
    if http.mode != "cloud-token":
        pytest.skip("Cloud API-token sites only")
    world.add_user("acc-1", "Ada", "ada@example.com")
    assert await world.api.user_email(world.tenant(), "acc-1") == "ada@example.com"
    world.add_user("acc-2", "Hidden", None)
    assert await world.api.user_email(world.tenant(), "acc-2") is None
    paths = {r.raw_path for r in http.servers[0].requests}
    assert paths == {"/rest/api/3/user"}  # never /user/email: that one is for apps only


async def test_S4_8_1_data_center_users_are_their_key_and_none_is_dropped(world: World) -> None:
    http = _http(world)
    if http.mode != "data-center":
        pytest.skip("Data Center only")
    http.sites[1].add_data_center_user("JIRAUSER10100", "john.smith", "John Smith", None)
    http.sites[1].add_data_center_user("john.doe", "jdoe", "John Doe", "jd@corp.example")
    users = await world.api.users(world.tenant(), "john")
    assert users == [
        JiraUser("JIRAUSER10100", "John Smith", None),
        JiraUser("john.doe", "John Doe", "jd@corp.example"),
    ]
    assert http.servers[0].requests[-1].query == {"username": ["john"]}


async def test_S5_8_1_data_center_filters_the_full_project_list_here(world: World) -> None:
    http = _http(world)
    if http.mode != "data-center":
        pytest.skip("Data Center only")
    world.add_project("10000", "OPS", "Operations")
    world.add_project("10001", "WEB", "Website OPS team")
    world.add_project("10002", "APP", "Mobile")
    found = await world.api.projects(world.tenant(), "oPs")
    assert found == [
        JiraProject("10000", "OPS", "Operations"),
        JiraProject("10001", "WEB", "Website OPS team"),
    ]
    request = http.servers[0].requests[-1]
    assert (request.raw_path, request.raw_query) == ("/jira/rest/api/2/project", "")


@pytest.mark.parametrize(
    ("flavor", "credential"),
    [
        (JiraFlavor.DATA_CENTER, ApiToken("a@example.com", "t0ken")),
        (JiraFlavor.CLOUD, PersonalAccessToken("p4t")),
    ],
    ids=["api-token-on-data-center", "pat-on-cloud"],
)
async def test_8_1_a_credential_that_does_not_fit_the_flavor_sends_nothing(
    world: World, flavor: JiraFlavor, credential: ApiToken | PersonalAccessToken
) -> None:
    _http(world)
    tenant = attrs.evolve(world.tenant(), site_credential=credential, flavor=flavor,
                          transport="webhook")
    with pytest.raises(UpstreamRefused):
        await world.api.get_issue(tenant, "ABC-1")
    assert world.sent() == 0


async def test_W5_an_uninstalled_site_is_never_answered_from_the_status_cache(
    world: World,
) -> None:
    await world.api.statuses(world.tenant())
    sent = world.sent()
    tenant = attrs.evolve(
        world.tenant(), status=TenantStatus.UNINSTALLED, shared_secret=None, site_credential=None
    )  # same secret version: only the missing credential can stop the cache
    with pytest.raises(UpstreamRefused):
        await world.api.statuses(tenant)
    assert world.sent() == sent


def test_8_1_credentials_never_show_in_a_repr(world: World) -> None:
    tenant = world.tenant()
    secrets_ = {tenant.shared_secret, getattr(tenant.site_credential, "token", None)} - {None}
    assert secrets_
    shown = repr(tenant) + repr(tenant.jira_credential) + repr(tenant.site_credential)
    assert not any(secret in shown for secret in secrets_ if secret)
