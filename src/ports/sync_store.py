"""The sync state port (W5–W9).

What the worker keeps about each delivery once it has been decided: its *plan* (the re-keys
and Sentry writes, each an action with a state) and the W6 watermarks. Every method that
changes an action is one write transaction that also journals the decision, dead-letters the
action when it failed for good and, when it was applied, advances its watermark — so a retry
after success never writes again (W9). Reading the journal and the dead letters, and
retrying one, is the `Journal` port (ports/journal.py).

The store also completes or releases the delivery in the inbox when that must be atomic with
the actions' state (`settle`, `bury_delivery`): the inbox and the sync state live in one
database.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

import attrs

from core.model.sync import Kind, Outcome, Watermark, WatermarkAdvance, WatermarkKey
from ports.inbox import ClaimedDelivery


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


# -- several changes in one transaction (issue 15) -------------------------------------------


@attrs.frozen
class Finish:
    """`SyncStore.finish` as a batch item."""

    action_id: int
    state: ActionState
    entry: JournalEntry
    advance: WatermarkAdvance | None = None


@attrs.frozen
class Settle:
    """`SyncStore.settle` as a batch item."""

    delivery_row: int
    owner: str


SyncChange = Finish | Settle


class BatchingSyncStore(SyncStore, Protocol):
    """A SyncStore that can apply several changes in one transaction (optional: see
    `apply_batch`, which falls back to one call per change for a store without it)."""

    async def apply_batch(self, changes: Sequence[SyncChange]) -> list[bool | datetime | None]:
        """Apply `changes` in order, in one transaction; each result is what its own method
        (`finish`, `settle`) would return. An error rolls every change back."""
        ...


async def apply_batch(store: SyncStore,
                      changes: Sequence[SyncChange]) -> list[bool | datetime | None]:
    """`changes` in one transaction when the store offers `apply_batch`; otherwise each by its
    own method, in order (the same results, one transaction each, as before batching)."""
    batch = getattr(store, "apply_batch", None)
    if batch is not None:
        results: list[bool | datetime | None] = await batch(changes)
        return results
    out: list[bool | datetime | None] = []
    for change in changes:
        if isinstance(change, Finish):
            out.append(await store.finish(change.action_id, state=change.state,
                                          entry=change.entry, advance=change.advance))
        else:
            out.append(await store.settle(change.delivery_row, change.owner))
    return out
