"""§A journal and dead letters over HTTP: order of checks (404 off → 401 → 400 → 404), the
answers' shapes, the retry, and no secret in any answer."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from adapters.memory.inbox import MemoryInbox
from adapters.memory.sentry import MemorySentryApi
from adapters.memory.sync_store import MemorySyncStore
from core.issue_update.process import SyncPorts, process_delivery
from core.model.errors import SentryRejected
from core.model.tenant import Tenant
from ports.inbox import NewDelivery
from tests.support.admin_api import SENTRY_TOKEN, AdminApi, admin_api_for
from tests.support.builders import ADMIN_TOKEN, a_fake_container, a_settings
from tests.support.sync_world import issue_updated


@pytest.fixture
async def sync_api() -> AsyncIterator[AdminApi]:
    inbox = MemoryInbox()
    store = MemorySyncStore(inbox)
    container = a_fake_container(a_settings(admin_token=ADMIN_TOKEN), inbox=inbox,
                                 journal=store, upkeep=store)
    async for value in admin_api_for(container):
        yield value


async def sync_once(api: AdminApi, tenant: Tenant, body: dict[str, Any], delivery_id: str
                    ) -> None:
    """Record a delivery and process it with the container's ports."""
    c = api.container
    # The fake container's journal is the memory sync store, which is the SyncStore too.
    assert isinstance(c.journal, MemorySyncStore) and c.sentry is not None
    await c.inbox.record(NewDelivery(
        tenant_id=tenant.id, delivery_id=delivery_id, issue_id=body["issue"]["id"],
        issue_key=body["issue"]["key"], body=json.dumps(body).encode(),
        received_at=c.clock.now()))
    ports = SyncPorts(inbox=c.inbox, sync=c.journal, journal=c.journal, tenants=c.tenants,
                      bindings=c.admin.bindings,
                      links=c.admin.links, accounts=c.admin.accounts, sentry=c.sentry,
                      jira=c.jira, clock=c.clock)
    for claimed in await c.inbox.claim("test", now=c.clock.now(), lease_seconds=30, limit=10):
        await process_delivery(claimed, owner="test", ports=ports, settings=c.settings.app)


async def a_synced_tenant(api: AdminApi, *, reject: bool = False) -> Tenant:
    tenant = await api.a_bound_tenant("acme")
    sentry = api.container.sentry
    assert isinstance(sentry, MemorySentryApi)
    sentry.add_org("acme", SENTRY_TOKEN)
    for issue in ("1", "2"):
        sentry.add_issue("acme", issue)
    await api.call("PUT", f"/api/tenants/{tenant.id}/orgs/acme/links/APP-123",
                   {"sentry_issue_ids": ["1"]})
    await api.call("PUT", f"/api/tenants/{tenant.id}/orgs/acme/links/APP-7",
                   {"sentry_issue_ids": ["2"]})
    body = issue_updated(status_item_resolve(), issue_id="1", key="APP-123")
    body["issue"]["fields"]["project"] = {"id": "10000"}
    await api.call("PUT", f"/api/tenants/{tenant.id}/orgs/acme", {
        "status_map": {"10000": {"resolve": ["10101"]}}})
    if reject:
        sentry.fail(SentryRejected("Sentry refused the request (400)", status=400))
    await sync_once(api, tenant, body, "d-1")
    other = issue_updated(status_item_resolve(), issue_id="7", key="APP-7")
    await sync_once(api, tenant, other, "d-2")
    return tenant


def status_item_resolve() -> dict[str, Any]:
    return {"field": "status", "from": "3", "fromString": "In Progress", "to": "10101",
            "toString": "Done"}


async def test_A_the_journal_is_newest_first_with_reasons(sync_api: AdminApi) -> None:
    tenant = await a_synced_tenant(sync_api)
    response = await sync_api.call("GET", f"/api/tenants/{tenant.id}/journal")
    assert response.status_code == 200
    entries = response.json()
    assert [(e["delivery"], e["issue_key"]) for e in entries] == [
        ("d-2", "APP-7"), ("d-1", "APP-123")]
    first = entries[1]
    assert set(first) == {"at", "delivery", "issue_key", "org", "kind", "outcome", "detail"}
    assert (first["org"], first["kind"], first["outcome"]) == ("acme", "status", "applied")
    assert first["detail"].startswith("Sentry issue 1: Jira status In Progress (3) → Done")
    assert first["at"].endswith("Z")

    only = await sync_api.call("GET", f"/api/tenants/{tenant.id}/journal?issue_key=APP-123")
    assert [e["delivery"] for e in only.json()] == ["d-1"]
    limited = await sync_api.call("GET", f"/api/tenants/{tenant.id}/journal?limit=1")
    assert [e["delivery"] for e in limited.json()] == ["d-2"]


