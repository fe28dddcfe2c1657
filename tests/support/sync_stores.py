"""The sync state's three interfaces over one store, for the contract suites of `SyncStore`
(ports/sync_store.py), `Journal` (ports/journal.py) and `WorkerUpkeep` (adapters/worker.py):
the memory fake, SQLite, SQLite writing on the event loop's connection, and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

from adapters.memory.inbox import MemoryInbox
from adapters.memory.sync_store import MemorySyncStore
from adapters.postgres.inbox import PgInbox
from adapters.postgres.sync_store import PgSyncStore
from adapters.sqlite.inbox import SqliteInbox
from adapters.sqlite.loop_connection import LoopConnection
from adapters.sqlite.sync_store import SqliteSyncStore
from adapters.wiring import open_database
from adapters.worker import WorkerUpkeep
from core.model.sync import Kind, Outcome, Watermark, WatermarkKey
from ports.inbox import ClaimedDelivery, Inbox, NewDelivery
from ports.journal import Journal
from ports.sync_store import JournalEntry, NewAction, SyncStore
from tests.support.builders import a_settings
from tests.support.pg_stores import a_pg_database

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
KEY = WatermarkKey(1, "20417", "acme", Kind.STATUS)
STORE_KINDS = ["memory", "sqlite", "sqlite-on-the-loop", "postgres"]


@attrs.define
class Stores:
    """An inbox and the sync store over it, seen through each interface it implements."""

    inbox: Inbox
    sync: SyncStore
    journal: Journal
    upkeep: WorkerUpkeep


@asynccontextmanager
async def open_stores(kind: str, tmp_path: Path,
                      request: pytest.FixtureRequest | None = None) -> AsyncIterator[Stores]:
    if kind == "memory":
        inbox = MemoryInbox()
        store = MemorySyncStore(inbox)
        yield Stores(inbox, store, store, store)
        return
    if kind == "postgres":
        assert request is not None, "the postgres stores need the test's fixtures"
        async with a_pg_database(request) as pg:
            pg_store = PgSyncStore(pg)
            yield Stores(PgInbox(pg), pg_store, pg_store, pg_store)
        return
    database = open_database(a_settings(tmp_path))
    loop_connection = LoopConnection(database.path)
    on_loop = loop_connection if kind == "sqlite-on-the-loop" else None
    try:
        sqlite = SqliteSyncStore(database, on_loop)
        yield Stores(SqliteInbox(database, loop_connection), sqlite, sqlite, sqlite)
    finally:
        loop_connection.close()
        database.close()


async def a_claimed(stores: Stores, delivery_id: str = "d-1", *, at: datetime = T0,
                    issue_id: str = "20417", owner: str = "w1") -> ClaimedDelivery:
    await stores.inbox.record(NewDelivery(tenant_id=1, delivery_id=delivery_id,
                                          issue_id=issue_id, issue_key="APP-1", body=b"{}",
                                          received_at=at))
    [claimed] = await stores.inbox.claim(owner, now=at, lease_seconds=30)
    return claimed


def an_entry(outcome: Outcome = Outcome.APPLIED, *, at: datetime = T0, issue_key: str = "APP-1",
             detail: str = "why", delivery_id: str = "d-1") -> JournalEntry:
    return JournalEntry(at=at, tenant_id=1, delivery_id=delivery_id, issue_key=issue_key,
                        org="acme", kind=Kind.STATUS, outcome=outcome, detail=detail)


def a_write(sentry_issue_id: str = "4711") -> NewAction:
    record: dict[str, Any] = {"org": "acme", "sentry_issue_id": sentry_issue_id,
                              "payload": {"status": "resolved"}}
    return NewAction(Kind.STATUS, "acme", record)


def mark(seconds: int, delivery_id: str = "d-1") -> Watermark:
    return Watermark(updated=T0 + timedelta(seconds=seconds), delivery_id=delivery_id)
