"""The inbox: durable record of accepted deliveries and the work queue over them (W3, W4)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

import attrs


@attrs.frozen
class NewDelivery:
    """A relevant delivery to record, exactly once per (tenant, delivery id)."""

    tenant_id: int
    delivery_id: str
    issue_id: str
    issue_key: str
    body: bytes = attrs.field(repr=False)
    received_at: datetime


@attrs.frozen
class ClaimedDelivery:
    """A recorded delivery leased to one worker until `claimed_until`."""

    id: int
    tenant_id: int
    delivery_id: str
    issue_id: str
    issue_key: str
    body: bytes = attrs.field(repr=False)
    received_at: datetime
    attempts: int  # how many claims before this one
    claimed_until: datetime


@attrs.frozen
class InboxStats:
    pending: int
    oldest_pending_seconds: float | None


class Inbox(Protocol):
    async def record(self, delivery: NewDelivery) -> bool:
        """Record durably; True when new, False when (tenant, delivery id) was already there."""
        ...

    async def claim(self, owner: str, *, now: datetime, lease_seconds: float,
                    limit: int = 1) -> list[ClaimedDelivery]:
        """Lease up to `limit` due deliveries (never claimed, released, or lease expired).

        At most one delivery of one Jira issue (tenant, issue id) is leased at a time, across
        every worker: W6 re-checks a watermark right before each write, and that check is
        only race-free when the deliveries of one issue are processed one after the other."""
        ...

    async def renew(self, id: int, owner: str, *, now: datetime, lease_seconds: float) -> bool:
        """Extend `owner`'s lease to `now + lease_seconds`; False when it no longer holds it."""
        ...

    async def release(self, id: int, owner: str, *, not_before: datetime) -> bool:
        """Give a claimed delivery back, due again at `not_before`; False if not the owner."""
        ...

    async def stats(self, now: datetime) -> InboxStats:
        """Pending (not done) deliveries and the age of the oldest."""
        ...
