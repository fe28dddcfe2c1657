"""SQLite sync state: plans and their actions, watermarks, journal, dead letters, workers.

Every change of an action is one `BEGIN IMMEDIATE` transaction that also journals the
decision and advances the watermark (W9: a retry after success never writes again). The
transactions that must finish or re-queue a delivery together with its actions update the
inbox's `deliveries` table directly: both live in this database.

Times are unix seconds (REAL), like the inbox's. Watermarks keep the `updated` time as ISO
8601 text with its offset, so that equal times compare equal after a round trip (W6).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlite_utils
from sqlite_utils.migrations import Migrations

from adapters.logs import event
from adapters.sqlite.database import Database
from adapters.sqlite.loop_connection import LoopConnection
from adapters.sqlite.loop_writes import LoopWriter
from core.model.sync import Kind, Outcome, Watermark, WatermarkAdvance, WatermarkKey
from ports.inbox import ClaimedDelivery
from ports.journal import JOURNAL_MAX_LIMIT, DeadLetter
from ports.sync_store import (
    ActionState,
    Finish,
    JournalEntry,
    NewAction,
    Settle,
    StoredAction,
    SyncChange,
)

migrations = Migrations("sentry_jira.sync")


@migrations()
def create_sync_tables(db: sqlite_utils.Database) -> None:
    db.execute(
        """
        CREATE TABLE sync_plans (
            delivery_row INTEGER PRIMARY KEY,   -- deliveries.id: decided once
            planned_at REAL NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE sync_actions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            delivery_row INTEGER NOT NULL,      -- deliveries.id
            tenant_id INTEGER NOT NULL,
            delivery_id TEXT NOT NULL,
            issue_key TEXT NOT NULL,
            position INTEGER NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('status', 'assignee', 'key', 'delivery')),
            org TEXT,
            action TEXT NOT NULL,               -- JSON; never a token
            state TEXT NOT NULL
                CHECK (state IN ('pending', 'done', 'skipped', 'dead', 'retried')),
            attempts INTEGER NOT NULL DEFAULT 0,
            not_before REAL NOT NULL,
            last_error TEXT,
            created_at REAL NOT NULL,
            finished_at REAL                    -- done, skipped or dead (a dead letter's time)
        )
        """
    )
    db.execute("CREATE INDEX sync_actions_by_delivery ON sync_actions (delivery_row, position)")
    db.execute("CREATE INDEX sync_actions_dead ON sync_actions (id) WHERE state = 'dead'")
    db.execute(
        """
        CREATE TABLE sync_watermarks (
            tenant_id INTEGER NOT NULL,
            issue_id TEXT NOT NULL,
            org TEXT NOT NULL,
            kind TEXT NOT NULL,
            updated TEXT NOT NULL,              -- ISO 8601 with offset
            delivery_id TEXT NOT NULL,
            PRIMARY KEY (tenant_id, issue_id, org, kind)
        ) WITHOUT ROWID
        """
    )
    db.execute(
        """
        CREATE TABLE sync_journal (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            tenant_id INTEGER NOT NULL,
            at REAL NOT NULL,
            delivery_id TEXT NOT NULL,
            issue_key TEXT NOT NULL,
            org TEXT,
            kind TEXT NOT NULL,
            outcome TEXT NOT NULL,
            detail TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX sync_journal_by_tenant ON sync_journal (tenant_id, id)")
    db.execute("CREATE INDEX sync_journal_by_issue ON sync_journal (tenant_id, issue_key, id)")
    db.execute("CREATE INDEX sync_journal_at ON sync_journal (at)")
    db.execute(
        "CREATE TABLE sync_workers (worker TEXT PRIMARY KEY, seen_at REAL NOT NULL) WITHOUT ROWID"
    )
    # The claim's "one delivery per issue at a time" check (ports/inbox.py).
    db.execute(
        "CREATE INDEX deliveries_by_issue ON deliveries (tenant_id, issue_id) "
        "WHERE state = 'pending'"
    )


@migrations()
def index_leased_deliveries(db: sqlite_utils.Database) -> None:
    # The claim's check for a live lease on the same issue: leased rows are few, pending ones
    # may be many (a burst), so the check must not scan the pending ones.
    db.execute("DROP INDEX deliveries_by_issue")
    db.execute(
        "CREATE INDEX deliveries_leased ON deliveries (tenant_id, issue_id, claimed_until) "
        "WHERE claimed_until IS NOT NULL"
    )


def _ts(moment: datetime) -> float:
    return moment.timestamp()


def _dt(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class SqliteSyncStore:
    """`SyncStore`, `Journal` and `WorkerUpkeep` over one database (their tables share
    transactions). Reads run on the storage thread. Writes run there too, or — given the loop
    connection, as `bootstrap` does — on the event loop's connection
    (adapters/sqlite/loop_writes.py), and so do the worker's reads of a plan and of
    watermarks."""

    def __init__(self, database: Database, loop_connection: LoopConnection | None = None) -> None:
        self._database = database
        writer = None if loop_connection is None else LoopWriter(loop_connection)
        self._write = database.write if writer is None else writer.write
        # The worker's per-delivery reads (plan, watermarks) run in place on the loop's
        # connection too: no thread hop (adapters/sqlite/loop_writes.py says why).
        self._read_hot = database.read if writer is None else writer.read

    # -- watermarks ---------------------------------------------------------------------

    async def watermarks(self, keys: Iterable[WatermarkKey]) -> dict[WatermarkKey, Watermark]:
        wanted = list(dict.fromkeys(keys))

        def query(db: sqlite_utils.Database) -> dict[WatermarkKey, Watermark]:
            if len(wanted) == 1:
                mark = _watermark(db, wanted[0])
                return {} if mark is None else {wanted[0]: mark}
            # One read per (tenant, issue, org) for all its kinds (the decision asks for
            # status and assignee together): a prefix of the table's unique key.
            found: dict[WatermarkKey, Watermark] = {}
            for tenant_id, issue_id, org in dict.fromkeys(
                    (k.tenant_id, k.issue_id, k.org) for k in wanted):
                for kind, updated, delivery_id in db.execute(
                        "SELECT kind, updated, delivery_id FROM sync_watermarks "
                        "WHERE tenant_id = ? AND issue_id = ? AND org = ?",
                        [tenant_id, issue_id, org]).fetchall():
                    key = WatermarkKey(tenant_id, issue_id, org, Kind(kind))
                    found[key] = Watermark(updated=datetime.fromisoformat(updated),
                                           delivery_id=delivery_id)
            return {key: found[key] for key in wanted if key in found}

        return await self._read_hot(query)

    # -- plans and actions --------------------------------------------------------------

    async def plan_of(self, delivery_row: int) -> list[StoredAction] | None:
        return await self._read_hot(lambda db: _plan(db, delivery_row))

    async def save_plan(
        self,
        delivery: ClaimedDelivery,
        *,
        actions: Sequence[NewAction],
        entries: Sequence[JournalEntry],
        advances: Sequence[WatermarkAdvance],
        at: datetime,
    ) -> list[StoredAction]:
        stamp = _ts(at)

        def save(db: sqlite_utils.Database) -> list[StoredAction]:
            cursor = db.execute(
                "INSERT INTO sync_plans (delivery_row, planned_at) VALUES (?, ?) "
                "ON CONFLICT (delivery_row) DO NOTHING",
                [delivery.id, stamp],
            )
            if cursor.rowcount == 1:
                stored = []
                for position, action in enumerate(actions):
                    record = dict(action.record)
                    cursor = db.execute(
                        "INSERT INTO sync_actions (delivery_row, tenant_id, delivery_id, "
                        "issue_key, position, kind, org, action, state, not_before, created_at) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
                        [delivery.id, delivery.tenant_id, delivery.delivery_id,
                         delivery.issue_key, position, action.kind.value, action.org,
                         json.dumps(record), stamp, stamp],
                    )
                    assert cursor.lastrowid is not None
                    # What `_plan` would read back (a fresh plan: no second read).
                    stored.append(StoredAction(
                        id=cursor.lastrowid, delivery_row=delivery.id, position=position,
                        kind=action.kind, org=action.org, record=json.loads(json.dumps(record)),
                        state=ActionState.PENDING, attempts=0, not_before=_dt(stamp)))
                _journal(db, entries)
                for advance in advances:
                    _advance(db, advance)
                return stored
            plan = _plan(db, delivery.id)
            assert plan is not None
            return plan

        return await self._write(save)

    async def finish(
        self,
        action_id: int,
        *,
        state: ActionState,
        entry: JournalEntry,
        advance: WatermarkAdvance | None = None,
    ) -> bool:
        change = Finish(action_id, state, entry, advance)
        _check_finish(change)
        return await self._write(lambda db: _finish(db, change))

    async def postpone(
        self,
        action_id: int,
        *,
        entry: JournalEntry,
        error: str,
        not_before: datetime,
        record: Mapping[str, Any] | None = None,
    ) -> bool:
        def apply(db: sqlite_utils.Database) -> bool:
            cursor = db.execute(
                "UPDATE sync_actions SET attempts = attempts + 1, last_error = ?, "
                "not_before = ?, action = coalesce(?, action) "
                "WHERE id = ? AND state = 'pending'",
                [error, _ts(not_before), _json_or_none(record), action_id],
            )
            if cursor.rowcount != 1:
                return False
            _journal(db, [entry])
            return True

        return await self._write(apply)

    async def bury(
        self,
        action_id: int,
        *,
        entry: JournalEntry,
        error: str,
        at: datetime,
        record: Mapping[str, Any] | None = None,
    ) -> bool:
        def apply(db: sqlite_utils.Database) -> bool:
            cursor = db.execute(
                "UPDATE sync_actions SET state = 'dead', attempts = attempts + 1, "
                "last_error = ?, finished_at = ?, action = coalesce(?, action) "
                "WHERE id = ? AND state = 'pending'",
                [error, _ts(at), _json_or_none(record), action_id],
            )
            if cursor.rowcount != 1:
                return False
            _journal(db, [entry])
            return True

        buried = await self._write(apply)
        if buried:
            _log_dead_letter(entry, error)
        return buried

    async def bury_delivery(
        self, delivery: ClaimedDelivery, owner: str, *, entry: JournalEntry, error: str,
        at: datetime,
    ) -> bool:
        stamp = _ts(at)
        record = {"delivery_id": delivery.delivery_id, "issue_id": delivery.issue_id,
                  "issue_key": delivery.issue_key}

        def apply(db: sqlite_utils.Database) -> bool:
            cursor = db.execute(
                "UPDATE deliveries SET state = 'done', done_at = ?, claimed_by = NULL, "
                "claimed_until = NULL WHERE id = ? AND claimed_by = ? AND state = 'pending'",
                [stamp, delivery.id, owner],
            )
            if cursor.rowcount != 1:
                return False
            db.execute(
                "INSERT INTO sync_actions (delivery_row, tenant_id, delivery_id, issue_key, "
                "position, kind, org, action, state, attempts, not_before, last_error, "
                "created_at, finished_at) "
                "VALUES (?, ?, ?, ?, -1, 'delivery', NULL, ?, 'dead', ?, ?, ?, ?, ?)",
                [delivery.id, delivery.tenant_id, delivery.delivery_id, delivery.issue_key,
                 json.dumps(record), delivery.attempts + 1, stamp, error, stamp, stamp],
            )
            _journal(db, [entry])
            return True

        buried = await self._write(apply)
        if buried:
            _log_dead_letter(entry, error)
        return buried

    async def settle(self, delivery_row: int, owner: str) -> datetime | None:
        return await self._write(lambda db: _settle(db, Settle(delivery_row, owner)))

    async def apply_batch(self, changes: Sequence[SyncChange]) -> list[bool | datetime | None]:
        """One write transaction (on the loop's connection: one item of its group commit)."""
        for change in changes:
            if isinstance(change, Finish):
                _check_finish(change)

        def apply(db: sqlite_utils.Database) -> list[bool | datetime | None]:
            return [_finish(db, change) if isinstance(change, Finish) else _settle(db, change)
                    for change in changes]

        return await self._write(apply)

    # -- journal ------------------------------------------------------------------------

    async def record(self, entries: Sequence[JournalEntry]) -> None:
        if entries:
            await self._write(lambda db: _journal(db, entries))

    async def journal(
        self, tenant_id: int, *, issue_key: str | None = None, limit: int = 50
    ) -> list[JournalEntry]:
        def query(db: sqlite_utils.Database) -> list[JournalEntry]:
            if issue_key is None:
                rows = db.query(
                    "SELECT * FROM sync_journal WHERE tenant_id = ? ORDER BY id DESC LIMIT ?",
                    [tenant_id, limit],
                )
            else:
                rows = db.query(
                    "SELECT * FROM sync_journal WHERE tenant_id = ? AND issue_key = ? "
                    "ORDER BY id DESC LIMIT ?",
                    [tenant_id, issue_key, limit],
                )
            return [_entry(row) for row in rows]

        return await self._database.read(query)

    # -- dead letters -------------------------------------------------------------------

    async def dead_letters(
        self, *, limit: int = JOURNAL_MAX_LIMIT, tenant_id: int | None = None
    ) -> list[DeadLetter]:
        def query(db: sqlite_utils.Database) -> list[DeadLetter]:
            if tenant_id is None:
                rows = db.query(
                    "SELECT * FROM sync_actions WHERE state = 'dead' "
                    "ORDER BY finished_at DESC, id DESC LIMIT ?",
                    [limit],
                )
            else:
                rows = db.query(
                    "SELECT * FROM sync_actions WHERE state = 'dead' AND tenant_id = ? "
                    "ORDER BY finished_at DESC, id DESC LIMIT ?",
                    [tenant_id, limit],
                )
            return [_dead_letter(row) for row in rows]

        return await self._database.read(query)

    async def dead_letter_count(self) -> int:
        def query(db: sqlite_utils.Database) -> int:
            return int(db.execute(
                "SELECT count(*) FROM sync_actions WHERE state = 'dead'").fetchone()[0])

        return await self._database.read(query)

    async def retry_dead_letter(
        self, id: int, *, now: datetime, tenant_id: int | None = None
    ) -> bool:
        stamp = _ts(now)

        def apply(db: sqlite_utils.Database) -> bool:
            row = db.execute(
                "SELECT delivery_row, kind, tenant_id FROM sync_actions "
                "WHERE id = ? AND state = 'dead'",
                [id],
            ).fetchone()
            if row is None or tenant_id not in (None, row[2]):
                return False
            delivery_row, kind, _ = row
            if kind == Kind.DELIVERY.value:
                # The delivery is decided again from the start, with fresh attempts.
                db.execute("UPDATE sync_actions SET state = 'retried' WHERE id = ?", [id])
                reset = ", attempts = 0"
            else:
                db.execute(
                    "UPDATE sync_actions SET state = 'pending', attempts = 0, not_before = ?, "
                    "finished_at = NULL WHERE id = ?",
                    [stamp, id],
                )
                reset = ""
            # A delivery still leased keeps its lease; its holder settles it and sees the
            # action pending again.
            db.execute(
                "UPDATE deliveries SET state = 'pending', done_at = NULL, not_before = "
                "CASE WHEN claimed_by IS NULL THEN ? ELSE min(not_before, ?) END"
                + reset + " WHERE id = ?",
                [stamp, stamp, delivery_row],
            )
            return True

        return await self._write(apply)

    # -- retention ----------------------------------------------------------------------

    async def prune(self, older_than: datetime) -> int:
        cutoff = _ts(older_than)

        def apply(db: sqlite_utils.Database) -> int:
            gone = db.execute("DELETE FROM sync_journal WHERE at < ?", [cutoff]).rowcount
            # Finished deliveries without a dead letter (that one an operator may retry).
            old = (
                "SELECT id FROM deliveries AS d WHERE state = 'done' AND received_at < ? "
                "AND NOT EXISTS (SELECT 1 FROM sync_actions AS a "
                "WHERE a.delivery_row = d.id AND a.state = 'dead')"
            )
            gone += db.execute(
                f"DELETE FROM sync_actions WHERE delivery_row IN ({old})", [cutoff]
            ).rowcount
            gone += db.execute(
                f"DELETE FROM sync_plans WHERE delivery_row IN ({old})", [cutoff]
            ).rowcount
            gone += db.execute(f"DELETE FROM deliveries WHERE id IN ({old})", [cutoff]).rowcount
            return gone

        gone = await self._database.write(apply)  # hourly and maybe large: off the loop
        # Hand the space back: copy the WAL into the database and truncate it to zero bytes
        # (the one-second PASSIVE checkpoints never shrink the file).
        await self._database.read(
            lambda db: db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone())
        return gone

    # -- workers ------------------------------------------------------------------------

    async def beat(self, worker: str, now: datetime) -> None:
        await self._database.write(lambda db: db.execute(
            "INSERT INTO sync_workers (worker, seen_at) VALUES (?, ?) "
            "ON CONFLICT (worker) DO UPDATE SET seen_at = excluded.seen_at",
            [worker, _ts(now)],
        ))

    async def forget_worker(self, worker: str) -> None:
        await self._database.write(
            lambda db: db.execute("DELETE FROM sync_workers WHERE worker = ?", [worker]))

    async def live_workers(self, since: datetime) -> int:
        def query(db: sqlite_utils.Database) -> int:
            return int(db.execute(
                "SELECT count(*) FROM sync_workers WHERE seen_at >= ?", [_ts(since)]
            ).fetchone()[0])

        return await self._database.read(query)


# -- helpers (run on the connection's thread) ----------------------------------------------


def _json_or_none(record: Mapping[str, Any] | None) -> str | None:
    return None if record is None else json.dumps(dict(record))


def _watermark(db: sqlite_utils.Database, key: WatermarkKey) -> Watermark | None:
    row = db.execute(
        "SELECT updated, delivery_id FROM sync_watermarks "
        "WHERE tenant_id = ? AND issue_id = ? AND org = ? AND kind = ?",
        [key.tenant_id, key.issue_id, key.org, key.kind.value],
    ).fetchone()
    if row is None:
        return None
    return Watermark(updated=datetime.fromisoformat(row[0]), delivery_id=row[1])


def _advance(db: sqlite_utils.Database, advance: WatermarkAdvance) -> None:
    """Store the watermark unless a newer one is there already (never moved backwards)."""
    current = _watermark(db, advance.key)
    if current is not None and advance.watermark.updated < current.updated:
        return
    key = advance.key
    db.execute(
        "INSERT INTO sync_watermarks (tenant_id, issue_id, org, kind, updated, delivery_id) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (tenant_id, issue_id, org, kind) "
        "DO UPDATE SET updated = excluded.updated, delivery_id = excluded.delivery_id",
        [key.tenant_id, key.issue_id, key.org, key.kind.value,
         advance.watermark.updated.isoformat(), advance.watermark.delivery_id],
    )


def _journal(db: sqlite_utils.Database, entries: Sequence[JournalEntry]) -> None:
    db.conn.executemany(
        "INSERT INTO sync_journal (tenant_id, at, delivery_id, issue_key, org, kind, outcome, "
        "detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [(e.tenant_id, _ts(e.at), e.delivery_id, e.issue_key, e.org, e.kind.value,
          e.outcome.value, e.detail) for e in entries],
    )


