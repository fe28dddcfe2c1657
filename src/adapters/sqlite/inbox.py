"""SQLite inbox: the deliveries table is both the dedupe record (W3) and the work queue.

`record` runs on the event loop's own connection (the hot path, group-committed); the
worker's claim / complete / release go through the storage thread. A unique constraint on
(tenant_id, delivery_id) is what makes a delivery accepted once, across processes.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlite_utils
from sqlite_utils.migrations import Migrations

from adapters.sqlite.database import Database
from adapters.sqlite.loop_connection import LoopConnection
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


_INSERT = (
    "INSERT INTO deliveries (tenant_id, delivery_id, issue_id, issue_key, body, received_at, "
    "not_before) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tenant_id, delivery_id) DO NOTHING"
)


def _ts(moment: datetime) -> float:
    return moment.timestamp()


def _dt(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class SqliteInbox:
    def __init__(self, database: Database, loop_connection: LoopConnection) -> None:
        self._database = database
        self._loop = loop_connection

    async def record(self, delivery: NewDelivery) -> bool:
        stamp = _ts(delivery.received_at)
        params = (delivery.tenant_id, delivery.delivery_id, delivery.issue_id,
                  delivery.issue_key, delivery.body, stamp, stamp)

        def insert(conn: sqlite3.Connection) -> bool:
            return conn.execute(_INSERT, params).rowcount == 1

        return await self._loop.write(insert)

    async def claim(self, owner: str, *, now: datetime, lease_seconds: float,
                    limit: int = 1) -> list[ClaimedDelivery]:
        at = _ts(now)
        until = at + lease_seconds

        def claim(db: sqlite_utils.Database) -> list[ClaimedDelivery]:
            # One delivery per issue at a time (W6): skip issues with a live lease, and take
            # the first due delivery of each issue only.
            rows = list(db.query(
                "SELECT id, tenant_id, issue_id FROM deliveries AS d "
                "WHERE state = 'pending' AND not_before <= ? "
                "AND (claimed_until IS NULL OR claimed_until <= ?) "
                "AND NOT EXISTS (SELECT 1 FROM deliveries AS busy "
                "  WHERE busy.state = 'pending' AND busy.tenant_id = d.tenant_id "
                "  AND busy.issue_id = d.issue_id AND busy.claimed_until > ?) "
                "ORDER BY not_before, id LIMIT ?", [at, at, at, limit * 4]))
            issues: set[tuple[int, str]] = set()
            picked: list[dict[str, Any]] = []
            for row in rows:
                issue = (row["tenant_id"], row["issue_id"])
                if issue not in issues and len(picked) < limit:
                    issues.add(issue)
                    picked.append(row)
            claimed: list[ClaimedDelivery] = []
            for row in picked:
                db.execute("UPDATE deliveries SET claimed_by = ?, claimed_until = ?, "
                           "attempts = attempts + 1 WHERE id = ?", [owner, until, row["id"]])
                full = next(db.query("SELECT * FROM deliveries WHERE id = ?", [row["id"]]))
                claimed.append(_claimed(full))
            return claimed

        def any_due(db: sqlite_utils.Database) -> bool:
            return db.execute(
                "SELECT 1 FROM deliveries WHERE state = 'pending' AND not_before <= ? "
                "AND (claimed_until IS NULL OR claimed_until <= ?) LIMIT 1", [at, at]
            ).fetchone() is not None

        # An idle poll is one indexed read, not a write lock the ack path would wait on.
        if not await self._database.read(any_due):
            return []
        return await self._database.write(claim)

    async def renew(self, id: int, owner: str, *, now: datetime, lease_seconds: float) -> bool:
        until = _ts(now) + lease_seconds

        def renew(db: sqlite_utils.Database) -> bool:
            cursor = db.execute(
                "UPDATE deliveries SET claimed_until = ? "
                "WHERE id = ? AND claimed_by = ? AND state = 'pending'", [until, id, owner])
            return cursor.rowcount == 1

        return await self._database.write(renew)

    async def complete(self, id: int, owner: str) -> bool:
        def complete(db: sqlite_utils.Database) -> bool:
            cursor = db.execute(
                "UPDATE deliveries SET state = 'done', done_at = strftime('%s', 'now'), "
                "claimed_by = NULL, claimed_until = NULL "
                "WHERE id = ? AND claimed_by = ? AND state = 'pending'", [id, owner])
            return cursor.rowcount == 1

        return await self._database.write(complete)

    async def release(self, id: int, owner: str, *, not_before: datetime) -> bool:
        def release(db: sqlite_utils.Database) -> bool:
            cursor = db.execute(
                "UPDATE deliveries SET claimed_by = NULL, claimed_until = NULL, not_before = ? "
                "WHERE id = ? AND claimed_by = ? AND state = 'pending'",
                [_ts(not_before), id, owner])
            return cursor.rowcount == 1

        return await self._database.write(release)

    async def stats(self, now: datetime) -> InboxStats:
        def stats(db: sqlite_utils.Database) -> InboxStats:
            count, oldest = db.execute(
                "SELECT count(*), min(received_at) FROM deliveries WHERE state = 'pending'"
            ).fetchone()
            age = None if oldest is None else max(0.0, _ts(now) - oldest)
            return InboxStats(pending=count, oldest_pending_seconds=age)

        return await self._database.read(stats)

    async def prune(self, older_than: datetime) -> int:
        """Forget finished deliveries received before `older_than` (retention, W3 window)."""
        def prune(db: sqlite_utils.Database) -> int:
            return db.execute("DELETE FROM deliveries WHERE state = 'done' AND received_at < ?",
                              [_ts(older_than)]).rowcount

        return await self._database.write(prune)


def _claimed(row: dict[str, Any]) -> ClaimedDelivery:
    return ClaimedDelivery(
        id=row["id"], tenant_id=row["tenant_id"], delivery_id=row["delivery_id"],
        issue_id=row["issue_id"], issue_key=row["issue_key"], body=bytes(row["body"]),
        received_at=_dt(row["received_at"]), attempts=row["attempts"] - 1,
        claimed_until=_dt(row["claimed_until"]),
    )


def lease_end(now: datetime, lease_seconds: float) -> datetime:
    return now + timedelta(seconds=lease_seconds)
