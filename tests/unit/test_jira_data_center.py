"""§8.1 Data Center answers (S4, S5): users are their `key`, projects are filtered here, and
search answers keep them — through the pure mapping and through the httpx adapter talking to
the fake Data Center on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any, cast

import attrs
import pytest
from tests.support.builders import a_settings
from tests.support.fake_jira import FakeJira, FakeJiraSite

from adapters.memory.jira import MemoryJiraApi
from adapters.outbound.jira import HttpJiraApi, jira_http_client, matching_projects, users_of
from adapters.wiring import memory_admin_stores
from core.model.bindings import Binding
from core.model.credentials import JiraFlavor, PersonalAccessToken
from core.model.errors import NotFound, UpstreamFailed
from core.model.jira import JiraProject, JiraUser
from core.model.tenant import Tenant, TenantStatus
from core.search.search import (
    SearchQuery,
    SearchRequest,
    SearchResult,
    SearchSettings,
    ask_jira,
    search,
)
from ports.tenants import TenantStore

PAT = "dc-personal-access-token-0123456789abcdef"
ADMIN = "admin-token-for-these-tests-0123456789"

DC_USERS: list[dict[str, Any]] = [
    {"key": "JIRAUSER10100", "name": "john.smith", "displayName": "John <b>Smith</b>",
     "emailAddress": "john@corp.example", "active": True},
    {"key": "john.doe", "name": "jdoe", "displayName": "John Doe", "active": True},
    {"name": "keyless", "displayName": "No Key"},  # not a user Jira can assign: skipped
    {"key": "", "name": "empty", "displayName": "Empty Key"},
]


def test_S4_8_1_data_center_users_are_identified_by_their_key_not_their_name() -> None:
    assert users_of(DC_USERS, JiraFlavor.DATA_CENTER) == [
        JiraUser("JIRAUSER10100", "John <b>Smith</b>", "john@corp.example"),
        JiraUser("john.doe", "John Doe", None),
    ]


def test_S4_cloud_users_stay_identified_by_account_id() -> None:
    cloud = [{"accountId": "557058:abc", "displayName": "Ada", "key": "ignored"}, *DC_USERS]
    assert users_of(cloud, JiraFlavor.CLOUD) == [JiraUser("557058:abc", "Ada", None)]


@pytest.mark.parametrize("answer", [{"users": []}, ["not an object"], None])
def test_S8_an_odd_user_list_is_refused_not_guessed(answer: object) -> None:
    with pytest.raises(UpstreamFailed):
        users_of(answer, JiraFlavor.DATA_CENTER)


def test_S4_a_key_that_is_not_text_is_no_user() -> None:
    assert users_of([{"key": 7, "displayName": "Seven"}], JiraFlavor.DATA_CENTER) == []


PROJECTS = [
    JiraProject("10000", "OPS", "Operations"),
    JiraProject("10001", "WEB", "Website for ops"),
    JiraProject("10002", "APP", "Mobile"),
]


@pytest.mark.parametrize(
    ("query", "keys"),
    [("ops", ["OPS", "WEB"]), ("OPS", ["OPS", "WEB"]), ("app", ["APP"]), ("mob", ["APP"]),
     ("zzz", []), ("", ["OPS", "WEB", "APP"])],
)
def test_S5_8_1_projects_match_key_or_name_case_insensitively(query: str, keys: list[str]) -> None:
    assert [p.key for p in matching_projects(PROJECTS, query)] == keys


# -- search answers through the fake Data Center ------------------------------------------


@pytest.fixture
def data_center() -> Iterator[FakeJiraSite]:
    with FakeJira("sentry-jira.test") as jira:
        site = jira.add_data_center_site("dc-1", PAT, base_path="/jira")
        site.users.extend(DC_USERS)
        site.project_members["OPS"] = {"JIRAUSER10100"}
        site.add_project("10000", "OPS", "Operations")
        site.add_project("10001", "WEB", "Website &amp; <i>shop</i>")
        site.add_project("10002", "APP", "Mobile")
        yield site


@pytest.fixture
async def api() -> AsyncIterator[HttpJiraApi]:
    settings = a_settings(jira_hosts="http://127.0.0.1:*", http_timeout_seconds="2")
    async with jira_http_client(settings) as client:
        yield HttpJiraApi(client, settings)


def dc_tenant(site: FakeJiraSite) -> Tenant:
    return dc_tenant_at(site.base_url)


def dc_tenant_at(base_url: str) -> Tenant:
    return Tenant(
        id=7,
        client_key="dc-1",
        base_url=base_url,
        display_url=None,
        status=TenantStatus.INSTALLED,
        installed_at=datetime(2026, 1, 1, tzinfo=UTC),
        shared_secret=None,
        transport="webhook",
        site_credential=PersonalAccessToken(PAT),
        flavor=JiraFlavor.DATA_CENTER,
    )


async def test_S4_8_1_assignee_search_on_data_center_answers_user_keys(
    api: HttpJiraApi, data_center: FakeJiraSite
) -> None:
    results = await ask_jira(SearchQuery("assignee", "john"), dc_tenant(data_center), jira=api)
    assert results == [
        SearchResult("John Smith - john@corp.example", "JIRAUSER10100"),
        SearchResult("John Doe", "john.doe"),
    ]
    assignable = await ask_jira(
        SearchQuery("assignee", "john", project="OPS"), dc_tenant(data_center), jira=api
    )
    assert assignable == [SearchResult("John Smith - john@corp.example", "JIRAUSER10100")]


async def test_S5_8_1_project_search_on_data_center_filters_locally_with_S5_labels(
    api: HttpJiraApi, data_center: FakeJiraSite
) -> None:
    results = await ask_jira(SearchQuery("project", "SHOP"), dc_tenant(data_center), jira=api)
    assert results == [SearchResult("WEB - Website & shop", "10001")]
    assert await ask_jira(SearchQuery("project", "nothing"), dc_tenant(data_center), jira=api) == []


# -- S1 for webhook sites ------------------------------------------------------------------


class OneSite:
    """A tenant store holding one site, as the webhook transport's site store will."""

    def __init__(self, site: Tenant) -> None:
        self.site = site

    async def get(self, tenant_id: int) -> Tenant | None:
        return self.site if tenant_id == self.site.id else None


