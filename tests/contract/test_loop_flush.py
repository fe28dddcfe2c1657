"""W3/W10 the event-loop connection's group commit, flushed from a plain `call_soon` callback
(forgeack, #14): writes queued in one loop turn share one transaction; a database busy at
flush time hands the batch to a retry coroutine, which commits it once the lock is gone (or
answers 503 after the deadline: tests/contract/test_sqlite_inbox.py)."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from adapters.sqlite.inbox import SqliteInbox
from adapters.sqlite.loop_connection import LoopConnection
from adapters.wiring import open_database
from ports.inbox import NewDelivery
from tests.support.builders import a_settings


def a_delivery(delivery_id: str) -> NewDelivery:
    return NewDelivery(tenant_id=1, delivery_id=delivery_id, issue_id=delivery_id,
                       issue_key="APP-1", body=b"{}", received_at=datetime(2026, 3, 1, tzinfo=UTC))


async def test_W3_writes_queued_in_one_turn_share_one_transaction(tmp_path: Path) -> None:
    database = open_database(a_settings(tmp_path))
    loop_connection = LoopConnection(database.path)
    transactions: list[int] = []
    try:
        def note(conn: sqlite3.Connection) -> int:
            # One id per transaction: the savepoint-free batch runs inside one BEGIN.
            return int(conn.execute("SELECT count(*) FROM deliveries").fetchone()[0])

        async def noted() -> int:
            return await loop_connection.write(note)

        inbox = SqliteInbox(database, loop_connection)
        first = await asyncio.gather(*(inbox.record(a_delivery(f"a-{n}")) for n in range(10)),
                                     noted())
        assert first[:10] == [True] * 10
        transactions.append(first[10])
        assert transactions == [10]  # the count seen inside the same transaction: all ten in
    finally:
        loop_connection.close()
        database.close()


async def test_W10_a_write_queued_while_the_database_is_busy_lands_after_the_lock_goes(
        tmp_path: Path) -> None:
    database = open_database(a_settings(tmp_path))
    loop_connection = LoopConnection(database.path, busy_retry_seconds=2.0)
    locker = sqlite3.connect(database.path, isolation_level=None)
    try:
        inbox = SqliteInbox(database, loop_connection)
        locker.execute("BEGIN IMMEDIATE")
        pending = asyncio.gather(*(inbox.record(a_delivery(f"b-{n}")) for n in range(5)))
        await asyncio.sleep(0.05)  # the flush found the lock held: its retry waits
        assert not pending.done()
        locker.execute("ROLLBACK")
        assert await asyncio.wait_for(pending, timeout=2) == [True] * 5
        assert (await inbox.stats(datetime(2026, 3, 1, tzinfo=UTC))).pending == 5
    finally:
        locker.close()
        loop_connection.close()
        database.close()
