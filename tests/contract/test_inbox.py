"""One contract suite for every Inbox: record once (W3), claim with a lease, release, reclaim."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters.memory.inbox import MemoryInbox
from adapters.postgres.inbox import PgInbox
from adapters.sqlite.inbox import SqliteInbox
from adapters.sqlite.loop_connection import LoopConnection
from adapters.wiring import open_database
from ports.inbox import Inbox, NewDelivery
from tests.support.builders import a_settings
from tests.support.pg_stores import a_pg_database

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def inbox(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Inbox]:
    if request.param == "memory":
        yield MemoryInbox()
        return
    if request.param == "postgres":
        async with a_pg_database(request) as pg:
            yield PgInbox(pg)
        return
    database = open_database(a_settings(tmp_path))
    loop_connection = LoopConnection(database.path)
    try:
        yield SqliteInbox(database, loop_connection)
    finally:
        loop_connection.close()
        database.close()


def a_delivery(delivery_id: str = "d-1", tenant_id: int = 1, at: datetime = T0,
               body: bytes = b'{"x": 1}', issue_id: str = "20417") -> NewDelivery:
    return NewDelivery(tenant_id=tenant_id, delivery_id=delivery_id, issue_id=issue_id,
                       issue_key="APP-123", body=body, received_at=at)


async def test_W3_a_delivery_is_recorded_once_per_tenant(inbox: Inbox) -> None:
    assert await inbox.record(a_delivery()) is True
    assert await inbox.record(a_delivery()) is False
    assert await inbox.record(a_delivery(tenant_id=2)) is True  # another tenant's own id space
    assert (await inbox.stats(T0)).pending == 2


async def test_W3_concurrent_records_of_one_delivery_accept_exactly_one(inbox: Inbox) -> None:
    results = await asyncio.gather(*(inbox.record(a_delivery()) for _ in range(20)))
    assert results.count(True) == 1


async def test_claim_returns_the_recorded_body_and_leases_it(inbox: Inbox) -> None:
    await inbox.record(a_delivery(body=b'{"issue": "raw bytes kept"}'))
    [claimed] = await inbox.claim("w1", now=T0, lease_seconds=30)
    assert claimed.body == b'{"issue": "raw bytes kept"}'
    assert claimed.delivery_id == "d-1" and claimed.issue_key == "APP-123"
    assert claimed.attempts == 0
    assert claimed.claimed_until == T0 + timedelta(seconds=30)
    # Leased: nobody else gets it before the lease ends.
    assert await inbox.claim("w2", now=T0 + timedelta(seconds=29), lease_seconds=30) == []


async def test_an_expired_lease_is_reclaimed_by_another_worker(inbox: Inbox) -> None:
    await inbox.record(a_delivery())
    await inbox.claim("dead-worker", now=T0, lease_seconds=30)
    [again] = await inbox.claim("w2", now=T0 + timedelta(seconds=31), lease_seconds=30)
    assert again.attempts == 1
    # The dead worker's late release is refused: it no longer holds the lease.
    assert await inbox.release(again.id, "dead-worker", not_before=T0) is False
    assert await inbox.release(again.id, "w2", not_before=T0) is True


async def test_release_makes_it_due_again_at_not_before(inbox: Inbox) -> None:
    await inbox.record(a_delivery())
    [claimed] = await inbox.claim("w1", now=T0, lease_seconds=30)
    later = T0 + timedelta(seconds=10)
    assert await inbox.release(claimed.id, "w1", not_before=later) is True
    assert await inbox.claim("w1", now=T0 + timedelta(seconds=9), lease_seconds=30) == []
    [again] = await inbox.claim("w1", now=later, lease_seconds=30)
    assert again.id == claimed.id and again.attempts == 1


async def test_release_by_a_non_owner_is_refused(inbox: Inbox) -> None:
    await inbox.record(a_delivery())
    [claimed] = await inbox.claim("w1", now=T0, lease_seconds=30)
    assert await inbox.release(claimed.id, "w2", not_before=T0) is False


async def test_claims_come_oldest_first_and_respect_the_limit(inbox: Inbox) -> None:
    for n in range(5):
        await inbox.record(a_delivery(f"d-{n}", at=T0 + timedelta(seconds=n), issue_id=str(n)))
    claimed = await inbox.claim("w1", now=T0 + timedelta(minutes=1), lease_seconds=30, limit=3)
    assert [c.delivery_id for c in claimed] == ["d-0", "d-1", "d-2"]


async def test_W6_one_delivery_of_an_issue_is_leased_at_a_time(inbox: Inbox) -> None:
    await inbox.record(a_delivery("old", at=T0, issue_id="7"))
    await inbox.record(a_delivery("new", at=T0 + timedelta(seconds=1), issue_id="7"))
    await inbox.record(a_delivery("other", at=T0 + timedelta(seconds=2), issue_id="8"))
    await inbox.record(a_delivery("other-tenant", at=T0 + timedelta(seconds=3), tenant_id=2,
                                  issue_id="7"))
    now = T0 + timedelta(minutes=1)
    first = await inbox.claim("w1", now=now, lease_seconds=30, limit=10)
    assert [c.delivery_id for c in first] == ["old", "other", "other-tenant"]
    # While "old" is leased, no worker gets the newer delivery of the same issue.
    assert await inbox.claim("w2", now=now, lease_seconds=30, limit=10) == []
    # Given back (due in an hour), it no longer holds its issue: the newer delivery is next.
    assert await inbox.release(first[0].id, "w1", not_before=now + timedelta(hours=1)) is True
    [second] = await inbox.claim("w2", now=now, lease_seconds=30, limit=10)
    assert second.delivery_id == "new"


async def test_a_lease_is_renewed_only_by_its_holder(inbox: Inbox) -> None:
    await inbox.record(a_delivery())
    [claimed] = await inbox.claim("w1", now=T0, lease_seconds=30)
    assert await inbox.renew(claimed.id, "w2", now=T0 + timedelta(seconds=20),
                             lease_seconds=30) is False
    assert await inbox.renew(claimed.id, "w1", now=T0 + timedelta(seconds=20),
                             lease_seconds=30) is True
    # Renewed to T0+50: still held at T0+45, reclaimable after.
    assert await inbox.claim("w2", now=T0 + timedelta(seconds=45), lease_seconds=30) == []
    assert len(await inbox.claim("w2", now=T0 + timedelta(seconds=51), lease_seconds=30)) == 1
    assert await inbox.renew(claimed.id, "w1", now=T0 + timedelta(seconds=52),
                             lease_seconds=30) is False


async def test_stats_report_depth_and_oldest_pending_age(inbox: Inbox) -> None:
    assert (await inbox.stats(T0)).oldest_pending_seconds is None
    await inbox.record(a_delivery("a", at=T0))
    await inbox.record(a_delivery("b", at=T0 + timedelta(seconds=5)))
    stats = await inbox.stats(T0 + timedelta(seconds=65))
    assert stats.pending == 2
    assert stats.oldest_pending_seconds == pytest.approx(65)


async def test_W6_a_burst_on_one_leased_issue_does_not_hide_other_issues(inbox: Inbox) -> None:
    """More due deliveries of a busy issue than the claim looks at first (SQLite's window)
    still leave the other issues' deliveries claimable."""
    for n in range(300):
        await inbox.record(a_delivery(f"busy-{n}", at=T0 + timedelta(milliseconds=n),
                                      issue_id="1"))
    await inbox.record(a_delivery("other", at=T0 + timedelta(seconds=10), issue_id="2"))
    now = T0 + timedelta(minutes=1)
    [first] = await inbox.claim("w1", now=now, lease_seconds=30)
    assert first.delivery_id == "busy-0"
    found = await inbox.claim("w2", now=now, lease_seconds=30, limit=5)
    assert [c.delivery_id for c in found] == ["other"]
