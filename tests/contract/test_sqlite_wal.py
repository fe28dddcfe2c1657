"""Issue #11 item 7: the WAL is kept in check — `journal_size_limit` on every connection, and
the hourly retention prune checkpoints with TRUNCATE, so the file shrinks back to nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from adapters.sqlite.database import WAL_SIZE_LIMIT
from adapters.sqlite.inbox import SqliteInbox
from adapters.sqlite.loop_connection import LoopConnection
from adapters.sqlite.sync_store import SqliteSyncStore
from adapters.wiring import open_database
from ports.inbox import NewDelivery
from tests.support.builders import a_settings

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def test_journal_size_limit_is_set_on_the_storage_and_the_loop_connections(
    tmp_path: Path,
) -> None:
    database = open_database(a_settings(tmp_path))
    loop_connection = LoopConnection(database.path)
    try:
        [(limit,)] = await database.read(
            lambda db: db.execute("PRAGMA journal_size_limit").fetchall())
        assert limit == WAL_SIZE_LIMIT
        assert await loop_connection.read("PRAGMA journal_size_limit") == [(WAL_SIZE_LIMIT,)]
        assert 0 < WAL_SIZE_LIMIT <= 256 * 1024 * 1024
    finally:
        loop_connection.close()
        database.close()


async def test_the_retention_prune_truncates_the_wal(tmp_path: Path) -> None:
    database = open_database(a_settings(tmp_path))
    loop_connection = LoopConnection(database.path)
    wal = Path(str(database.path) + "-wal")
    try:
        inbox = SqliteInbox(database, loop_connection)
        sync = SqliteSyncStore(database, loop_connection)
        for n in range(400):  # the loop connection never checkpoints: the WAL grows
            await inbox.record(NewDelivery(
                tenant_id=1, delivery_id=f"d-{n}", issue_id=str(n), issue_key=f"APP-{n}",
                body=b"x" * 4000, received_at=T0))
        grown = wal.stat().st_size
        assert grown > 1_000_000
        await sync.prune(T0 - timedelta(days=30))  # nothing old enough: only the checkpoint
        assert wal.stat().st_size == 0
        assert (await inbox.stats(T0)).pending == 400  # nothing lost by truncating
    finally:
        loop_connection.close()
        database.close()
