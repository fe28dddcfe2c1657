"""SQLite inbox: the deliveries table is both the dedupe record (W3) and the work queue.

`record` runs on the event loop's own connection (the hot path, group-committed); the
worker's claim / complete / release go through the storage thread. A unique constraint on
(tenant_id, delivery_id) is what makes a delivery accepted once, across processes.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlite_utils
from sqlite_utils.migrations import Migrations

from adapters.sqlite.database import Database
from adapters.sqlite.loop_connection import LoopConnection
from adapters.sqlite.loop_writes import LoopWriter
from ports.inbox import ClaimedDelivery, InboxStats, NewDelivery

migrations = Migrations("sentry_jira.inbox")


@migrations()
def create_deliveries(db: sqlite_utils.Database) -> None:
    db.execute(
        """
        CREATE TABLE deliveries (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            tenant_id INTEGER NOT NULL,
            delivery_id TEXT NOT NULL,
            issue_id TEXT NOT NULL,
            issue_key TEXT NOT NULL,
            body BLOB NOT NULL,
            received_at REAL NOT NULL,          -- unix seconds
            state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done')),
            attempts INTEGER NOT NULL DEFAULT 0,
            not_before REAL NOT NULL,           -- due time, unix seconds
            claimed_by TEXT,
            claimed_until REAL,                 -- lease end, unix seconds
            done_at REAL,
            UNIQUE (tenant_id, delivery_id)
        )
        """
    )
    # The queue scan: due pending work, oldest first.
    db.execute("CREATE INDEX deliveries_due ON deliveries (state, not_before) "
               "WHERE state = 'pending'")


@migrations()
def remember_journalled_duplicates(db: sqlite_utils.Database) -> None:
    # W9: a delivery's first duplicate is journalled, later ones are not (docs/operations.md).
    db.execute("ALTER TABLE deliveries ADD COLUMN duplicate_journalled INTEGER NOT NULL "
               "DEFAULT 0")


_INSERT = (
    "INSERT INTO deliveries (tenant_id, delivery_id, issue_id, issue_key, body, received_at, "
    "not_before) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tenant_id, delivery_id) DO NOTHING"
)


# Another delivery of the same issue under a live lease (the outer row is `d`); served by the
# partial index `deliveries_leased` (adapters/sqlite/sync_store.py).
_LEASED_SAME_ISSUE = (
    "SELECT 1 FROM deliveries AS busy WHERE busy.tenant_id = d.tenant_id "
    "AND busy.issue_id = d.issue_id AND busy.claimed_until > ? AND busy.state = 'pending' "
    "AND busy.id != d.id"
)


# W9: the first duplicate of a recorded delivery becomes a journal entry, in the same group
# transaction as the insert that found it (no extra commit on the ack path). The flag bounds
# the journal to one such entry per recorded delivery, however many copies arrive.
_FIRST_DUPLICATE = (
    "UPDATE deliveries SET duplicate_journalled = 1 "
    "WHERE tenant_id = ? AND delivery_id = ? AND duplicate_journalled = 0"
)
_JOURNAL_DUPLICATE = (
    "INSERT INTO sync_journal (tenant_id, at, delivery_id, issue_key, org, kind, outcome, "
    "detail) VALUES (?, ?, ?, ?, NULL, 'delivery', 'duplicate', ?)"
)
DUPLICATE_DETAIL = "the delivery was already accepted: nothing is done twice"


CLAIM_WINDOW = 256
FULL_SCAN_EVERY_SECONDS = 5.0


_DUE = ("state = 'pending' AND not_before <= ? "
        "AND (claimed_until IS NULL OR claimed_until <= ?)")
_WINDOW = (
    f"SELECT id, tenant_id, issue_id FROM (SELECT id, tenant_id, issue_id, not_before "
    f"FROM deliveries WHERE {_DUE} ORDER BY not_before, id LIMIT ?) AS d "
    f"WHERE NOT EXISTS ({_LEASED_SAME_ISSUE}) ORDER BY not_before, id LIMIT ?"
)
_WINDOW_SIZE = (
    f"SELECT count(*) FROM (SELECT 1 FROM deliveries WHERE {_DUE} LIMIT ?)"
)
_FULL_SCAN = (
    f"SELECT id, tenant_id, issue_id FROM deliveries AS d WHERE {_DUE} "
    f"AND NOT EXISTS ({_LEASED_SAME_ISSUE}) ORDER BY not_before, id LIMIT ?"
)


_CLAIM_ONE = (
    "UPDATE deliveries AS d SET claimed_by = ?, claimed_until = ?, attempts = attempts + 1 "
    "WHERE id = ? AND state = 'pending' AND (claimed_until IS NULL OR claimed_until <= ?) "
    f"AND NOT EXISTS ({_LEASED_SAME_ISSUE}) "
    "RETURNING id, tenant_id, delivery_id, issue_id, issue_key, body, received_at, attempts, "
    "claimed_until"
)


def _first_per_issue(rows: Sequence[Sequence[Any]], limit: int) -> list[int]:
    """The first row of each issue, in order, at most `limit`."""
    taken: set[tuple[int, str]] = set()
    picked: list[int] = []
    for row_id, tenant_id, issue_id in rows:
        if len(picked) >= limit:
            break
        if (tenant_id, issue_id) not in taken:
            taken.add((tenant_id, issue_id))
            picked.append(row_id)
    return picked


def _ts(moment: datetime) -> float:
    return moment.timestamp()


def _dt(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class SqliteInbox:
    def __init__(self, database: Database, loop_connection: LoopConnection) -> None:
        self._database = database
        self._loop = loop_connection
        # The worker's writes share the loop's connection (adapters/sqlite/loop_writes.py).
        self._write = LoopWriter(loop_connection).write
        self._next_full_scan = 0.0

    async def record(self, delivery: NewDelivery) -> bool:
        stamp = _ts(delivery.received_at)
        params = (delivery.tenant_id, delivery.delivery_id, delivery.issue_id,
                  delivery.issue_key, delivery.body, stamp, stamp)

        def insert(conn: sqlite3.Connection) -> bool:
            if conn.execute(_INSERT, params).rowcount == 1:
                return True
            key = (delivery.tenant_id, delivery.delivery_id)
            if conn.execute(_FIRST_DUPLICATE, key).rowcount == 1:
                conn.execute(_JOURNAL_DUPLICATE, (delivery.tenant_id, stamp, delivery.delivery_id,
                                                  delivery.issue_key, DUPLICATE_DETAIL))
            return False

        return await self._loop.write(insert)

    async def claim(self, owner: str, *, now: datetime, lease_seconds: float,
                    limit: int = 1) -> list[ClaimedDelivery]:
        at = _ts(now)
        until = at + lease_seconds

        # An idle poll is one indexed read, not a write lock the ack path would wait on.
        # One delivery per issue at a time (W6): skip issues with a live lease and take the
        # first due delivery of each other issue. The oldest CLAIM_WINDOW due deliveries are
        # looked at on the loop's connection (bounded: a fraction of a millisecond, and no
        # thread hop whose GIL hand-offs would slow the ack path); only when every one of them
        # belongs to a leased issue (a burst on one issue) is the whole queue searched, on the
        # storage thread, at most once per FULL_SCAN_EVERY_SECONDS.
        rows = await self._loop.read(_WINDOW, [at, at, CLAIM_WINDOW, at, limit * 4])
        picked = _first_per_issue(rows, limit)
        if not picked and time.monotonic() >= self._next_full_scan:
            (window,) = (await self._loop.read(_WINDOW_SIZE, [at, at, CLAIM_WINDOW]))[0]
            if window >= CLAIM_WINDOW:
                self._next_full_scan = time.monotonic() + FULL_SCAN_EVERY_SECONDS
                rows = await self._database.read(
                    lambda db: db.execute(_FULL_SCAN, [at, at, at, limit * 4]).fetchall())
                picked = _first_per_issue(rows, limit)
        if not picked:
            return []

        def claim(db: sqlite_utils.Database) -> list[ClaimedDelivery]:
            # Compare and set: each candidate is taken only if it is still free and its issue
            # still has no live lease (another worker may have moved since the scan).
            # One statement per candidate: the update returns the claimed row.
            claimed: list[ClaimedDelivery] = []
            for row_id in picked:
                row = db.conn.execute(_CLAIM_ONE, [owner, until, row_id, at, at]).fetchone()
                if row is not None:
                    claimed.append(_claimed_row(row))
            return claimed

        return await self._write(claim)

    async def renew(self, id: int, owner: str, *, now: datetime, lease_seconds: float) -> bool:
        until = _ts(now) + lease_seconds

        def renew(db: sqlite_utils.Database) -> bool:
            cursor = db.execute(
                "UPDATE deliveries SET claimed_until = ? "
                "WHERE id = ? AND claimed_by = ? AND state = 'pending'", [until, id, owner])
            return cursor.rowcount == 1

        return await self._write(renew)

    async def release(self, id: int, owner: str, *, not_before: datetime) -> bool:
        def release(db: sqlite_utils.Database) -> bool:
            cursor = db.execute(
                "UPDATE deliveries SET claimed_by = NULL, claimed_until = NULL, not_before = ? "
                "WHERE id = ? AND claimed_by = ? AND state = 'pending'",
                [_ts(not_before), id, owner])
            return cursor.rowcount == 1

        return await self._write(release)

    async def stats(self, now: datetime) -> InboxStats:
        def stats(db: sqlite_utils.Database) -> InboxStats:
            count, oldest = db.execute(
                "SELECT count(*), min(received_at) FROM deliveries WHERE state = 'pending'"
            ).fetchone()
            age = None if oldest is None else max(0.0, _ts(now) - oldest)
            return InboxStats(pending=count, oldest_pending_seconds=age)

        return await self._database.read(stats)


def _claimed_row(row: Sequence[Any]) -> ClaimedDelivery:
    """A row of `_CLAIM_ONE`'s RETURNING clause, in its order."""
    (row_id, tenant_id, delivery_id, issue_id, issue_key, body, received_at, attempts,
     claimed_until) = row
    return ClaimedDelivery(
        id=row_id, tenant_id=tenant_id, delivery_id=delivery_id, issue_id=issue_id,
        issue_key=issue_key, body=bytes(body), received_at=_dt(received_at),
        attempts=attempts - 1, claimed_until=_dt(claimed_until),
    )


def _claimed(row: dict[str, Any]) -> ClaimedDelivery:
    return ClaimedDelivery(
        id=row["id"], tenant_id=row["tenant_id"], delivery_id=row["delivery_id"],
        issue_id=row["issue_id"], issue_key=row["issue_key"], body=bytes(row["body"]),
        received_at=_dt(row["received_at"]), attempts=row["attempts"] - 1,
        claimed_until=_dt(row["claimed_until"]),
    )
