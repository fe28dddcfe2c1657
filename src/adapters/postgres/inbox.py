"""PostgreSQL inbox: the deliveries table is the dedupe record (W3) and the work queue (§9).

- `record` is one statement, one round trip: `INSERT … ON CONFLICT DO NOTHING` in
  autocommit, with `pg_notify` in the same statement when a row went in — every worker on the
  database (any machine) wakes on `LISTEN` (adapters/postgres/wakeups.py).
- `claim` takes due deliveries with `FOR UPDATE SKIP LOCKED` (claimers never wait for each
  other) and leases them. W6 needs one delivery per issue at a time across every worker: a
  transaction-scoped advisory lock per issue, then a fresh statement (a snapshot taken after
  the lock, so it sees any lease committed by the lock's previous holder) re-checks that no
  other delivery of the issue is leased before the lease is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec

from adapters.postgres.batching import Batcher
from adapters.postgres.database import Connection, PgDatabase
from adapters.sqlite.inbox import DUPLICATE_DETAIL
from ports.inbox import ClaimedDelivery, InboxStats, NewDelivery

CHANNEL = "sentry_jira_deliveries"

# The rows of a batch travel as ONE json parameter: psycopg dumps a list parameter element
# by element in Python (~40 µs a statement for the seven column arrays of 15 deliveries, on
# the acknowledgement path's one core), a string in C; the server reads the document once.
# The body, bytes, travels as base64 text (msgspec's encoding of bytes). Text values never
# hold NUL here (W2: core/issue_update/delivery.py refuses a control character in issue.id
# and issue.key; W3 refuses one in the delivery id): PostgreSQL text cannot hold it.
_ROWS = ("SELECT t, d, i, k, decode(b, 'base64') AS b, r{extra} FROM json_to_recordset(%s::json) "
         "AS rows (t bigint, d text, i text, k text, b text, r float8{extra_type})")

# One round trip for every delivery waiting (group commit, adapters/postgres/batching.py):
# the rows go in or are already there; the ones that went in are returned, and notify the
# workers (identical notifications of one transaction are delivered once).
_RECORD = (
    "WITH rows AS (" + _ROWS.format(extra="", extra_type="") + "), "
    "inserted AS (INSERT INTO deliveries (tenant_id, delivery_id, issue_id, issue_key, "
    "body, received_at, not_before) SELECT t, d, i, k, b, r, r FROM rows "
    "ON CONFLICT (tenant_id, delivery_id) DO NOTHING RETURNING tenant_id, delivery_id) "
    f"SELECT tenant_id, delivery_id, pg_notify('{CHANNEL}', '') FROM inserted"
).encode()

# The same, for deliveries verified against a remembered tenant (adapters/postgres/tenants.py,
# RememberedTenants): a row goes in only while its tenant still has the secret_version the
# token was verified with, and is installed. The answer names, per delivery, whether it went
# in ('new') or its tenant was current but the delivery already there ('current').
_RECORD_VERIFIED = (
    "WITH rows AS (" + _ROWS.format(extra=", v", extra_type=", v bigint") + "), "
    "current AS (SELECT rows.* FROM rows JOIN tenants ON tenants.id = rows.t "
    "AND tenants.secret_version = rows.v AND tenants.status = 'installed'), "
    "inserted AS (INSERT INTO deliveries (tenant_id, delivery_id, issue_id, issue_key, body, "
    "received_at, not_before) SELECT t, d, i, k, b, r, r FROM current "
    "ON CONFLICT (tenant_id, delivery_id) DO NOTHING RETURNING tenant_id, delivery_id) "
    f"SELECT tenant_id, delivery_id, 'new' FROM inserted, LATERAL pg_notify('{CHANNEL}', '') "
    "UNION ALL SELECT t, d, 'current' FROM current"
).encode()

_encode = msgspec.json.Encoder().encode  # bytes become base64 text (RFC 4648, padded)


def _row(delivery: NewDelivery) -> dict[str, Any]:
    return {"t": delivery.tenant_id, "d": delivery.delivery_id, "i": delivery.issue_id,
            "k": delivery.issue_key, "b": delivery.body,
            "r": delivery.received_at.timestamp()}


class TenantChanged(Exception):
    """The tenant's row moved on (rotation, uninstall) since the token was verified: verify
    again against a fresh read; nothing was recorded."""


# W9: the first duplicate of a recorded delivery is journalled, once (one statement).
_JOURNAL_FIRST_DUPLICATE = (
    b"WITH flagged AS (UPDATE deliveries SET duplicate_journalled = 1 "
    b"WHERE tenant_id = %s AND delivery_id = %s AND duplicate_journalled = 0 RETURNING id) "
    b"INSERT INTO sync_journal (tenant_id, at, delivery_id, issue_key, org, kind, outcome, "
    b"detail) SELECT %s, %s, %s, %s, NULL, 'delivery', 'duplicate', %s FROM flagged"
)

_LEASED_SAME_ISSUE = (
    "SELECT 1 FROM deliveries AS busy WHERE busy.tenant_id = d.tenant_id "
    "AND busy.issue_id = d.issue_id AND busy.claimed_until > %(at)s "
    "AND busy.state = 'pending' AND busy.id <> d.id"
)
_DUE = ("d.state = 'pending' AND d.not_before <= %(at)s "
        "AND (d.claimed_until IS NULL OR d.claimed_until <= %(at)s)")

_SCAN = (
    f"SELECT d.id, d.tenant_id, d.issue_id FROM deliveries AS d WHERE {_DUE} "
    f"AND NOT EXISTS ({_LEASED_SAME_ISSUE}) ORDER BY d.not_before, d.id LIMIT %(window)s "
    "FOR UPDATE OF d SKIP LOCKED"
).encode()

_ISSUE_LOCK = b"SELECT pg_try_advisory_xact_lock(%s::int, hashtext(%s))"

# W6 order inside an issue: a row another claimer holds locked (skipped by our scan) may be
# an earlier delivery of the same issue; never take a later one before it.
_EARLIER_OF_SAME_ISSUE = (
    "SELECT 1 FROM deliveries AS e WHERE e.tenant_id = d.tenant_id "
    "AND e.issue_id = d.issue_id AND e.state = 'pending' "
    "AND (e.not_before, e.id) < (d.not_before, d.id)"
)

_CLAIM_ONE = (
    "UPDATE deliveries AS d SET claimed_by = %(owner)s, claimed_until = %(until)s, "
    f"attempts = attempts + 1 WHERE d.id = %(id)s AND {_DUE} "
    f"AND NOT EXISTS ({_LEASED_SAME_ISSUE}) AND NOT EXISTS ({_EARLIER_OF_SAME_ISSUE}) "
    "RETURNING id, tenant_id, delivery_id, issue_id, issue_key, body, received_at, attempts, "
    "claimed_until"
).encode()


def _first_per_issue(rows: Sequence[Sequence[Any]], limit: int) -> list[tuple[int, int, str]]:
    taken: set[tuple[int, str]] = set()
    picked: list[tuple[int, int, str]] = []
    for row_id, tenant_id, issue_id in rows:
        if len(picked) >= limit:
            break
        if (tenant_id, issue_id) not in taken:
            taken.add((tenant_id, issue_id))
            picked.append((row_id, tenant_id, issue_id))
    return picked


def _dt(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class PgInbox:
    def __init__(self, database: PgDatabase) -> None:
        self._database = database
        self._records: Batcher[Connection, NewDelivery, bool] = Batcher(
            self._record_all, session=database.connection)
        self._verified: Batcher[Connection, tuple[NewDelivery, int], bool | None] = Batcher(
            self._record_verified_all, session=database.connection)

    async def record_verified(self, delivery: NewDelivery, secret_version: int) -> bool:
        """`record`, only while the tenant still has `secret_version` (one round trip: the
        check rides on the insert); `TenantChanged` when it has not."""
        recorded = await self._verified.submit((delivery, secret_version))
        if recorded is None:
            raise TenantChanged
        return recorded

    async def _record_verified_all(
        self, conn: Connection, items: Sequence[tuple[NewDelivery, int]]
    ) -> list[bool | None]:
        first: dict[tuple[int, str], int] = {}
        for index, (delivery, _) in enumerate(items):
            first.setdefault((delivery.tenant_id, delivery.delivery_id), index)
        unique = []
        for index in first.values():
            delivery, version = items[index]
            row = _row(delivery)
            row["v"] = version
            unique.append(row)
        cursor = await conn.execute(_RECORD_VERIFIED, (_encode(unique).decode(),), prepare=True)
        rows = await cursor.fetchall()
        new = {(t, d) for t, d, what in rows if what == "new"}
        current = {(t, d) for t, d, what in rows if what == "current"}
        answers: list[bool | None] = []
        for index, (delivery, _) in enumerate(items):
            key = (delivery.tenant_id, delivery.delivery_id)
            if key not in current:
                answers.append(None)  # the tenant moved on: verify again
            elif key in new and first[key] == index:
                answers.append(True)
            else:
                answers.append(False)
                await conn.execute(_JOURNAL_FIRST_DUPLICATE, (
                    delivery.tenant_id, delivery.delivery_id, delivery.tenant_id,
                    delivery.received_at.timestamp(), delivery.delivery_id,
                    delivery.issue_key, DUPLICATE_DETAIL))
        return answers

    async def record(self, delivery: NewDelivery) -> bool:
        return await self._records.submit(delivery)

    async def _record_all(self, conn: Connection,
                          deliveries: Sequence[NewDelivery]) -> list[bool]:
        """Insert a batch in one statement; True for each delivery that went in. A delivery
        twice in one batch goes in once (its first copy)."""
        first: dict[tuple[int, str], int] = {}
        for index, delivery in enumerate(deliveries):
            first.setdefault((delivery.tenant_id, delivery.delivery_id), index)
        rows = [_row(deliveries[index]) for index in first.values()]
        cursor = await conn.execute(_RECORD, (_encode(rows).decode(),), prepare=True)
        inserted = {(row[0], row[1]) for row in await cursor.fetchall()}
        accepted = [(d.tenant_id, d.delivery_id) in inserted
                    and first[(d.tenant_id, d.delivery_id)] == index
                    for index, d in enumerate(deliveries)]
        for delivery, new in zip(deliveries, accepted, strict=True):
            if not new:  # W9: the first duplicate of a delivery is journalled, once
                await conn.execute(_JOURNAL_FIRST_DUPLICATE, (
                    delivery.tenant_id, delivery.delivery_id, delivery.tenant_id,
                    delivery.received_at.timestamp(), delivery.delivery_id,
                    delivery.issue_key, DUPLICATE_DETAIL))
        return accepted

    async def claim(self, owner: str, *, now: datetime, lease_seconds: float,
                    limit: int = 1) -> list[ClaimedDelivery]:
        at = now.timestamp()
        until = at + lease_seconds
        claimed: list[ClaimedDelivery] = []
        async with self._database.transaction() as conn:
            cursor = await conn.execute(_SCAN, {"at": at, "window": limit * 4})
            for row_id, tenant_id, issue_id in _first_per_issue(await cursor.fetchall(), limit):
                cursor = await conn.execute(_ISSUE_LOCK, (tenant_id, issue_id))
                locked = await cursor.fetchone()
                if locked is None or not locked[0]:
                    continue  # another worker is claiming this issue right now
                cursor = await conn.execute(
                    _CLAIM_ONE, {"owner": owner, "until": until, "id": row_id, "at": at})
                row = await cursor.fetchone()
                if row is not None:
                    claimed.append(_claimed_row(row))
        return claimed

    async def renew(self, id: int, owner: str, *, now: datetime, lease_seconds: float) -> bool:
        async with self._database.connection() as conn:
            cursor = await conn.execute(
                "UPDATE deliveries SET claimed_until = %s "
                "WHERE id = %s AND claimed_by = %s AND state = 'pending'",
                (now.timestamp() + lease_seconds, id, owner))
            return cursor.rowcount == 1

    async def release(self, id: int, owner: str, *, not_before: datetime) -> bool:
        async with self._database.connection() as conn:
            cursor = await conn.execute(
                "UPDATE deliveries SET claimed_by = NULL, claimed_until = NULL, "
                "not_before = %s WHERE id = %s AND claimed_by = %s AND state = 'pending'",
                (not_before.timestamp(), id, owner))
            return cursor.rowcount == 1

    async def stats(self, now: datetime) -> InboxStats:
        row = await self._database.fetchone(
            "SELECT count(*), min(received_at) FROM deliveries WHERE state = 'pending'")
        assert row is not None
        count, oldest = row
        age = None if oldest is None else max(0.0, now.timestamp() - oldest)
        return InboxStats(pending=int(count), oldest_pending_seconds=age)


def _claimed_row(row: Sequence[Any]) -> ClaimedDelivery:
    (row_id, tenant_id, delivery_id, issue_id, issue_key, body, received_at, attempts,
     claimed_until) = row
    return ClaimedDelivery(
        id=row_id, tenant_id=tenant_id, delivery_id=delivery_id, issue_id=issue_id,
        issue_key=issue_key, body=bytes(body), received_at=_dt(received_at),
        attempts=attempts - 1, claimed_until=_dt(claimed_until),
    )