def _plan(db: sqlite_utils.Database, delivery_row: int) -> list[StoredAction] | None:
    planned = db.execute(
        "SELECT 1 FROM sync_plans WHERE delivery_row = ?", [delivery_row]).fetchone()
    if planned is None:
        return None
    rows = db.query(
        "SELECT * FROM sync_actions WHERE delivery_row = ? AND kind != 'delivery' "
        "ORDER BY position, id",
        [delivery_row],
    )
    return [_action(row) for row in rows]


def _action(row: dict[str, Any]) -> StoredAction:
    return StoredAction(
        id=row["id"],
        delivery_row=row["delivery_row"],
        position=row["position"],
        kind=Kind(row["kind"]),
        org=row["org"],
        record=json.loads(row["action"]),
        state=ActionState(row["state"]),
        attempts=row["attempts"],
        not_before=_dt(row["not_before"]),
        last_error=row["last_error"],
    )


def _entry(row: dict[str, Any]) -> JournalEntry:
    return JournalEntry(
        at=_dt(row["at"]),
        tenant_id=row["tenant_id"],
        delivery_id=row["delivery_id"],
        issue_key=row["issue_key"],
        org=row["org"],
        kind=Kind(row["kind"]),
        outcome=Outcome(row["outcome"]),
        detail=row["detail"],
    )


