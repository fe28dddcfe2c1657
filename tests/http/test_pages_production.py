"""§10 page rules through the production composition (`bootstrap`): SQLite stores, the
loop's tenant lookup (with its data_version cache) and the real Sentry client — and the same
on PostgreSQL (§9: its stores and its per-request tenant lookup).

`tests/http/test_pages.py` runs the pages on in-memory fakes; this file checks that the
stores the served app really uses keep the page rules: only this site's dead letters, another
site's retry → 404, an uninstall or a rotation seen at once by the next request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from adapters.http.app import create_app
from adapters.memory.clock import FixedClock
from adapters.postgres.database import PgDatabase
from adapters.postgres.inbox import PgInbox
from adapters.postgres.sync_store import PgSyncStore
from adapters.postgres.tenants import PgTenantStore
from adapters.sqlite.inbox import SqliteInbox
from adapters.sqlite.loop_connection import LoopConnection
from adapters.sqlite.sync_store import SqliteSyncStore
from adapters.wiring import Container, bootstrap
from core.connect.pages import mint_action_token
from core.describe import CONFIGURE_PATH
from core.model.sync import Kind, Outcome
from core.model.tenant import Installation, Tenant
from ports.inbox import Inbox, NewDelivery
from ports.sync_store import JournalEntry, NewAction
from ports.tenants import TenantStore
from tests.support.builders import a_settings
from tests.support.fake_sentry import FakeSentry
from tests.support.pages import ADMIN_ACCOUNT, context_token, signed_page_url

CLIENT, SECRET = "prod-site-a", "prod-site-a-secret-0123456789-abcdefghijklmnopqrstuvw"
OTHER, OTHER_SECRET = "prod-site-b", "prod-site-b-secret-0123456789-abcdefghijklmnopqrstuvw"


@attrs.define
class Served:
    client: AsyncTestClient[Litestar]
    container: Container
    clock: FixedClock
    site: Tenant
    other: Tenant
    # The test's own stores on the same database (the app's loop connection, or its pool,
    # belongs to the app's thread and loop): what the served app stored is read back
    # through them.
    inbox: Inbox
    sync: Any
    tenants: TenantStore

    def page(self, secret: str = SECRET) -> str:
        return signed_page_url(client_key=CLIENT, secret=secret, now=self.clock.now(),
                               path=CONFIGURE_PATH)

    def headers(self, secret: str = SECRET, action: str | None = None) -> dict[str, str]:
        now = self.clock.now()
        return {"Content-Type": "application/json",
                "Authorization": "JWT " + context_token(client_key=CLIENT, secret=secret,
                                                        now=now),
                "X-Action-Token": action or mint_action_token(self.site, ADMIN_ACCOUNT, now)}

    async def dead_letter(self, tenant: Tenant, error: str) -> int:
        sync, inbox, now = self.sync, self.inbox, self.clock.now()
        await inbox.record(NewDelivery(tenant_id=tenant.id, delivery_id=f"d-{tenant.id}",
                                       issue_id="10001", issue_key="APP-1", body=b"{}",
                                       received_at=now))
        [claimed] = await inbox.claim("w", now=now, lease_seconds=30)
        [action] = await sync.save_plan(
            claimed, actions=[NewAction(Kind.STATUS, "acme", {"sentry_issue_id": "1"})],
            entries=[], advances=[], at=now)
        entry = JournalEntry(at=now, tenant_id=tenant.id, delivery_id=claimed.delivery_id,
                             issue_key="APP-1", org="acme", kind=Kind.STATUS,
                             outcome=Outcome.DEAD, detail=error)
        await sync.bury(action.id, entry=entry, error=error, at=now)
        await sync.settle(claimed.id, "w")
        return action.id


@pytest.fixture(params=["sqlite", "postgres"])
async def served(request: pytest.FixtureRequest, tmp_path: Path,
                 fake_sentry: FakeSentry) -> AsyncIterator[Served]:
    engine: dict[str, Any] = {}
    if request.param == "postgres":
        engine["database"] = request.getfixturevalue("postgres_url")
    container = bootstrap(a_settings(tmp_path, **engine, worker="false",
                                     sentry_hosts="http://127.0.0.1:*"))
    clock = FixedClock(datetime.now(UTC).replace(microsecond=0))
    container.clock = clock
    mine: LoopConnection | None = None
    own: PgDatabase | None = None
    inbox: Inbox
    if container.pg_database is not None:
        own = PgDatabase(container.pg_database.conninfo, container.pg_database.box)
        tenants: TenantStore = PgTenantStore(own)
        inbox, sync = PgInbox(own), PgSyncStore(own)
    else:
        assert container.database is not None
        mine = LoopConnection(container.database.path)
        tenants = container.tenants
        inbox = SqliteInbox(container.database, mine)
        sync = SqliteSyncStore(container.database, mine)
    try:
        site = await tenants.upsert_installed(Installation(
            client_key=CLIENT, shared_secret=SECRET, base_url="https://a.atlassian.net",
            display_url=None, installed_at=clock.now()))
        other = await tenants.upsert_installed(Installation(
            client_key=OTHER, shared_secret=OTHER_SECRET, base_url="https://b.atlassian.net",
            display_url=None, installed_at=clock.now()))
        async with AsyncTestClient(app=create_app(container)) as client:
            yield Served(client, container, clock, site, other, inbox, sync, tenants)
    finally:
        if mine is not None:
            mine.close()
        if own is not None:
            await own.aclose()
        container.close()


async def test_section10_served_stores_show_and_retry_only_this_sites_dead_letters(
    served: Served, fake_sentry: FakeSentry
) -> None:
    own = await served.dead_letter(served.site, "own-site-failure")
    foreign = await served.dead_letter(served.other, "other-site-failure")
    page = await served.client.get(served.page())
    assert page.status_code == 200, page.text
    assert "own-site-failure" in page.text and "other-site-failure" not in page.text
    refused = await served.client.post(f"{CONFIGURE_PATH}dead-letters/{foreign}/retry/",
                                       json={}, headers=served.headers())
    assert refused.status_code == 404
    journal = served.sync
    assert {d.id for d in await journal.dead_letters()} == {own, foreign}
    accepted = await served.client.post(f"{CONFIGURE_PATH}dead-letters/{own}/retry/",
                                        json={}, headers=served.headers())
    assert accepted.status_code == 202, accepted.text
    assert [d.id for d in await journal.dead_letters()] == [foreign]
    assert fake_sentry.requests == []


async def test_section10_served_lookup_sees_a_rotation_and_an_uninstall_at_once(
    served: Served, fake_sentry: FakeSentry
) -> None:
    """L4/L5 through the loop's cached tenant lookup: the next page load or POST after a
    rotation or an uninstall is judged by the stored secret, not a cached one."""
    letter = await served.dead_letter(served.site, "own-site-failure")
    old_page, old_action = served.page(), mint_action_token(served.site, ADMIN_ACCOUNT,
                                                            served.clock.now())
    assert (await served.client.get(old_page)).status_code == 200  # warms the lookup cache
    rotated = "prod-site-a-rotated-0123456789-abcdefghijklmnopqrstuvwxyz"
    await served.tenants.upsert_installed(Installation(
        client_key=CLIENT, shared_secret=rotated, base_url="https://a.atlassian.net",
        display_url=None, installed_at=served.clock.now()))
    assert (await served.client.get(old_page)).status_code == 401
    retry = f"{CONFIGURE_PATH}dead-letters/{letter}/retry/"
    stale = await served.client.post(retry, json={},
                                     headers=served.headers(rotated, action=old_action))
    assert stale.status_code == 403
    assert (await served.client.get(served.page(rotated))).status_code == 200
    await served.tenants.mark_uninstalled(CLIENT)
    assert (await served.client.get(served.page(rotated))).status_code == 401
    gone = await served.client.post(retry, json={}, headers=served.headers(rotated))
    assert gone.status_code == 401
    journal = served.sync
    assert [d.id for d in await journal.dead_letters()] == [letter]
    assert fake_sentry.requests == []


@pytest.mark.parametrize("iss", [CLIENT.upper(), CLIENT[:-1], CLIENT + "%", CLIENT + " "])
async def test_section10_served_lookup_matches_the_client_key_exactly(
    served: Served, iss: str
) -> None:
    """§4.2 through SQLite: `iss` names a site byte for byte (no case folding, no prefix, no
    LIKE pattern), even when the token is signed with that site's real secret."""
    url = signed_page_url(client_key=iss, secret=SECRET, now=served.clock.now(),
                          path=CONFIGURE_PATH)
    assert (await served.client.get(url)).status_code == 401
