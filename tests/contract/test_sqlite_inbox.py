"""SQLite inbox: W10 (locked → Unavailable, nothing half-written), two connections."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.sqlite.inbox import SqliteInbox
from adapters.sqlite.loop_connection import LoopConnection
from adapters.wiring import open_database
from core.model.errors import Unavailable
from ports.inbox import NewDelivery
from tests.support.builders import a_settings


def a_delivery(delivery_id: str = "d-1") -> NewDelivery:
    return NewDelivery(tenant_id=1, delivery_id=delivery_id, issue_id="1", issue_key="APP-1",
                       body=b"{}", received_at=datetime(2026, 3, 1, tzinfo=UTC))


async def test_W10_a_held_lock_gives_unavailable_and_the_delivery_is_accepted_afterwards(
    tmp_path: Path,
) -> None:
    database = open_database(a_settings(tmp_path))
    loop_connection = LoopConnection(database.path, busy_retry_seconds=0.2)
    inbox = SqliteInbox(database, loop_connection)
    locker = sqlite3.connect(database.path, isolation_level=None)
    try:
        locker.execute("BEGIN EXCLUSIVE")
        with pytest.raises(Unavailable) as err:
            await inbox.record(a_delivery())
        assert err.value.retry_after >= 1
        locker.execute("ROLLBACK")
        assert await inbox.record(a_delivery()) is True  # not a duplicate: nothing was written
    finally:
        locker.close()
        loop_connection.close()
        database.close()


async def test_W3_two_connections_racing_on_one_delivery_accept_it_once(tmp_path: Path) -> None:
    """Two processes' ack paths are two connections on one file: the unique key decides."""
    database = open_database(a_settings(tmp_path))
    first, second = LoopConnection(database.path), LoopConnection(database.path)
    inboxes = [SqliteInbox(database, first), SqliteInbox(database, second)]
    try:
        results = await asyncio.gather(
            *(inboxes[n % 2].record(a_delivery(f"d-{n // 2}")) for n in range(40)))
    finally:
        first.close()
        second.close()
        database.close()
    assert results.count(True) == 20


async def test_group_commit_keeps_one_bad_item_from_failing_the_others(tmp_path: Path) -> None:
    database = open_database(a_settings(tmp_path))
    loop_connection = LoopConnection(database.path)
    try:
        def bad(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO no_such_table VALUES (1)")

        inbox = SqliteInbox(database, loop_connection)
        good = inbox.record(a_delivery("good"))
        failing = loop_connection.write(bad)
        results = await asyncio.gather(good, failing, return_exceptions=True)
        assert results[0] is True
        assert isinstance(results[1], Exception)
    finally:
        loop_connection.close()
        database.close()