@pytest.mark.parametrize("query", [
    "?limit=0", "?limit=501", "?limit=ten", "?limit=-1", "?limit=1&limit=2",
    "?issue_key=app-1", "?issue_key=APP", "?issue_key=",
])
async def test_A_journal_bad_input_is_400(sync_api: AdminApi, query: str) -> None:
    tenant = await sync_api.a_tenant()
    response = await sync_api.call("GET", f"/api/tenants/{tenant.id}/journal{query}")
    assert response.status_code == 400, response.text
    assert "detail" in response.json()


async def test_A_journal_order_of_checks(sync_api: AdminApi) -> None:
    assert (await sync_api.call("GET", "/api/tenants/1/journal", token=None)).status_code == 401
    assert (await sync_api.call("GET", "/api/tenants/1/journal",
                                token="wrong-token-0123456789")).status_code == 401
    # 401 before 400: a bad id without a token is still 401.
    assert (await sync_api.call("GET", "/api/tenants/x/journal?limit=0",
                                token=None)).status_code == 401
    assert (await sync_api.call("GET", "/api/tenants/x/journal")).status_code == 400
    unknown = await sync_api.call("GET", "/api/tenants/999/journal")
    assert unknown.status_code == 404 and unknown.json() == {"detail": "no tenant 999"}


async def test_A_dead_letters_are_listed_and_retried(sync_api: AdminApi) -> None:
    tenant = await a_synced_tenant(sync_api, reject=True)
    response = await sync_api.call("GET", "/api/dead-letters")
    assert response.status_code == 200
    [letter] = response.json()
    assert set(letter) == {"id", "tenant_id", "org", "issue_key", "kind", "action", "attempts",
                           "last_error", "created_at"}
    assert (letter["tenant_id"], letter["org"], letter["issue_key"], letter["kind"]) == (
        tenant.id, "acme", "APP-123", "status")
    assert letter["attempts"] == 1 and "400" in letter["last_error"]
    assert letter["action"]["payload"] == {"status": "resolved"}

    retried = await sync_api.call("POST", f"/api/dead-letters/{letter['id']}/retry")
    assert retried.status_code == 202
    assert retried.json() == {"id": letter["id"], "status": "queued"}
    assert (await sync_api.call("GET", "/api/dead-letters")).json() == []
    # Retrying again: it is no longer a dead letter.
    again = await sync_api.call("POST", f"/api/dead-letters/{letter['id']}/retry")
    assert again.status_code == 404
    # The queued action is attempted by the next worker pass: applied now.
    await sync_once(sync_api, tenant, issue_updated(issue_id="99", key="APP-99"), "d-3")
    sentry = sync_api.container.sentry
    assert isinstance(sentry, MemorySentryApi)
    assert sentry.issue("acme", "1").status == "resolved"


async def test_A_dead_letter_order_of_checks(sync_api: AdminApi) -> None:
    assert (await sync_api.call("GET", "/api/dead-letters", token=None)).status_code == 401
    assert (await sync_api.call("POST", "/api/dead-letters/1/retry",
                                token=None)).status_code == 401
    assert (await sync_api.call("POST", "/api/dead-letters/x/retry",
                                token=None)).status_code == 401
    assert (await sync_api.call("POST", "/api/dead-letters/x/retry")).status_code == 400
    assert (await sync_api.call("GET", "/api/dead-letters?limit=0")).status_code == 400
    missing = await sync_api.call("POST", "/api/dead-letters/12345/retry")
    assert missing.status_code == 404 and missing.json() == {"detail": "no dead letter 12345"}


async def test_A_the_routes_are_404_when_the_admin_api_is_off() -> None:
    inbox = MemoryInbox()
    container = a_fake_container(a_settings(), inbox=inbox, journal=MemorySyncStore(inbox))
    async for api in admin_api_for(container):
        for method, path in (("GET", "/api/tenants/1/journal"), ("GET", "/api/dead-letters"),
                             ("POST", "/api/dead-letters/1/retry")):
            assert (await api.call(method, path)).status_code == 404
