"""W9 (issue #11 item 9): a duplicate delivery is a journal entry (kind `delivery`, outcome
`duplicate`, its delivery id and issue key) — written by the inbox in the same group commit
as the insert that found it — once per recorded delivery, for the fake and SQLite alike."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters.memory.inbox import MemoryInbox
from adapters.memory.sync_store import MemorySyncStore
from adapters.postgres.inbox import PgInbox
from adapters.postgres.sync_store import PgSyncStore
from adapters.sqlite.inbox import SqliteInbox
from adapters.sqlite.loop_connection import LoopConnection
from adapters.sqlite.sync_store import SqliteSyncStore
from adapters.wiring import open_database
from ports.inbox import Inbox, NewDelivery
from tests.support.builders import a_settings
from tests.support.pg_stores import a_pg_database

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def stores(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Inbox, MemorySyncStore | SqliteSyncStore | PgSyncStore]]:
    if request.param == "memory":
        inbox = MemoryInbox()
        yield inbox, MemorySyncStore(inbox)
        return
    if request.param == "postgres":
        async with a_pg_database(request) as pg:
            yield PgInbox(pg), PgSyncStore(pg)
        return
    database = open_database(a_settings(tmp_path))
    loop_connection = LoopConnection(database.path)
    try:
        yield SqliteInbox(database, loop_connection), SqliteSyncStore(database, loop_connection)
    finally:
        loop_connection.close()
        database.close()


def a_delivery(delivery_id: str = "d-1", tenant_id: int = 1, at: datetime = T0,
               issue_key: str = "APP-123") -> NewDelivery:
    return NewDelivery(tenant_id=tenant_id, delivery_id=delivery_id, issue_id="20417",
                       issue_key=issue_key, body=b"{}", received_at=at)


async def test_W9_a_duplicate_is_one_journal_entry_with_its_delivery_and_issue(
    stores: tuple[Inbox, MemorySyncStore | SqliteSyncStore | PgSyncStore],
) -> None:
    inbox, sync = stores
    assert await inbox.record(a_delivery()) is True
    assert await sync.journal(1) == []  # an accepted delivery is journalled by the worker
    assert await inbox.record(a_delivery(at=T0 + timedelta(seconds=5))) is False
    [entry] = await sync.journal(1)
    assert (entry.kind.value, entry.outcome.value) == ("delivery", "duplicate")
    assert (entry.delivery_id, entry.issue_key, entry.org) == ("d-1", "APP-123", None)
    assert entry.at == T0 + timedelta(seconds=5)
    assert entry.detail


async def test_W9_a_flood_of_copies_journals_one_entry_per_delivery(
    stores: tuple[Inbox, MemorySyncStore | SqliteSyncStore | PgSyncStore],
) -> None:
    inbox, sync = stores
    await inbox.record(a_delivery())
    results = await asyncio.gather(*(inbox.record(a_delivery()) for _ in range(50)))
    assert not any(results)
    for _ in range(20):
        await inbox.record(a_delivery())
    assert [e.outcome.value for e in await sync.journal(1, limit=500)] == ["duplicate"]
    assert await sync.journal(2) == []  # another tenant's journal stays empty


async def test_W9_concurrent_first_copies_journal_no_duplicate(
    stores: tuple[Inbox, MemorySyncStore | SqliteSyncStore | PgSyncStore],
) -> None:
    inbox, sync = stores
    results = await asyncio.gather(*(inbox.record(a_delivery()) for _ in range(20)))
    assert results.count(True) == 1
    assert [e.outcome.value for e in await sync.journal(1, limit=500)] == ["duplicate"]


async def test_W9_duplicate_entries_are_pruned_by_retention(
    stores: tuple[Inbox, MemorySyncStore | SqliteSyncStore | PgSyncStore],
) -> None:
    inbox, sync = stores
    await inbox.record(a_delivery())
    await inbox.record(a_delivery())
    assert len(await sync.journal(1)) == 1
    await sync.prune(T0 + timedelta(days=1))
    assert await sync.journal(1) == []
