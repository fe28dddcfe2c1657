"""Issue #11 item 7: the WAL is kept in check — `journal_size_limit` on every connection, and
the hourly retention prune checkpoints with TRUNCATE, so the file shrinks back to nothing.
Issue #15: under writes that never pause, the periodic checkpoint still lets the WAL start
over (PASSIVE passes, then RESTART)."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

from adapters.sqlite.database import RESTART_FRAMES, WAL_SIZE_LIMIT
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


async def test_the_wal_starts_over_under_writes_that_never_pause(tmp_path: Path) -> None:
    """SPEC §7 (ack p99), issue 15: with the hot path committing all the time, PASSIVE passes
    alone never catch up with the WAL's end, so SQLite never starts it over and it grows with
    every delivery. The periodic checkpoint ends with a RESTART: the WAL stays bounded by what
    is written between two checkpoints, and nothing written is lost."""
    database = open_database(a_settings(tmp_path))
    loop_connection = LoopConnection(database.path)
    wal = Path(str(database.path) + "-wal")
    written = 0
    stop = asyncio.Event()

    async def writer() -> None:  # the ack path's group commits, one after another, no pause
        nonlocal written
        inbox = SqliteInbox(database, loop_connection)
        while not stop.is_set():
            await asyncio.gather(*(inbox.record(NewDelivery(
                tenant_id=1, delivery_id=f"d-{written + k}", issue_id=str(written + k),
                issue_key="APP-1", body=b"x" * 2000, received_at=T0)) for k in range(16)))
            written += 16

    try:
        task = asyncio.create_task(writer())
        frames_seen = []
        for _ in range(12):
            await asyncio.sleep(0.05)
            busy, frames, copied = await database.checkpoint()
            assert busy in (0, 1) and copied <= frames  # 1: the RESTART waits for next time
            frames_seen.append(frames)
        stop.set()
        await task
        # The WAL started over: a later checkpoint found fewer frames than an earlier one
        # (PASSIVE alone: every count is the one before plus what was written since).
        assert any(b < a for a, b in pairwise(frames_seen)), frames_seen
        assert wal.stat().st_size <= WAL_SIZE_LIMIT
        assert (await SqliteInbox(database, loop_connection).stats(T0)).pending == written
    finally:
        loop_connection.close()
        database.close()


async def test_a_quiet_wal_is_only_copied_passively(tmp_path: Path) -> None:
    """Below RESTART_FRAMES the checkpoint never takes the write lock (no RESTART): a few
    frames are copied by PASSIVE passes alone."""
    database = open_database(a_settings(tmp_path))
    loop_connection = LoopConnection(database.path)
    try:
        inbox = SqliteInbox(database, loop_connection)
        await inbox.record(NewDelivery(tenant_id=1, delivery_id="d-1", issue_id="1",
                                       issue_key="APP-1", body=b"{}", received_at=T0))
        busy, frames, copied = await database.checkpoint()
        assert (busy, copied) == (0, frames)
        assert 0 < frames < RESTART_FRAMES
    finally:
        loop_connection.close()
        database.close()


async def test_after_a_restart_the_storage_thread_starts_the_wal_over(tmp_path: Path) -> None:
    """The first commit into a restarted WAL writes and syncs its header: the checkpoint
    makes that commit its own (one page), so the event loop's next group commit appends to
    a WAL already started over and never syncs on the loop."""
    database = open_database(a_settings(tmp_path))
    loop_connection = LoopConnection(database.path)
    try:
        inbox = SqliteInbox(database, loop_connection)
        await asyncio.gather(*(inbox.record(NewDelivery(
            tenant_id=1, delivery_id=f"d-{n}", issue_id=str(n), issue_key="APP-1",
            body=b"x" * 4000, received_at=T0)) for n in range(2 * RESTART_FRAMES)))
        busy, frames, copied = await database.checkpoint()
        assert busy == 0 and frames == copied >= RESTART_FRAMES
        # What the WAL holds now: the storage thread's one-page commit, nothing else.
        assert await loop_connection.read("PRAGMA wal_checkpoint(PASSIVE)") == [(0, 1, 1)]
        assert (await inbox.stats(T0)).pending == 2 * RESTART_FRAMES
    finally:
        loop_connection.close()
        database.close()


async def test_W10_a_reader_holding_the_old_wal_never_stalls_the_ack_path(tmp_path: Path) -> None:
    """RESTART keeps the write lock while it waits for readers of the old WAL (a backup, a slow
    reader in another process). It waits only RESTART_BUSY_TIMEOUT_MS, then gives up until the
    next checkpoint: the loop's commits (busy retries for 1 s here, 2 s in `serve`) all land
    while a reader holds its snapshot; with the storage connection's 5 s wait they would 503."""
    database = open_database(a_settings(tmp_path))
    loop_connection = LoopConnection(database.path, busy_retry_seconds=1.0)
    reader = sqlite3.connect(str(database.path), isolation_level=None)
    try:
        inbox = SqliteInbox(database, loop_connection)

        async def record(n: int) -> bool:
            return await inbox.record(NewDelivery(
                tenant_id=1, delivery_id=f"d-{n}", issue_id=str(n), issue_key="APP-1",
                body=b"x" * 4000, received_at=T0))

        await asyncio.gather(*(record(n) for n in range(2 * RESTART_FRAMES)))
        reader.execute("BEGIN")
        assert reader.execute("SELECT count(*) FROM deliveries").fetchone()[0] > 0  # a snapshot
        checkpoint = asyncio.create_task(database.checkpoint())
        written = 0
        while not checkpoint.done():  # the ack path keeps committing throughout
            assert await record(10_000 + written)
            written += 1
        busy, frames, _ = await checkpoint
        assert busy == 1 and frames >= RESTART_FRAMES  # gave up, to try again next time
        for n in range(20):
            assert await record(20_000 + n)
        reader.execute("COMMIT")
        busy, _, _ = await database.checkpoint()  # the reader is gone: the WAL starts over
        assert busy == 0
        assert (await inbox.stats(T0)).pending == 2 * RESTART_FRAMES + written + 20
        [(timeout,)] = await database.read(lambda db: db.execute("PRAGMA busy_timeout").fetchall())
        assert timeout == 5000  # the storage connection's own wait is back
    finally:
        reader.close()
        loop_connection.close()
        database.close()
