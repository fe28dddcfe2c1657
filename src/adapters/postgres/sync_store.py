"""PostgreSQL sync state (W5–W9): plans and actions, watermarks, journal, dead letters,
worker heartbeats — the same tables and rules as adapters/sqlite/sync_store.py, each change
of an action one transaction with its journal entry and watermark."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from adapters.postgres.database import Connection, PgDatabase
from adapters.sqlite.sync_store import _log_dead_letter
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

_ACTION_COLUMNS = ("id, delivery_row, position, kind, org, action, state, attempts, "
                   "not_before, last_error, tenant_id, issue_key, finished_at")
_JOURNAL_COLUMNS = "at, tenant_id, delivery_id, issue_key, org, kind, outcome, detail"
# The retention prune's own statement timeout (the pool's is STATEMENT_TIMEOUT_MS, 10 s):
# a first prune after a long outage may delete millions of rows; it still cannot run forever.
PRUNE_STATEMENT_TIMEOUT_MS = 600_000


def _dt(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _json_or_none(record: Mapping[str, Any] | None) -> str | None:
    return None if record is None else json.dumps(dict(record))


class PgSyncStore:
    """`SyncStore`, `Journal` and `WorkerUpkeep` over one PostgreSQL database."""

    def __init__(self, database: PgDatabase) -> None:
        self._database = database

    # -- watermarks ---------------------------------------------------------------------

    async def watermarks(self, keys: Iterable[WatermarkKey]) -> dict[WatermarkKey, Watermark]:
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}
        # One statement for every key (the worker asks before each delivery).
        rows = await self._database.fetchall(
            "SELECT w.tenant_id, w.issue_id, w.org, w.kind, w.updated, w.delivery_id "
            "FROM sync_watermarks AS w JOIN unnest(%s::bigint[], %s::text[], %s::text[], "
            "%s::text[]) AS k (t, i, o, n) ON w.tenant_id = k.t AND w.issue_id = k.i "
            "AND w.org = k.o AND w.kind = k.n",
            [[k.tenant_id for k in wanted], [k.issue_id for k in wanted],
             [k.org for k in wanted], [k.kind.value for k in wanted]])
        by_columns = {(k.tenant_id, k.issue_id, k.org, k.kind.value): k for k in wanted}
        return {by_columns[(t, i, o, n)]: Watermark(updated=datetime.fromisoformat(u),
                                                    delivery_id=d)
                for t, i, o, n, u, d in rows}

    # -- plans and actions --------------------------------------------------------------

    async def plan_of(self, delivery_row: int) -> list[StoredAction] | None:
        async with self._database.connection() as conn:
            return await _plan(conn, delivery_row)

    async def save_plan(
        self,
        delivery: ClaimedDelivery,
        *,
        actions: Sequence[NewAction],
        entries: Sequence[JournalEntry],
        advances: Sequence[WatermarkAdvance],
        at: datetime,
    ) -> list[StoredAction]:
        stamp = at.timestamp()
        async with self._database.transaction() as conn:
            cursor = await conn.execute(
                "INSERT INTO sync_plans (delivery_row, planned_at) VALUES (%s, %s) "
                "ON CONFLICT (delivery_row) DO NOTHING", [delivery.id, stamp])
            if cursor.rowcount != 1:
                plan = await _plan(conn, delivery.id)
                assert plan is not None
                return plan
            stored = []
            for position, action in enumerate(actions):
                record = dict(action.record)
                cursor = await conn.execute(
                    "INSERT INTO sync_actions (delivery_row, tenant_id, delivery_id, "
                    "issue_key, position, kind, org, action, state, not_before, created_at) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'pending', %s, %s) RETURNING id",
                    [delivery.id, delivery.tenant_id, delivery.delivery_id, delivery.issue_key,
                     position, action.kind.value, action.org, json.dumps(record), stamp,
                     stamp])
                row = await cursor.fetchone()
                assert row is not None
                stored.append(StoredAction(
                    id=row[0], delivery_row=delivery.id, position=position, kind=action.kind,
                    org=action.org, record=json.loads(json.dumps(record)),
                    state=ActionState.PENDING, attempts=0, not_before=_dt(stamp)))
            await _journal(conn, entries)
            for advance in advances:
                await _advance(conn, advance)
            return stored

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
        async with self._database.transaction() as conn:
            return await _finish(conn, change)

    async def apply_batch(self, changes: Sequence[SyncChange]) -> list[bool | datetime | None]:
        """Issue 15 on PostgreSQL: the changes in one transaction (one commit, one WAL flush);
        a refused change is refused before anything is written."""
        for change in changes:
            if isinstance(change, Finish):
                _check_finish(change)
        async with self._database.transaction() as conn:
            return [await _finish(conn, change) if isinstance(change, Finish)
                    else await _settle(conn, change) for change in changes]

    async def postpone(
        self,
        action_id: int,
        *,
        entry: JournalEntry,
        error: str,
        not_before: datetime,
        record: Mapping[str, Any] | None = None,
    ) -> bool:
        async with self._database.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE sync_actions SET attempts = attempts + 1, last_error = %s, "
                "not_before = %s, action = coalesce(%s, action) "
                "WHERE id = %s AND state = 'pending'",
                [error, not_before.timestamp(), _json_or_none(record), action_id])
            if cursor.rowcount != 1:
                return False
            await _journal(conn, [entry])
            return True

    async def bury(
        self,
        action_id: int,
        *,
        entry: JournalEntry,
        error: str,
        at: datetime,
        record: Mapping[str, Any] | None = None,
    ) -> bool:
        async with self._database.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE sync_actions SET state = 'dead', attempts = attempts + 1, "
                "last_error = %s, finished_at = %s, action = coalesce(%s, action) "
                "WHERE id = %s AND state = 'pending'",
                [error, at.timestamp(), _json_or_none(record), action_id])
            buried = cursor.rowcount == 1
            if buried:
                await _journal(conn, [entry])
        if buried:
            _log_dead_letter(entry, error)
        return buried

    async def bury_delivery(
        self, delivery: ClaimedDelivery, owner: str, *, entry: JournalEntry, error: str,
        at: datetime,
    ) -> bool:
        stamp = at.timestamp()
        record = {"delivery_id": delivery.delivery_id, "issue_id": delivery.issue_id,
                  "issue_key": delivery.issue_key}
        async with self._database.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE deliveries SET state = 'done', done_at = %s, claimed_by = NULL, "
                "claimed_until = NULL WHERE id = %s AND claimed_by = %s AND state = 'pending'",
                [stamp, delivery.id, owner])
            buried = cursor.rowcount == 1
            if buried:
                await conn.execute(
                    "INSERT INTO sync_actions (delivery_row, tenant_id, delivery_id, issue_key, "
                    "position, kind, org, action, state, attempts, not_before, last_error, "
                    "created_at, finished_at) VALUES "
                    "(%s, %s, %s, %s, -1, 'delivery', NULL, %s, 'dead', %s, %s, %s, %s, %s)",
                    [delivery.id, delivery.tenant_id, delivery.delivery_id, delivery.issue_key,
                     json.dumps(record), delivery.attempts + 1, stamp, error, stamp, stamp])
                await _journal(conn, [entry])
        if buried:
            _log_dead_letter(entry, error)
        return buried

    async def settle(self, delivery_row: int, owner: str) -> datetime | None:
        async with self._database.transaction() as conn:
            return await _settle(conn, Settle(delivery_row, owner))

    # -- journal ------------------------------------------------------------------------

    async def record(self, entries: Sequence[JournalEntry]) -> None:
        if entries:
            async with self._database.transaction() as conn:
                await _journal(conn, entries)

    async def journal(
        self, tenant_id: int, *, issue_key: str | None = None, limit: int = 50
    ) -> list[JournalEntry]:
        if issue_key is None:
            rows = await self._database.fetchall(
                f"SELECT {_JOURNAL_COLUMNS} FROM sync_journal WHERE tenant_id = %s "
                "ORDER BY id DESC LIMIT %s", [tenant_id, limit])
        else:
            rows = await self._database.fetchall(
                f"SELECT {_JOURNAL_COLUMNS} FROM sync_journal WHERE tenant_id = %s "
                "AND issue_key = %s ORDER BY id DESC LIMIT %s", [tenant_id, issue_key, limit])
        return [_entry(row) for row in rows]

    # -- dead letters -------------------------------------------------------------------

    async def dead_letters(
        self, *, limit: int = JOURNAL_MAX_LIMIT, tenant_id: int | None = None
    ) -> list[DeadLetter]:
        # §10: a page shows only its own site's dead letters (`tenant_id`).
        if tenant_id is None:
            rows = await self._database.fetchall(
                f"SELECT {_ACTION_COLUMNS} FROM sync_actions WHERE state = 'dead' "
                "ORDER BY finished_at DESC, id DESC LIMIT %s", [limit])
        else:
            rows = await self._database.fetchall(
                f"SELECT {_ACTION_COLUMNS} FROM sync_actions WHERE state = 'dead' "
                "AND tenant_id = %s ORDER BY finished_at DESC, id DESC LIMIT %s",
                [tenant_id, limit])
        return [_dead_letter(row) for row in rows]

    async def dead_letter_count(self) -> int:
        row = await self._database.fetchone(
            "SELECT count(*) FROM sync_actions WHERE state = 'dead'")
        assert row is not None
        return int(row[0])

    async def retry_dead_letter(
        self, id: int, *, now: datetime, tenant_id: int | None = None
    ) -> bool:
        stamp = now.timestamp()
        async with self._database.transaction() as conn:
            cursor = await conn.execute(
                "SELECT delivery_row, kind, tenant_id FROM sync_actions "
                "WHERE id = %s AND state = 'dead' FOR UPDATE", [id])
            row = await cursor.fetchone()
            # §10: another site's dead letter is not found.
            if row is None or tenant_id not in (None, row[2]):
                return False
            delivery_row, kind, _ = row
            if kind == Kind.DELIVERY.value:
                await conn.execute("UPDATE sync_actions SET state = 'retried' WHERE id = %s",
                                   [id])
                reset = ", attempts = 0"
            else:
                await conn.execute(
                    "UPDATE sync_actions SET state = 'pending', attempts = 0, not_before = %s, "
                    "finished_at = NULL WHERE id = %s", [stamp, id])
                reset = ""
            await conn.execute(
                ("UPDATE deliveries SET state = 'pending', done_at = NULL, not_before = "
                 "CASE WHEN claimed_by IS NULL THEN %s ELSE least(not_before, %s) END"
                 + reset + " WHERE id = %s").encode(),
                [stamp, stamp, delivery_row])
            return True

    # -- retention ----------------------------------------------------------------------

    async def prune(self, older_than: datetime) -> int:
        cutoff = older_than.timestamp()
        old = ("SELECT id FROM deliveries AS d WHERE state = 'done' AND received_at < %s "
               "AND NOT EXISTS (SELECT 1 FROM sync_actions AS a "
               "WHERE a.delivery_row = d.id AND a.state = 'dead')")
        async with self._database.transaction() as conn:
            # Retention may delete a large backlog at once: this transaction only runs with a
            # longer statement timeout than the pool's (which would cancel it every time).
            await conn.execute(f"SET LOCAL statement_timeout = {PRUNE_STATEMENT_TIMEOUT_MS}"
                               .encode())
            gone = (await conn.execute("DELETE FROM sync_journal WHERE at < %s",
                                       [cutoff])).rowcount
            for table, column in (("sync_actions", "delivery_row"),
                                  ("sync_plans", "delivery_row"), ("deliveries", "id")):
                cursor = await conn.execute(
                    f"DELETE FROM {table} WHERE {column} IN ({old})".encode(), [cutoff])
                gone += cursor.rowcount
        return gone

    # -- workers ------------------------------------------------------------------------

    async def beat(self, worker: str, now: datetime) -> None:
        async with self._database.connection() as conn:
            await conn.execute(
                "INSERT INTO sync_workers (worker, seen_at) VALUES (%s, %s) "
                "ON CONFLICT (worker) DO UPDATE SET seen_at = excluded.seen_at",
                [worker, now.timestamp()])

    async def forget_worker(self, worker: str) -> None:
        async with self._database.connection() as conn:
            await conn.execute("DELETE FROM sync_workers WHERE worker = %s", [worker])

    async def live_workers(self, since: datetime) -> int:
        row = await self._database.fetchone(
            "SELECT count(*) FROM sync_workers WHERE seen_at >= %s", [since.timestamp()])
        assert row is not None
        return int(row[0])


# -- helpers ------------------------------------------------------------------------------


def _check_finish(change: Finish) -> None:
    if change.state not in (ActionState.DONE, ActionState.SKIPPED):
        raise ValueError("finish() takes DONE or SKIPPED")


async def _finish(conn: Connection, change: Finish) -> bool:
    """A pending action done or skipped, its journal entry and watermark (W6, W9)."""
    cursor = await conn.execute(
        "UPDATE sync_actions SET state = %s, finished_at = %s "
        "WHERE id = %s AND state = 'pending'",
        [change.state.value, change.entry.at.timestamp(), change.action_id])
    if cursor.rowcount != 1:
        return False
    await _journal(conn, [change.entry])
    if change.advance is not None:
        await _advance(conn, change.advance)
    return True


async def _settle(conn: Connection, change: Settle) -> datetime | None:
    """The delivery done, or released until its earliest pending action is due."""
    delivery_row, owner = change.delivery_row, change.owner
    cursor = await conn.execute(
        "SELECT min(not_before) FROM sync_actions "
        "WHERE delivery_row = %s AND state = 'pending'", [delivery_row])
    row = await cursor.fetchone()
    due = None if row is None else row[0]
    if due is None:
        await conn.execute(
            "UPDATE deliveries SET state = 'done', "
            "done_at = floor(extract(epoch FROM now())), "
            "claimed_by = NULL, claimed_until = NULL "
            "WHERE id = %s AND claimed_by = %s AND state = 'pending'",
            [delivery_row, owner])
        return None
    await conn.execute(
        "UPDATE deliveries SET claimed_by = NULL, claimed_until = NULL, "
        "not_before = %s WHERE id = %s AND claimed_by = %s AND state = 'pending'",
        [due, delivery_row, owner])
    return _dt(due)


async def _watermark(conn: Connection, key: WatermarkKey) -> Watermark | None:
    cursor = await conn.execute(
        "SELECT updated, delivery_id FROM sync_watermarks "
        "WHERE tenant_id = %s AND issue_id = %s AND org = %s AND kind = %s",
        [key.tenant_id, key.issue_id, key.org, key.kind.value])
    row = await cursor.fetchone()
    if row is None:
        return None
    return Watermark(updated=datetime.fromisoformat(row[0]), delivery_id=row[1])


async def _advance(conn: Connection, advance: WatermarkAdvance) -> None:
    """Store the watermark unless a newer one is there already (never moved backwards)."""
    current = await _watermark(conn, advance.key)
    if current is not None and advance.watermark.updated < current.updated:
        return
    key = advance.key
    await conn.execute(
        "INSERT INTO sync_watermarks (tenant_id, issue_id, org, kind, updated, delivery_id) "
        "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (tenant_id, issue_id, org, kind) "
        "DO UPDATE SET updated = excluded.updated, delivery_id = excluded.delivery_id",
        [key.tenant_id, key.issue_id, key.org, key.kind.value,
         advance.watermark.updated.isoformat(), advance.watermark.delivery_id])


async def _journal(conn: Connection, entries: Sequence[JournalEntry]) -> None:
    if not entries:
        return
    async with conn.cursor() as cursor:
        await cursor.executemany(
            "INSERT INTO sync_journal (tenant_id, at, delivery_id, issue_key, org, kind, "
            "outcome, detail) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            [(e.tenant_id, e.at.timestamp(), e.delivery_id, e.issue_key, e.org, e.kind.value,
              e.outcome.value, e.detail) for e in entries])


async def _plan(conn: Connection, delivery_row: int) -> list[StoredAction] | None:
    # One statement: the plan's row (absent: not decided yet) and its actions, if any.
    columns = ", ".join(f"a.{c.strip()}" for c in _ACTION_COLUMNS.split(","))
    cursor = await conn.execute(
        f"SELECT {columns} FROM sync_plans AS p LEFT JOIN sync_actions AS a "
        "ON a.delivery_row = p.delivery_row AND a.kind <> 'delivery' "
        "WHERE p.delivery_row = %s ORDER BY a.position, a.id".encode(), [delivery_row])
    rows = await cursor.fetchall()
    if not rows:
        return None
    return [_action(row) for row in rows if row[0] is not None]


def _action(row: Sequence[Any]) -> StoredAction:
    (id_, delivery_row, position, kind, org, action, state, attempts, not_before, last_error,
     *_rest) = row
    return StoredAction(
        id=id_, delivery_row=delivery_row, position=position, kind=Kind(kind), org=org,
        record=json.loads(action), state=ActionState(state), attempts=attempts,
        not_before=_dt(not_before), last_error=last_error)


def _entry(row: Sequence[Any]) -> JournalEntry:
    at, tenant_id, delivery_id, issue_key, org, kind, outcome, detail = row
    return JournalEntry(at=_dt(at), tenant_id=tenant_id, delivery_id=delivery_id,
                        issue_key=issue_key, org=org, kind=Kind(kind), outcome=Outcome(outcome),
                        detail=detail)


def _dead_letter(row: Sequence[Any]) -> DeadLetter:
    (id_, _delivery_row, _position, kind, org, action, _state, attempts, _not_before,
     last_error, tenant_id, issue_key, finished_at) = row
    return DeadLetter(id=id_, tenant_id=tenant_id, org=org, issue_key=issue_key,
                      kind=Kind(kind), action=json.loads(action), attempts=attempts,
                      last_error=last_error or "", created_at=_dt(finished_at))
