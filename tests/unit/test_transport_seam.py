"""§8.0 the transport seam: the issue-update use case takes a verified site, never a request.

A second, test-only transport (a header naming the site's client key: fine for a test, never
for a server) drives the whole story on the in-memory fakes: verify → acknowledge → worker →
Sentry write → journal. Nothing of Connect is involved.
"""

from __future__ import annotations

import json

from tests.support.sync_world import SyncWorld, issue_updated, status_item

from core.issue_update.acknowledge import Acknowledgement, acknowledge_issue_update
from core.model.errors import Unauthorized
from core.model.tenant import VerifiedSite
from ports.tenants import TenantLookup

SITE_HEADER = "x-test-site"


async def verify_test_site(headers: dict[str, str], *, tenants: TenantLookup) -> VerifiedSite:
    tenant = await tenants.by_client_key(headers.get(SITE_HEADER, ""))
    if tenant is None or not tenant.is_installed:
        raise Unauthorized("unknown site")
    return VerifiedSite(tenant)


async def test_a_test_only_transport_drives_the_issue_update_story_to_sentry() -> None:
    world = SyncWorld()
    tenant = await world.a_tenant("site-on-the-test-transport")
    await world.bind(tenant, "acme", issues={"APP-123": ["4242"]})
    raw = json.dumps(issue_updated(status_item())).encode()

    site = await verify_test_site({SITE_HEADER: tenant.client_key}, tenants=world.tenants)
    ack = await acknowledge_issue_update(site, raw, webhook_id="seam-1", inbox=world.inbox,
                                         clock=world.clock)
    again = await acknowledge_issue_update(site, raw, webhook_id="seam-1", inbox=world.inbox,
                                           clock=world.clock)

    assert (ack, again) == (Acknowledgement("accepted", "seam-1"),
                            Acknowledgement("duplicate", "seam-1"))
    assert await world.run() == 1
    assert world.sentry.issue("acme", "4242").status == "resolved"
    assert [(c.org, c.target, c.payload) for c in world.sentry.updates()] == [
        ("acme", "4242", {"status": "resolved"})]
    journal = await world.sync.journal(tenant.id, limit=50)
    assert {(e.kind.value, e.outcome.value, e.delivery_id, e.issue_key) for e in journal} == {
        ("delivery", "duplicate", "seam-1", "APP-123"),
        ("status", "applied", "seam-1", "APP-123"),
    }

