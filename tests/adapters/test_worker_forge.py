"""§8.2 + W9: a Forge site's sync action waits for its app system token. With none (or an
expired one) the worker sends nothing to Jira, journals `retrying` with the reason, and once
a token arrived the retry applies the change. The real Jira adapter against the fake Jira
behind the Forge gateway (loopback); the rest of the world in memory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import attrs
import pytest

from adapters.outbound.jira import HttpJiraApi, jira_http_client
from adapters.outbound.jira_status_cache import CachingJiraApi, StatusCache
from core.model.forge import SystemToken
from core.model.tenant import FORGE, Tenant, TenantStatus
from tests.support.builders import a_settings
from tests.support.fake_jira import FakeJira
from tests.support.forge import INSTALLATION_ID
from tests.support.sync_world import T0, SyncWorld, issue_updated, status_item

SYSTEM = "forge-app-system-token-for-the-worker-0123"


@pytest.fixture
async def world() -> AsyncIterator[tuple[SyncWorld, FakeJira, Tenant]]:
    with FakeJira("sentry-jira.test", clock=lambda: T0.timestamp()) as jira:
        site = jira.add_forge_site("forge-1", SYSTEM)
        settings = a_settings(forge_api_hosts="http://127.0.0.1:*", http_timeout_seconds="2")
        world = SyncWorld(max_attempts=4, retry_base_seconds=1)
        tenant = world.tenants.save(Tenant(
            id=world.tenants.allocate_id(), client_key="forge-site:x", base_url=site.base_url,
            display_url=None, status=TenantStatus.INSTALLED,
            installed_at=T0 - timedelta(hours=1), shared_secret=None, transport=FORGE,
            installation_id=INSTALLATION_ID))
        async with jira_http_client(settings) as client:
            api = HttpJiraApi(client, settings, clock=world.clock)
            world.ports = attrs.evolve(world.ports,
                                       jira=CachingJiraApi(api, StatusCache(world.clock)))
            yield world, jira, tenant


async def test_W9_8_2_no_system_token_waits_journals_why_then_applies(
        world: tuple[SyncWorld, FakeJira, Tenant]) -> None:
    sync, jira, tenant = world
    await sync.bind(tenant, "acme", issues={"APP-123": ["4711"]})
    await sync.deliver(tenant, issue_updated(status_item()))
    assert await sync.run() == 1
    entries = await sync.journal(tenant)
    assert [(kind, outcome) for kind, outcome, _, _ in entries] == [("delivery", "retrying")]
    assert "no unexpired Forge system token" in entries[0][3]
    assert jira.requests == []  # nothing sent without a token
    assert sync.sentry.issue("acme", "4711").status == "unresolved"

    # The next Forge call brought a token: the retry reads Jira's statuses and resolves.
    sync.tenants.save(attrs.evolve(tenant, system_token=SystemToken(
        SYSTEM, T0 + timedelta(hours=2))))
    sync.clock.advance(3600)
    await sync.run()
    outcomes = [(kind, outcome) for kind, outcome, _, _ in await sync.journal(tenant)]
    assert outcomes[-1] == ("status", "applied")
    assert all(r.verified and r.principal == "forge-app" for r in jira.requests)
    assert sync.sentry.issue("acme", "4711").status == "resolved"
