"""In-memory sync state with the semantics of `adapters/sqlite/sync_store.py`.

It shares a `MemoryInbox` so that finishing or re-queueing a delivery happens together with
its actions, as the SQLite transactions do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs

from adapters.memory.inbox import MemoryInbox
from core.model.sync import Kind, Watermark, WatermarkAdvance, WatermarkKey
from ports.inbox import ClaimedDelivery
from ports.journal import JOURNAL_MAX_LIMIT, DeadLetter
from ports.sync_store import (
    ActionState,
    Finish,
    JournalEntry,
    NewAction,
    StoredAction,
    SyncChange,
)


@attrs.define
class _Action:
    id: int
    delivery_row: int
    tenant_id: int
    delivery_id: str
    issue_key: str
    position: int
    kind: Kind
    org: str | None
    record: dict[str, Any]
    state: ActionState
    attempts: int
    not_before: datetime
    created_at: datetime
    last_error: str | None = None
    finished_at: datetime | None = None

    def stored(self) -> StoredAction:
        return StoredAction(
            id=self.id, delivery_row=self.delivery_row, position=self.position, kind=self.kind,
            org=self.org, record=_copy(self.record), state=self.state, attempts=self.attempts,
            not_before=self.not_before, last_error=self.last_error,
        )


def _copy(record: Mapping[str, Any]) -> dict[str, Any]:
    return {k: dict(v) if isinstance(v, Mapping) else v for k, v in record.items()}


class MemorySyncStore:
    """`SyncStore`, `Journal` and `WorkerUpkeep` in memory, as `SqliteSyncStore` is."""

    def __init__(self, inbox: MemoryInbox | None = None) -> None:
        self.inbox = inbox or MemoryInbox()
        self._plans: set[int] = set()
        self._actions: dict[int, _Action] = {}
        self._watermarks: dict[WatermarkKey, Watermark] = {}
        self._journal = self.inbox.journal  # one journal: the inbox adds its duplicates
        self._workers: dict[str, datetime] = {}
        self._last_id = 0

    async def watermarks(self, keys: Iterable[WatermarkKey]) -> dict[WatermarkKey, Watermark]:
        return {k: self._watermarks[k] for k in keys if k in self._watermarks}

    async def plan_of(self, delivery_row: int) -> list[StoredAction] | None:
        return self._plan(delivery_row)

    async def save_plan(
        self,
        delivery: ClaimedDelivery,
        *,
        actions: Sequence[NewAction],
        entries: Sequence[JournalEntry],
        advances: Sequence[WatermarkAdvance],
        at: datetime,
    ) -> list[StoredAction]:
        if delivery.id not in self._plans:
            self._plans.add(delivery.id)
            for position, action in enumerate(actions):
                self._add(delivery, position, action.kind, action.org, _copy(action.record),
                          ActionState.PENDING, at)
            self._journal.extend(entries)
            for advance in advances:
                self._advance(advance)
        plan = self._plan(delivery.id)
        assert plan is not None
        return plan

    async def finish(
        self,
        action_id: int,
        *,
        state: ActionState,
        entry: JournalEntry,
        advance: WatermarkAdvance | None = None,
    ) -> bool:
        if state not in (ActionState.DONE, ActionState.SKIPPED):
            raise ValueError("finish() takes DONE or SKIPPED")
        action = self._pending(action_id)
        if action is None:
            return False
        action.state, action.finished_at = state, entry.at
        self._journal.append(entry)
        if advance is not None:
            self._advance(advance)
        return True

    async def postpone(
        self,
        action_id: int,
        *,
        entry: JournalEntry,
        error: str,
        not_before: datetime,
        record: Mapping[str, Any] | None = None,
    ) -> bool:
        action = self._pending(action_id)
        if action is None:
            return False
        action.attempts += 1
        action.last_error, action.not_before = error, not_before
        if record is not None:
            action.record = _copy(record)
        self._journal.append(entry)
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
        action = self._pending(action_id)
        if action is None:
            return False
        action.attempts += 1
        action.state, action.last_error, action.finished_at = ActionState.DEAD, error, at
        if record is not None:
            action.record = _copy(record)
        self._journal.append(entry)
        return True

    async def bury_delivery(
        self, delivery: ClaimedDelivery, owner: str, *, entry: JournalEntry, error: str,
        at: datetime,
    ) -> bool:
        if not self.inbox.holds(delivery.id, owner):
            return False
        self.inbox.finish(delivery.id)
        record = {"delivery_id": delivery.delivery_id, "issue_id": delivery.issue_id,
                  "issue_key": delivery.issue_key}
        action = self._add(delivery, -1, Kind.DELIVERY, None, record, ActionState.DEAD, at)
        action.attempts, action.last_error, action.finished_at = delivery.attempts + 1, error, at
        self._journal.append(entry)
        return True

    async def settle(self, delivery_row: int, owner: str) -> datetime | None:
        pending = [a.not_before for a in self._actions.values()
                   if a.delivery_row == delivery_row and a.state is ActionState.PENDING]
        holds = self.inbox.holds(delivery_row, owner)
        if not pending:
            if holds:
                self.inbox.finish(delivery_row)
            return None
        due = min(pending)
        if holds:
            self.inbox.give_back(delivery_row, due)
        return due

    async def apply_batch(self, changes: Sequence[SyncChange]) -> list[bool | datetime | None]:
        """In order; atomic as every change here is (no await between them)."""
        for change in changes:
            if isinstance(change, Finish) and change.state not in (ActionState.DONE,
                                                                   ActionState.SKIPPED):
                raise ValueError("finish() takes DONE or SKIPPED")
        results: list[bool | datetime | None] = []
        for change in changes:
            if isinstance(change, Finish):
                results.append(await self.finish(change.action_id, state=change.state,
                                                 entry=change.entry, advance=change.advance))
            else:
                results.append(await self.settle(change.delivery_row, change.owner))
        return results

    async def record(self, entries: Sequence[JournalEntry]) -> None:
        self._journal.extend(entries)

    async def journal(
        self, tenant_id: int, *, issue_key: str | None = None, limit: int = 50
    ) -> list[JournalEntry]:
        found = [e for e in reversed(self._journal)
                 if e.tenant_id == tenant_id and issue_key in (None, e.issue_key)]
        return found[:limit]

    async def dead_letters(
        self, *, limit: int = JOURNAL_MAX_LIMIT, tenant_id: int | None = None
    ) -> list[DeadLetter]:
        dead = [a for a in self._actions.values() if a.state is ActionState.DEAD
                and tenant_id in (None, a.tenant_id)]
        dead.sort(key=lambda a: (a.finished_at, a.id), reverse=True)
        return [
            DeadLetter(
                id=a.id, tenant_id=a.tenant_id, org=a.org, issue_key=a.issue_key, kind=a.kind,
                action=_copy(a.record), attempts=a.attempts, last_error=a.last_error or "",
                created_at=a.finished_at or a.created_at,
            )
            for a in dead[:limit]
        ]

    async def dead_letter_count(self) -> int:
        return sum(1 for a in self._actions.values() if a.state is ActionState.DEAD)

    async def retry_dead_letter(
        self, id: int, *, now: datetime, tenant_id: int | None = None
    ) -> bool:
        action = self._actions.get(id)
        if action is None or action.state is not ActionState.DEAD:
            return False
        if tenant_id is not None and action.tenant_id != tenant_id:
            return False
        if action.kind is Kind.DELIVERY:
            action.state = ActionState.RETRIED
            self.inbox.requeue(action.delivery_row, now, reset_attempts=True)
        else:
            action.state, action.attempts, action.not_before = ActionState.PENDING, 0, now
            action.finished_at = None
            self.inbox.requeue(action.delivery_row, now, reset_attempts=False)
        return True

    async def prune(self, older_than: datetime) -> int:
        before = len(self._journal)
        self._journal[:] = [e for e in self._journal if e.at >= older_than]
        keep = {a.delivery_row for a in self._actions.values() if a.state is ActionState.DEAD}
        gone_rows = set(self.inbox.forget_done_before(older_than, keep))
        gone_actions = [i for i, a in self._actions.items() if a.delivery_row in gone_rows]
        for action_id in gone_actions:
            del self._actions[action_id]
        self._plans -= gone_rows
        return before - len(self._journal) + len(gone_actions) + 2 * len(gone_rows)

    async def beat(self, worker: str, now: datetime) -> None:
        self._workers[worker] = now

    async def forget_worker(self, worker: str) -> None:
        self._workers.pop(worker, None)

    async def live_workers(self, since: datetime) -> int:
        return sum(1 for seen in self._workers.values() if seen >= since)

    # -- internals

    def _add(self, delivery: ClaimedDelivery, position: int, kind: Kind, org: str | None,
             record: dict[str, Any], state: ActionState, at: datetime) -> _Action:
        self._last_id += 1
        action = _Action(
            id=self._last_id, delivery_row=delivery.id, tenant_id=delivery.tenant_id,
            delivery_id=delivery.delivery_id, issue_key=delivery.issue_key, position=position,
            kind=kind, org=org, record=record, state=state, attempts=0, not_before=at,
            created_at=at,
        )
        self._actions[action.id] = action
        return action

    def _pending(self, action_id: int) -> _Action | None:
        action = self._actions.get(action_id)
        return action if action is not None and action.state is ActionState.PENDING else None

    def _plan(self, delivery_row: int) -> list[StoredAction] | None:
        if delivery_row not in self._plans:
            return None
        actions = [a for a in self._actions.values()
                   if a.delivery_row == delivery_row and a.kind is not Kind.DELIVERY]
        return [a.stored() for a in sorted(actions, key=lambda a: (a.position, a.id))]

    def _advance(self, advance: WatermarkAdvance) -> None:
        current = self._watermarks.get(advance.key)
        if current is not None and advance.watermark.updated < current.updated:
            return
        self._watermarks[advance.key] = advance.watermark
