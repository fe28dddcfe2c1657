"""PostgreSQL sync state (W5–W9): plans and actions, watermarks, journal, dead letters,
worker heartbeats — the same tables and rules as adapters/sqlite/sync_store.py, each change
of an action one transaction with its journal entry and watermark."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
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
        # One statement (#16): the plan row, its actions, the journal entries and the no-ops'
        # watermarks, each written only when this statement made the plan row — atomic on
        # its own, so no BEGIN/COMMIT round trips. A plan there already: read it, write none.
        stamp = at.timestamp()
        records = [dict(action.record) for action in actions]
        sql, params = _plan_statement(delivery, actions, records, entries, advances, stamp)
        async with self._database.connection() as conn:
            cursor = await conn.execute(sql, params)
            row = await cursor.fetchone()
            assert row is not None
            planned, ids = row
            if not planned:
                plan = await _plan(conn, delivery.id)
                assert plan is not None
                return plan
        return [StoredAction(
            id=id_, delivery_row=delivery.id, position=position, kind=action.kind,
            org=action.org, record=json.loads(json.dumps(record)), state=ActionState.PENDING,
            attempts=0, not_before=_dt(stamp))
            for position, (id_, action, record) in enumerate(zip(ids, actions, records,
                                                                 strict=True))]

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
        [finished] = await self.apply_batch([change])
        assert isinstance(finished, bool)
        return finished

    async def apply_batch(self, changes: Sequence[SyncChange]) -> list[bool | datetime | None]:
        """Issue 15 on PostgreSQL: the changes in one transaction (one commit, one WAL flush);
        a refused change is refused before anything is written."""
        for change in changes:
            if isinstance(change, Finish):
                _check_finish(change)
        if not changes:
            return []
        # The worker's batches — an outcome, a settle, or an outcome then its delivery's
        # settle — are one statement (#16): atomic by itself, no BEGIN/COMMIT round trips.
        single = _one_statement(changes)
        if single is not None:
            sql, params, read = single
            async with self._database.connection() as conn:
                row = await (await conn.execute(sql, params)).fetchone()
            assert row is not None
            return read(row)
        async with self._database.transaction() as conn:
            results: list[bool | datetime | None] = []
            for change in changes:
                sql, params, read = _statement([change])
                row = await (await conn.execute(sql, params)).fetchone()
                assert row is not None
                results += read(row)
            return results

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
        [due] = await self.apply_batch([Settle(delivery_row, owner)])
        assert not isinstance(due, bool)
        return due

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


Read = Callable[[Sequence[Any]], list[bool | datetime | None]]

_JOURNAL_INSERT = ("INSERT INTO sync_journal (tenant_id, at, delivery_id, issue_key, org, kind, "
                   "outcome, detail) ")
# A watermark is never moved backwards (W6): an older one than the stored one changes nothing;
# an equal one replaces it (as the sequential read-compare-write did). The column holds ISO
# 8601 text with its offset: compared as instants, not as text.
_WATERMARK_UPSERT = (
    "INSERT INTO sync_watermarks AS w (tenant_id, issue_id, org, kind, updated, delivery_id) "
    "{select} ON CONFLICT (tenant_id, issue_id, org, kind) DO UPDATE SET "
    "updated = excluded.updated, delivery_id = excluded.delivery_id "
    "WHERE excluded.updated::timestamptz >= w.updated::timestamptz")


def _journal_columns(entries: Sequence[JournalEntry], prefix: str) -> dict[str, list[Any]]:
    return {f"{prefix}tenant": [e.tenant_id for e in entries],
            f"{prefix}at": [e.at.timestamp() for e in entries],
            f"{prefix}delivery": [e.delivery_id for e in entries],
            f"{prefix}key": [e.issue_key for e in entries],
            f"{prefix}org": [e.org for e in entries],
            f"{prefix}kind": [e.kind.value for e in entries],
            f"{prefix}outcome": [e.outcome.value for e in entries],
            f"{prefix}detail": [e.detail for e in entries]}


def _journal_unnest(prefix: str) -> str:
    """The rows of `_journal_columns(…, prefix)`, in the order given."""
    p = prefix
    return (f"unnest(%({p}tenant)s::bigint[], %({p}at)s::double precision[], "
            f"%({p}delivery)s::text[], %({p}key)s::text[], %({p}org)s::text[], "
            f"%({p}kind)s::text[], %({p}outcome)s::text[], %({p}detail)s::text[]) "
            "WITH ORDINALITY AS j (tenant_id, at, delivery_id, issue_key, org, kind, outcome, "
            "detail, n)")


def _latest(advances: Sequence[WatermarkAdvance]) -> list[WatermarkAdvance]:
    """One advance per key: what applying them in order would leave (never backwards)."""
    kept: dict[WatermarkKey, WatermarkAdvance] = {}
    for advance in advances:
        current = kept.get(advance.key)
        if current is None or advance.watermark.updated >= current.watermark.updated:
            kept[advance.key] = advance
    return list(kept.values())


def _watermark_columns(advances: Sequence[WatermarkAdvance]) -> dict[str, list[Any]]:
    return {"w_tenant": [a.key.tenant_id for a in advances],
            "w_issue": [a.key.issue_id for a in advances],
            "w_org": [a.key.org for a in advances],
            "w_kind": [a.key.kind.value for a in advances],
            "w_updated": [a.watermark.updated.isoformat() for a in advances],
            "w_delivery": [a.watermark.delivery_id for a in advances]}


_WATERMARK_UNNEST = ("unnest(%(w_tenant)s::bigint[], %(w_issue)s::text[], %(w_org)s::text[], "
                     "%(w_kind)s::text[], %(w_updated)s::text[], %(w_delivery)s::text[]) "
                     "AS x (tenant_id, issue_id, org, kind, updated, delivery_id)")


def _plan_statement(delivery: ClaimedDelivery, actions: Sequence[NewAction],
                    records: Sequence[dict[str, Any]], entries: Sequence[JournalEntry],
                    advances: Sequence[WatermarkAdvance], stamp: float
                    ) -> tuple[bytes, dict[str, Any]]:
    """`save_plan` as one statement: (planned 0/1, the actions' ids by position)."""
    latest = _latest(advances)
    params: dict[str, Any] = {
        "row": delivery.id, "at": stamp, "tenant": delivery.tenant_id,
        "delivery": delivery.delivery_id, "key": delivery.issue_key,
        "a_kind": [a.kind.value for a in actions], "a_org": [a.org for a in actions],
        "a_action": [json.dumps(record) for record in records],
        **_journal_columns(entries, "j_"), **_watermark_columns(latest)}
    parts = [
        "WITH p AS (INSERT INTO sync_plans (delivery_row, planned_at) VALUES (%(row)s, %(at)s) "
        "ON CONFLICT (delivery_row) DO NOTHING RETURNING delivery_row)",
        "a AS (INSERT INTO sync_actions (delivery_row, tenant_id, delivery_id, issue_key, "
        "position, kind, org, action, state, not_before, created_at) "
        "SELECT p.delivery_row, %(tenant)s, %(delivery)s, %(key)s, x.n - 1, x.kind, x.org, "
        "x.action, 'pending', %(at)s, %(at)s FROM p, unnest(%(a_kind)s::text[], "
        "%(a_org)s::text[], %(a_action)s::text[]) WITH ORDINALITY AS x (kind, org, action, n) "
        "ORDER BY x.n RETURNING id, position)",
    ]
    if entries:
        parts.append("j AS (" + _JOURNAL_INSERT + "SELECT j.tenant_id, j.at, j.delivery_id, "
                     "j.issue_key, j.org, j.kind, j.outcome, j.detail FROM p, "
                     + _journal_unnest("j_") + " ORDER BY j.n)")
    if latest:
        parts.append("w AS (" + _WATERMARK_UPSERT.format(
            select="SELECT x.* FROM p, " + _WATERMARK_UNNEST) + ")")
    sql = (", ".join(parts) + " SELECT (SELECT count(*) FROM p), "
           "(SELECT coalesce(array_agg(id ORDER BY position), '{}') FROM a)")
    return sql.encode(), params


def _one_statement(changes: Sequence[SyncChange]
                   ) -> tuple[bytes, dict[str, Any], Read] | None:
    """The batches that fit one statement: [Finish], [Settle], [Finish, Settle]."""
    if len(changes) == 1 or (len(changes) == 2 and isinstance(changes[0], Finish)
                             and isinstance(changes[1], Settle)):
        return _statement(changes)
    return None


def _statement(changes: Sequence[SyncChange]) -> tuple[bytes, dict[str, Any], Read]:
    """One statement for a Finish, a Settle, or a Finish then a Settle.

    All of one statement sees one snapshot: the settle's earliest pending action leaves out
    the action the finish ends (were it not pending, it would not count either)."""
    finish = next((c for c in changes if isinstance(c, Finish)), None)
    settle = next((c for c in changes if isinstance(c, Settle)), None)
    parts: list[str] = []
    params: dict[str, Any] = {}
    selected: list[str] = []
    if finish is not None:
        params.update({"a_id": finish.action_id, "a_state": finish.state.value,
                       "a_at": finish.entry.at.timestamp(),
                       **_journal_columns([finish.entry], "j_")})
        parts.append("a AS (UPDATE sync_actions SET state = %(a_state)s, "
                     "finished_at = %(a_at)s WHERE id = %(a_id)s AND state = 'pending' "
                     "RETURNING id)")
        parts.append("j AS (" + _JOURNAL_INSERT + "SELECT j.tenant_id, j.at, j.delivery_id, "
                     "j.issue_key, j.org, j.kind, j.outcome, j.detail FROM a, "
                     + _journal_unnest("j_") + ")")
        if finish.advance is not None:
            params.update(_watermark_columns([finish.advance]))
            parts.append("w AS (" + _WATERMARK_UPSERT.format(
                select="SELECT x.* FROM a, " + _WATERMARK_UNNEST) + ")")
        selected.append("(SELECT count(*) FROM a)")
    if settle is not None:
        params.update({"s_row": settle.delivery_row, "s_owner": settle.owner,
                       "s_ended": -1 if finish is None else finish.action_id})
        parts.append("due AS (SELECT min(not_before) AS at FROM sync_actions "
                     "WHERE delivery_row = %(s_row)s AND state = 'pending' "
                     "AND id <> %(s_ended)s)")
        parts.append("s AS (UPDATE deliveries AS d SET "
                     "state = CASE WHEN due.at IS NULL THEN 'done' ELSE d.state END, "
                     "done_at = CASE WHEN due.at IS NULL "
                     "THEN floor(extract(epoch FROM now())) ELSE d.done_at END, "
                     "not_before = coalesce(due.at, d.not_before), "
                     "claimed_by = NULL, claimed_until = NULL FROM due "
                     "WHERE d.id = %(s_row)s AND d.claimed_by = %(s_owner)s "
                     "AND d.state = 'pending')")
        selected.append("(SELECT at FROM due)")
    sql = "WITH " + ", ".join(parts) + " SELECT " + ", ".join(selected)

    def read(row: Sequence[Any]) -> list[bool | datetime | None]:
        out: list[bool | datetime | None] = []
        values = list(row)
        if finish is not None:
            out.append(int(values.pop(0)) == 1)
        if settle is not None:
            due = values.pop(0)
            out.append(None if due is None else _dt(due))
        return out

    return sql.encode(), params, read


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
