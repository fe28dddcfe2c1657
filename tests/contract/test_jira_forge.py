"""§8.2 outbound: the Jira port's Forge authentication against a fake Jira at `apiBaseUrl`
that checks the app system token on every call. `Bearer <system token>` to
`{apiBaseUrl}/rest/api/3/…`; no unexpired token → UpstreamNotReady (search 503, the worker
retries) with nothing sent; Jira's 401 drops the token; 401/403 within 10 minutes of the
install are transient; the Forge API host patterns are re-checked before every call."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

from adapters.memory.clock import FixedClock
from adapters.memory.forge import MemoryForgeSites
from adapters.memory.tenants import MemoryTenantStore
from adapters.outbound.jira import HttpJiraApi, jira_http_client
from core.model.errors import UpstreamFailed, UpstreamNotReady, UpstreamRefused
from core.model.forge import SystemToken
from core.model.tenant import FORGE, Tenant, TenantStatus
from tests.support.builders import a_settings
from tests.support.fake_jira import FakeJira, FakeJiraSite, Reply
from tests.support.forge import INSTALLATION_ID

NOW = datetime(2026, 12, 5, 3, 0, tzinfo=UTC)
SYSTEM = "forge-app-system-token-0123456789abcdef"


@pytest.fixture
def jira() -> Iterator[FakeJira]:
    with FakeJira("sentry-jira.test", clock=lambda: NOW.timestamp()) as server:
        yield server


@pytest.fixture
def site(jira: FakeJira) -> FakeJiraSite:
    site = jira.add_forge_site("forge-1", SYSTEM)
    site.add_issue("ABC-1", "Crash on start")
    return site


def forge_tenant(site: FakeJiraSite, *, token: str | None = SYSTEM,
                 expires: datetime = NOW + timedelta(hours=1),
                 installed_at: datetime = NOW - timedelta(hours=1)) -> Tenant:
    return Tenant(id=1, client_key="forge-site:x", base_url=site.base_url, display_url=None,
                  status=TenantStatus.INSTALLED, installed_at=installed_at, shared_secret=None,
                  transport=FORGE, installation_id=INSTALLATION_ID,
                  system_token=None if token is None else SystemToken(token, expires))


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[Any]:
    settings = a_settings(forge_api_hosts="http://127.0.0.1:*", jira_hosts="https://*.atlassian.net",
                          http_timeout_seconds="2")
    tenants = MemoryTenantStore()
    sites = MemoryForgeSites(tenants)
    async with jira_http_client(settings) as client:
        yield HttpJiraApi(client, settings, clock=FixedClock(NOW), forge_sites=sites), tenants


async def test_8_2_calls_carry_the_system_token_to_the_api_base_url(
        world: Any, site: FakeJiraSite, jira: FakeJira) -> None:
    api, _ = world
    issue = await api.get_issue(forge_tenant(site), "ABC-1")
    assert issue is not None and issue.summary == "Crash on start"
    [request] = jira.requests
    assert request.raw_path == f"{site.base_path}/rest/api/3/issue/ABC-1"
    assert request.headers["authorization"] == f"Bearer {SYSTEM}"
    assert request.verified and request.principal == "forge-app"
    assert await api.statuses(forge_tenant(site))  # /rest/api/2/status through the gateway


@pytest.mark.parametrize("token", [None, "expired"])
async def test_8_2_no_unexpired_token_waits_and_sends_nothing(
        world: Any, site: FakeJiraSite, jira: FakeJira, token: str | None) -> None:
    api, _ = world
    tenant = forge_tenant(site, token=None if token is None else SYSTEM,
                          expires=NOW - timedelta(seconds=1))
    with pytest.raises(UpstreamNotReady) as waiting:
        await api.search_issues(tenant, 'text ~ "crash"')
    assert waiting.value.retry_after > 0
    assert jira.requests == [] and jira.connections == 0


async def test_8_2_a_token_jira_refuses_with_401_is_dropped(
        world: Any, site: FakeJiraSite, jira: FakeJira) -> None:
    api, tenants = world
    stored = tenants.save(forge_tenant(site, token="revoked-token-0123456789"))
    with pytest.raises(UpstreamRefused):
        await api.get_issue(stored, "ABC-1")
    assert jira.requests[-1].status == 401
    assert (await tenants.get(stored.id)).system_token is None


async def test_8_2_401_or_403_within_10_minutes_of_the_install_are_transient(
        world: Any, site: FakeJiraSite) -> None:
    api, tenants = world
    fresh = tenants.save(forge_tenant(site, installed_at=NOW - timedelta(minutes=9)))
    site.reply("issue", Reply.status_only(403))
    with pytest.raises(UpstreamNotReady):
        await api.get_issue(fresh, "ABC-1")
    later = forge_tenant(site, installed_at=NOW - timedelta(minutes=11))
    with pytest.raises(UpstreamRefused):
        await api.get_issue(later, "ABC-1")
    assert (await tenants.get(fresh.id)).system_token is not None  # a 403 drops nothing


async def test_8_2_an_api_base_url_outside_the_forge_patterns_sends_nothing(
        world: Any, site: FakeJiraSite, jira: FakeJira) -> None:
    api, _ = world
    moved = forge_tenant(site)
    for base_url in ("https://acme.atlassian.net", "http://localhost:1/ex/jira/x"):
        with pytest.raises(UpstreamFailed):
            await api.get_issue(attrs.evolve(moved, base_url=base_url), "ABC-1")
    assert jira.requests == []


async def test_8_2_user_email_uses_the_apps_endpoint(world: Any, site: FakeJiraSite,
                                                     jira: FakeJira) -> None:
    api, _ = world
    site.emails["acc-1"] = "dev@example.com"
    assert await api.user_email(forge_tenant(site), "acc-1") == "dev@example.com"
    assert jira.requests[-1].raw_path.endswith("/rest/api/3/user/email")
