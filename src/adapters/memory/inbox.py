"""In-memory inbox with the same dedupe and lease semantics as SQLite."""

from __future__ import annotations

from datetime import datetime, timedelta

import attrs

from core.issue_update import Kind, Outcome
from ports.inbox import ClaimedDelivery, InboxStats, NewDelivery
from ports.sync_store import JournalEntry

# Same text as the SQLite inbox's (adapters/sqlite/inbox.py).
DUPLICATE_DETAIL = "the delivery was already accepted: nothing is done twice"


@attrs.define
class _Row:
    id: int
    delivery: NewDelivery
    not_before: datetime
    attempts: int = 0
    claimed_by: str | None = None
    claimed_until: datetime | None = None
    done: bool = False


class MemoryInbox:
    def __init__(self) -> None:
        self._rows: dict[int, _Row] = {}
        self._keys: set[tuple[int, str]] = set()
        self._duplicates_journalled: set[tuple[int, str]] = set()
        self._last_id = 0
        # W9: the journal a `MemorySyncStore` sharing this inbox reads (duplicates land here).
        self.journal: list[JournalEntry] = []

    async def record(self, delivery: NewDelivery) -> bool:
        key = (delivery.tenant_id, delivery.delivery_id)
        if key in self._keys:
            if key not in self._duplicates_journalled:  # the first duplicate only, as SQLite
                self._duplicates_journalled.add(key)
                self.journal.append(JournalEntry(
                    at=delivery.received_at, tenant_id=delivery.tenant_id,
                    delivery_id=delivery.delivery_id, issue_key=delivery.issue_key, org=None,
                    kind=Kind.DELIVERY, outcome=Outcome.DUPLICATE, detail=DUPLICATE_DETAIL))
            return False
        self._keys.add(key)
        self._last_id += 1
        row_id = self._last_id
        self._rows[row_id] = _Row(row_id, delivery, not_before=delivery.received_at)
        return True

    async def claim(self, owner: str, *, now: datetime, lease_seconds: float,
                    limit: int = 1) -> list[ClaimedDelivery]:
        busy = {(r.delivery.tenant_id, r.delivery.issue_id) for r in self._rows.values()
                if not r.done and r.claimed_until is not None and r.claimed_until > now}
        candidates = sorted(
            (r for r in self._rows.values()
             if not r.done and r.not_before <= now
             and (r.claimed_until is None or r.claimed_until <= now)),
            key=lambda r: (r.not_before, r.id))
        due: list[_Row] = []
        for row in candidates:  # one delivery per issue at a time (W6)
            issue = (row.delivery.tenant_id, row.delivery.issue_id)
            if issue not in busy and len(due) < limit:
                busy.add(issue)
                due.append(row)
        claimed = []
        for row in due:
            row.claimed_by = owner
            row.claimed_until = now + timedelta(seconds=lease_seconds)
            row.attempts += 1
            d = row.delivery
            claimed.append(ClaimedDelivery(
                id=row.id, tenant_id=d.tenant_id, delivery_id=d.delivery_id,
                issue_id=d.issue_id, issue_key=d.issue_key, body=d.body,
                received_at=d.received_at, attempts=row.attempts - 1,
                claimed_until=row.claimed_until))
        return claimed

    async def release(self, id: int, owner: str, *, not_before: datetime) -> bool:
        row = self._rows.get(id)
        if row is None or row.done or row.claimed_by != owner:
            return False
        row.claimed_by, row.claimed_until, row.not_before = None, None, not_before
        return True

    async def stats(self, now: datetime) -> InboxStats:
        pending = [r for r in self._rows.values() if not r.done]
        oldest = min((r.delivery.received_at for r in pending), default=None)
        age = None if oldest is None else max(0.0, (now - oldest).total_seconds())
        return InboxStats(pending=len(pending), oldest_pending_seconds=age)

    async def renew(self, id: int, owner: str, *, now: datetime, lease_seconds: float) -> bool:
        row = self._rows.get(id)
        if row is None or row.done or row.claimed_by != owner:
            return False
        row.claimed_until = now + timedelta(seconds=lease_seconds)
        return True

    # -- for MemorySyncStore, which changes a delivery atomically with its actions

    def holds(self, id: int, owner: str) -> bool:
        row = self._rows.get(id)
        return row is not None and not row.done and row.claimed_by == owner

    def finish(self, id: int) -> None:
        row = self._rows[id]
        row.done, row.claimed_by, row.claimed_until = True, None, None

    def give_back(self, id: int, not_before: datetime) -> None:
        row = self._rows[id]
        row.claimed_by, row.claimed_until, row.not_before = None, None, not_before

    def requeue(self, id: int, now: datetime, *, reset_attempts: bool) -> None:
        """Due again now (an admin retry); a lease still held is left alone."""
        row = self._rows[id]
        row.done = False
        row.not_before = min(row.not_before, now) if row.claimed_by else now
        if reset_attempts:
            row.attempts = 0

    def forget_done_before(self, older_than: datetime, keep: set[int]) -> list[int]:
        gone = [r.id for r in self._rows.values()
                if r.done and r.delivery.received_at < older_than and r.id not in keep]
        for row_id in gone:
            row = self._rows.pop(row_id)
            self._keys.discard((row.delivery.tenant_id, row.delivery.delivery_id))
            self._duplicates_journalled.discard(
                (row.delivery.tenant_id, row.delivery.delivery_id))
        return gone
