"""§8.0, §8.1, "Outbound calls to Jira": the egress rules are the same for every credential.
The host is re-checked before every call, redirects are not followed, and a name resolving
to a private address is refused before any connection unless an exact pattern names it.
Only loopback is ever connected to; refusals are proven by what the fake never received."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime

import pytest

from adapters.config import Settings
from adapters.outbound.jira import HttpJiraApi, jira_http_client
from core.model.credentials import ApiToken, JiraFlavor, PersonalAccessToken
from core.model.errors import UpstreamFailed
from core.model.tenant import Tenant, TenantStatus
from tests.contract.test_jira_http_security import resolver_of
from tests.support.builders import a_settings
from tests.support.fake_jira import FakeJira, FakeJiraSite, Reply

TOKEN = "cloud-api-token-0123456789abcdef"
PAT = "dc-personal-access-token-0123456789abcdef"
KINDS = ["cloud-token", "data-center"]

MakeApi = Callable[..., HttpJiraApi]


@pytest.fixture
def jira() -> Iterator[FakeJira]:
    with FakeJira("sentry-jira.test") as server:
        yield server


@pytest.fixture(params=KINDS)
def site(request: pytest.FixtureRequest, jira: FakeJira) -> FakeJiraSite:
    if request.param == "cloud-token":
        site = jira.add_cloud_token_site("cloud-1", "admin@example.com", TOKEN)
    else:
        site = jira.add_data_center_site("dc-1", PAT, base_path="/jira")
    site.add_issue("ABC-1", "Crash")
    return site


def tenant_of(site: FakeJiraSite, base_url: str | None = None) -> Tenant:
    data_center = site.flavor == "data-center"
    return Tenant(
        id=1,
        client_key=site.client_key,
        base_url=base_url or site.base_url,
        display_url=None,
        status=TenantStatus.INSTALLED,
        installed_at=datetime(2026, 1, 1, tzinfo=UTC),
        shared_secret=None,
        transport="webhook",
        site_credential=PersonalAccessToken(PAT) if data_center else ApiToken(
            "admin@example.com", TOKEN
        ),
        flavor=JiraFlavor.DATA_CENTER if data_center else JiraFlavor.CLOUD,
    )


@pytest.fixture
async def make_api() -> AsyncIterator[MakeApi]:
    clients = []

    def build(settings: Settings, resolver: object = None) -> HttpJiraApi:
        client = jira_http_client(settings, resolver=resolver)  # type: ignore[arg-type]
        clients.append(client)
        return HttpJiraApi(client, settings)

    yield build
    for client in clients:
        await client.aclose()


def settings_for(hosts: str) -> Settings:
    return a_settings(jira_hosts=hosts, http_timeout_seconds="2")


async def test_8_1_a_named_loopback_site_is_reached(
    make_api: MakeApi, jira: FakeJira, site: FakeJiraSite
) -> None:
    api = make_api(settings_for("http://127.0.0.1:*"))
    issue = await api.get_issue(tenant_of(site), "ABC-1")
    assert issue is not None and jira.requests[-1].verified


async def test_8_1_a_base_url_the_host_patterns_no_longer_allow_sends_nothing(
    make_api: MakeApi, jira: FakeJira, site: FakeJiraSite
) -> None:
    api = make_api(settings_for("https://*.atlassian.net,https://jira.corp.example"))
    with pytest.raises(UpstreamFailed) as raised:
        await api.get_issue(tenant_of(site), "ABC-1")
    assert "not an allowed host" in raised.value.detail
    assert jira.requests == [] and jira.connections == 0


async def test_8_1_a_redirect_is_not_followed_and_its_target_gets_nothing(
    make_api: MakeApi, jira: FakeJira, site: FakeJiraSite
) -> None:
    api = make_api(settings_for("http://127.0.0.1:*"))
    site.reply("issue", Reply.redirect(f"{jira.url}/elsewhere"))
    with pytest.raises(UpstreamFailed) as raised:
        await api.get_issue(tenant_of(site), "ABC-1")
    assert isinstance(raised.value, UpstreamFailed) and raised.value.status == 302
    assert [r.raw_path for r in jira.requests] == [
        f"{site.base_path}/rest/api/{'2' if site.flavor == 'data-center' else '3'}/issue/ABC-1"
    ]


async def test_8_1_a_wildcard_named_host_resolving_to_a_private_address_is_refused(
    make_api: MakeApi, jira: FakeJira, site: FakeJiraSite
) -> None:
    api = make_api(
        settings_for("http://*.corp.example:*"),
        resolver_of({"jira.corp.example": ["127.0.0.1"]}),
    )
    base_url = f"http://jira.corp.example:{jira.port}{site.base_path}"
    with pytest.raises(UpstreamFailed):
        await api.get_issue(tenant_of(site, base_url), "ABC-1")
    assert jira.requests == [] and jira.connections == 0


async def test_8_1_an_exact_pattern_lets_a_data_center_host_resolve_privately(
    make_api: MakeApi, jira: FakeJira, site: FakeJiraSite
) -> None:
    api = make_api(
        settings_for(f"http://jira.corp.example:{jira.port}"),
        resolver_of({"jira.corp.example": ["127.0.0.1"]}),
    )
    base_url = f"http://jira.corp.example:{jira.port}{site.base_path}"
    issue = await api.get_issue(tenant_of(site, base_url), "ABC-1")
    assert issue is not None and jira.connections == 1