def _dead_letter(row: dict[str, Any]) -> DeadLetter:
    return DeadLetter(
        id=row["id"],
        tenant_id=row["tenant_id"],
        org=row["org"],
        issue_key=row["issue_key"],
        kind=Kind(row["kind"]),
        action=json.loads(row["action"]),
        attempts=row["attempts"],
        last_error=row["last_error"] or "",
        created_at=_dt(row["finished_at"]),
    )


log = logging.getLogger("sentry_jira.sync")


def _log_dead_letter(entry: JournalEntry, error: str) -> None:
    """SPEC §3: one line per dead letter. The reason is the journal's own (no secret: errors
    are the adapters' fixed details, an exception's type at most)."""
    event(log, logging.WARNING, "dead_letter", "a sync action failed for good (dead letter)",
          tenant_id=entry.tenant_id, org=entry.org, issue_key=entry.issue_key,
          kind=entry.kind.value, delivery=entry.delivery_id, reason=error)


def _check_finish(change: Finish) -> None:
    if change.state not in (ActionState.DONE, ActionState.SKIPPED):
        raise ValueError("finish() takes DONE or SKIPPED")


def _finish(db: sqlite_utils.Database, change: Finish) -> bool:
    """A pending action done or skipped, its journal entry and watermark (W6, W9)."""
    cursor = db.execute(
        "UPDATE sync_actions SET state = ?, finished_at = ? WHERE id = ? AND state = 'pending'",
        [change.state.value, _ts(change.entry.at), change.action_id],
    )
    if cursor.rowcount != 1:
        return False
    _journal(db, [change.entry])
    if change.advance is not None:
        _advance(db, change.advance)
    return True


def _settle(db: sqlite_utils.Database, change: Settle) -> datetime | None:
    """Finish the delivery when no action is pending, else give it back due at the earliest
    pending one — only while `owner` holds its lease."""
    (due,) = db.execute(
        "SELECT min(not_before) FROM sync_actions WHERE delivery_row = ? AND state = 'pending'",
        [change.delivery_row],
    ).fetchone()
    if due is None:
        db.execute(
            "UPDATE deliveries SET state = 'done', done_at = strftime('%s', 'now'), "
            "claimed_by = NULL, claimed_until = NULL "
            "WHERE id = ? AND claimed_by = ? AND state = 'pending'",
            [change.delivery_row, change.owner],
        )
        return None
    db.execute(
        "UPDATE deliveries SET claimed_by = NULL, claimed_until = NULL, not_before = ? "
        "WHERE id = ? AND claimed_by = ? AND state = 'pending'",
        [due, change.delivery_row, change.owner],
    )
    return _dt(due)
