"""The journal port (§A journal and dead letters, W9).

What an operator reads and acts on: the decisions the worker journalled, the dead letters
(actions, or deliveries, that failed for good) and their retry. The worker writes the
state-changing entries through `SyncStore`, atomically with the action they describe; only
decisions that change no state are recorded here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

import attrs

from core.model.sync import Kind
from ports.sync_store import JournalEntry

JOURNAL_DEFAULT_LIMIT = 50
JOURNAL_MAX_LIMIT = 500


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


class Journal(Protocol):
    async def record(self, entries: Sequence[JournalEntry]) -> None:
        """Journal decisions that change no state (a delivery-level `retrying`)."""
        ...

    async def journal(
        self, tenant_id: int, *, issue_key: str | None = None, limit: int = JOURNAL_DEFAULT_LIMIT
    ) -> list[JournalEntry]:
        """The tenant's journal, newest first, optionally for one issue key."""
        ...

    async def dead_letters(
        self, *, limit: int = JOURNAL_MAX_LIMIT, tenant_id: int | None = None
    ) -> list[DeadLetter]:
        """Current dead letters, newest first; only that tenant's when `tenant_id` is given
        (§10: a site's configure page shows its own)."""
        ...

    async def dead_letter_count(self) -> int:
        ...

    async def retry_dead_letter(
        self, id: int, *, now: datetime, tenant_id: int | None = None
    ) -> bool:
        """Re-queue a dead letter (its action pending again with fresh attempts, its delivery
        due now) in one transaction; False when there is no dead letter with this id (of that
        tenant, when `tenant_id` is given: §10, another site's dead letter is not found)."""
        ...
