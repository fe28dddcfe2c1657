"""How many round trips the worker makes to PostgreSQL per delivery (#16, §9, W5–W9).

The sync world of tests/support/sync_world.py on the real PostgreSQL stores (memory fakes for
Jira and Sentry: only the database is counted). Deliveries are claimed and processed as the
worker does it (`Inbox.claim`, then `process_delivery` for each); every statement, BEGIN and
COMMIT this process sends is counted (tests/support/pg_round_trips.py).

Before #16 a synced status took 24 round trips (5 of them the claim); the plan, the outcome
and the settle now are one statement each, without a BEGIN/COMMIT around them: 14.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from adapters.postgres.database import PgDatabase
from adapters.postgres.inbox import PgInbox
from adapters.postgres.sync_store import PgSyncStore
from adapters.postgres.tenants import PgTenantStore
from adapters.wiring import pg_admin_stores
from core.issue_update.process import SyncPorts, process_delivery
from core.model.tenant import Tenant
from tests.support.pg_round_trips import RoundTrips, counting_round_trips
from tests.support.pg_stores import a_pg_database
from tests.support.sync_world import (
    DONE,
    IN_PROGRESS,
    PROJECT,
    SyncWorld,
    assignee_item,
    issue_updated,
    status_item,
)

# A claim of one delivery: BEGIN, the window scan, the per-issue lock, the lease, COMMIT
# (adapters/postgres/inbox.py, not changed by #16).
CLAIM = 5
STATUS_MAP = {PROJECT: {"resolve": [DONE], "unresolve": [IN_PROGRESS]}}


@pytest.fixture
async def world(request: pytest.FixtureRequest) -> AsyncIterator[SyncWorld]:
    async with a_pg_database(request) as pg:
        yield on_postgres(SyncWorld(), pg)


def on_postgres(world: SyncWorld, pg: PgDatabase) -> SyncWorld:
    """The world's stores replaced by the PostgreSQL ones (Jira and Sentry stay fakes)."""
    admin = pg_admin_stores(pg)
    world.inbox = PgInbox(pg)  # type: ignore[assignment]
    world.sync = PgSyncStore(pg)  # type: ignore[assignment]
    world.tenants = PgTenantStore(pg)  # type: ignore[assignment]
    world.bindings = admin.bindings  # type: ignore[assignment]
    world.links = admin.links  # type: ignore[assignment]
    world.accounts = admin.accounts  # type: ignore[assignment]
    world.ports = SyncPorts(inbox=world.inbox, sync=world.sync, journal=world.sync,
                            tenants=world.tenants, bindings=world.bindings, links=world.links,
                            accounts=world.accounts, sentry=world.sentry,
                            jira=world.ports.jira, clock=world.clock)
    return world


async def claim_and_process(world: SyncWorld) -> tuple[int, RoundTrips, RoundTrips]:
    """(deliveries, the claim's round trips, the processing's round trips)."""
    with counting_round_trips() as claiming:
        claimed = await world.claim()
    with counting_round_trips() as processing:
        for delivery in claimed:
            assert await process_delivery(delivery, owner="w1", ports=world.ports,
                                          settings=world.settings, jitter=lambda: 0.5) is None
    return len(claimed), claiming, processing


async def a_bound_tenant(world: SyncWorld, issues: int = 1) -> Tenant:
    tenant = await world.a_tenant()
    await world.bind(tenant, "acme", status_map=STATUS_MAP,
                     issues={f"APP-{n}": [str(4700 + n)] for n in range(issues)})
    await world.claim()  # the pool's first connection is made before counting
    return tenant


async def test_s9_a_synced_status_is_at_most_14_round_trips_claim_included(
    world: SyncWorld,
) -> None:
    """Claim 5, then: the plan read, tenant, bindings, links, watermarks (decide), the plan
    stored (1), the binding and watermark read again before the write (W6), and the outcome
    with the settle (1)."""
    tenant = await a_bound_tenant(world)
    await world.deliver(tenant, issue_updated(status_item(IN_PROGRESS, DONE), key="APP-0"))
    processed, claiming, seen = await claim_and_process(world)
    assert processed == 1
    assert len(claiming) == CLAIM
    assert len(seen) <= 9, "\n".join(seen.statements)  # before #16: 19
    assert world.sentry.issue("acme", "4700").status == "resolved"
    assert [(k, o) for k, o, _, _ in await world.journal(tenant)] == [("status", "applied")]
    assert (await world.inbox.stats(world.clock.now())).pending == 0


async def test_s9_a_batch_of_deliveries_stays_at_most_14_round_trips_each(
    world: SyncWorld,
) -> None:
    tenant = await a_bound_tenant(world, issues=5)
    for n in range(5):
        await world.deliver(tenant, issue_updated(status_item(IN_PROGRESS, DONE),
                                                  issue_id=str(30000 + n), key=f"APP-{n}"))
    processed, claiming, seen = await claim_and_process(world)
    assert processed == 5
    assert len(seen) <= 5 * 9, "\n".join(seen.statements)  # before #16: 95
    assert len(claiming) + len(seen) <= 5 * 14
    outcomes = [(k, o) for k, o, _, _ in await world.journal(tenant)]
    assert outcomes == [("status", "applied")] * 5


async def test_s9_an_ignored_delivery_is_at_most_5_round_trips_after_its_claim(
    world: SyncWorld,
) -> None:
    """No bound org: plan read, tenant, bindings, the final plan with its journal entry, and
    the settle — one statement each (before #16: 11)."""
    tenant = await world.a_tenant()
    await world.claim()
    await world.deliver(tenant, issue_updated(assignee_item()))
    processed, _, seen = await claim_and_process(world)
    assert processed == 1
    assert len(seen) <= 5, "\n".join(seen.statements)  # before #16: 11
    assert [(k, o) for k, o, _, _ in await world.journal(tenant)] == [("delivery", "ignored")]
    assert (await world.inbox.stats(world.clock.now())).pending == 0