@pytest.mark.parametrize("removed", [False, True], ids=["registered", "removed"])
async def test_S1_8_0_a_webhook_site_bound_to_the_org_is_searchable_until_removed(
    removed: bool,
) -> None:
    stores = memory_admin_stores()
    site = attrs.evolve(
        dc_tenant_at("https://jira.corp.example/jira"),
        status=TenantStatus.UNINSTALLED if removed else TenantStatus.INSTALLED,
        site_credential=None if removed else PersonalAccessToken(PAT),
    )
    await stores.bindings.change(
        site.id, "acme", lambda _: Binding(
            tenant_id=site.id, org="acme", sentry_url="https://sentry.io", sentry_token="s"
        ),
    )
    jira = MemoryJiraApi()
    jira.site(site).projects.append(JiraProject("10000", "OPS", "Operations"))
    request = SearchRequest(
        org="acme", tenant_id=str(site.id), authorization=(f"Bearer {ADMIN}",),
        parameters=(("field", "project"), ("query", "ops")),
    )
    found = search(
        request, tenants=cast(TenantStore, OneSite(site)), bindings=stores.bindings,
        search_tokens=stores.search_tokens, jira=jira,
        settings=SearchSettings(admin_tokens=(ADMIN,)),
    )
    if removed:
        with pytest.raises(NotFound):
            await found
        assert jira.calls == []
    else:
        assert await found == [SearchResult("OPS - Operations", "10000")]
