"""The sync state port (W5–W9, §A journal and dead letters).

What the worker keeps about each delivery once it has been decided: its *plan* (the re-keys
and Sentry writes, each an action with a state), the W6 watermarks, the journal, and the dead
letters (actions that failed for good). Every method that changes an action is one write
transaction that also journals the decision and, when the action was applied, advances its
watermark — so a retry after success never writes again (W9).

The store also completes or releases the delivery in the inbox when that must be atomic with
the actions' state (`settle`, `bury_delivery`, `retry_dead_letter`): the inbox and the sync
state live in one database.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

import attrs

from core.model.sync import Kind, Outcome, Watermark, WatermarkAdvance, WatermarkKey
from ports.inbox import ClaimedDelivery

JOURNAL_DEFAULT_LIMIT = 50
JOURNAL_MAX_LIMIT = 500


class ActionState(enum.StrEnum):
    PENDING = "pending"  # to attempt (due at `not_before`)
    DONE = "done"  # applied: Sentry accepted the write, or the links were re-keyed
    SKIPPED = "skipped"  # finished without a write: stale, no-op, org unbound
    DEAD = "dead"  # a dead letter, until an admin retries it
    RETRIED = "retried"  # a delivery-level dead letter an admin re-queued


@attrs.frozen
class JournalEntry:
    """One decision (W9), as the journal shows it (§A)."""

    at: datetime
    tenant_id: int
    delivery_id: str
    issue_key: str
    org: str | None
    kind: Kind
    outcome: Outcome
    detail: str


@attrs.frozen
class NewAction:
    """An action of a plan: `record` is a re-key or `SentryWrite.to_record()` (JSON-safe)."""

    kind: Kind
    org: str | None
    record: Mapping[str, Any] = attrs.field(hash=False)


@attrs.frozen
class StoredAction:
    id: int
    delivery_row: int  # the inbox id of its delivery
    position: int  # order inside the plan: re-keys, then status, then assignee writes
    kind: Kind
    org: str | None
    record: Mapping[str, Any] = attrs.field(hash=False)
    state: ActionState
    attempts: int  # failed attempts so far
    not_before: datetime
    last_error: str | None = None


@attrs.frozen
class DeadLetter:
    """§A: an action that failed for good (or a delivery whose lookups did)."""

    id: int
    tenant_id: int
    org: str | None
    issue_key: str
    kind: Kind
    action: Mapping[str, Any] = attrs.field(hash=False)
    attempts: int
    last_error: str
    created_at: datetime


class SyncStore(Protocol):
    async def watermarks(self, keys: Iterable[WatermarkKey]) -> dict[WatermarkKey, Watermark]:
        """The stored watermarks of these keys (absent keys have none)."""
        ...

    async def plan_of(self, delivery_row: int) -> list[StoredAction] | None:
        """The stored plan of a delivery, by position; None when it was not decided yet."""
        ...

    async def save_plan(
        self,
        delivery: ClaimedDelivery,
        *,
        actions: Sequence[NewAction],
        entries: Sequence[JournalEntry],
        advances: Sequence[WatermarkAdvance],
        at: datetime,
    ) -> list[StoredAction]:
        """Store the plan, journal its final decisions and advance the no-ops' watermarks, in
        one transaction — once: when a plan exists already it is returned and nothing is
        written (a worker that lost its lease raced another)."""
        ...

    async def finish(
        self,
        action_id: int,
        *,
        state: ActionState,
        entry: JournalEntry,
        advance: WatermarkAdvance | None = None,
    ) -> bool:
        """A pending action is done or skipped: its state, the journal entry and the watermark
        (never moved backwards) in one transaction. False (nothing written) when the action
        is no longer pending."""
        ...

    async def postpone(
        self,
        action_id: int,
        *,
        entry: JournalEntry,
        error: str,
        not_before: datetime,
        record: Mapping[str, Any] | None = None,
    ) -> bool:
        """A failed attempt to retry at `not_before` (`retrying`); `record` replaces the action
        (the plain-resolve fallback). False when the action is no longer pending."""
        ...

    async def bury(
        self,
        action_id: int,
        *,
        entry: JournalEntry,
        error: str,
        at: datetime,
        record: Mapping[str, Any] | None = None,
    ) -> bool:
        """The action becomes a dead letter (`dead`). False when it is no longer pending."""
        ...

    async def bury_delivery(
        self, delivery: ClaimedDelivery, owner: str, *, entry: JournalEntry, error: str,
        at: datetime,
    ) -> bool:
        """The delivery could not be decided (its lookups failed for good): a dead letter of
        kind `delivery`, journalled, and the delivery finished — atomically, only while
        `owner` holds its lease."""
        ...

    async def settle(self, delivery_row: int, owner: str) -> datetime | None:
        """After a pass over a delivery's plan: finish the delivery when no action is pending
        (None), else give it back due at its earliest pending action (returned). Nothing is
        changed unless `owner` holds the lease."""
        ...

    async def record(self, entries: Sequence[JournalEntry]) -> None:
        """Journal decisions that change no state (a delivery-level `retrying`)."""
        ...

    async def journal(
        self, tenant_id: int, *, issue_key: str | None = None, limit: int = JOURNAL_DEFAULT_LIMIT
    ) -> list[JournalEntry]:
        """The tenant's journal, newest first, optionally for one issue key."""
        ...

    async def dead_letters(self, *, limit: int = JOURNAL_MAX_LIMIT) -> list[DeadLetter]:
        """Current dead letters, newest first."""
        ...

    async def dead_letter_count(self) -> int:
        ...

    async def retry_dead_letter(self, id: int, *, now: datetime) -> bool:
        """Re-queue a dead letter (its action pending again with fresh attempts, its delivery
        due now) in one transaction; False when there is no dead letter with this id."""
        ...

    async def prune(self, older_than: datetime) -> int:
        """Retention: forget journal entries, and finished deliveries with their actions,
        from before `older_than`. Dead letters and their deliveries are kept. Returns how
        many rows went."""
        ...

    async def beat(self, worker: str, now: datetime) -> None:
        """A running worker says it is alive (health)."""
        ...

    async def forget_worker(self, worker: str) -> None:
        """A worker stopped cleanly."""
        ...

    async def live_workers(self, since: datetime) -> int:
        """How many workers beat at or after `since`."""
        ...
