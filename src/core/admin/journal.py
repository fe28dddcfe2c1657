"""administer (§A): the sync journal and the dead letters.

- journal: newest first, optionally for one issue key; `limit` 1–500, default 50.
- dead letters: newest first (`limit` 1–500, default 500); a retry re-queues the action with
  fresh attempts and its delivery due now. The watermark is checked again on that attempt
  (W6), so an action a newer delivery superseded ends `stale`, without a write.

Input is parsed before anything is looked up (400 before 404, SPEC §5).
"""

from __future__ import annotations

import attrs

from core.admin.validation import parse_id, parse_issue_key
from core.model.errors import BadRequest, NotFound
from core.model.tenant import Tenant
from ports.clock import Clock
from ports.journal import JOURNAL_DEFAULT_LIMIT, JOURNAL_MAX_LIMIT, DeadLetter, Journal
from ports.sync_store import JournalEntry
from ports.tenants import TenantStore


def parse_limit(value: object, *, default: int, maximum: int = JOURNAL_MAX_LIMIT) -> int:
    """An optional `limit`: an integer from 1 to `maximum`; anything else is a 400."""
    if value is None:
        return default
    number = parse_id(value, "limit")
    if not 1 <= number <= maximum:
        raise BadRequest(f"limit must be an integer between 1 and {maximum}")
    return number


@attrs.frozen
class JournalQuery:
    tenant_id: int
    issue_key: str | None = None
    limit: int = JOURNAL_DEFAULT_LIMIT

    @classmethod
    def parse(cls, tenant_id: object, issue_key: object = None, limit: object = None
              ) -> JournalQuery:
        return cls(
            tenant_id=parse_id(tenant_id, "tenant id"),
            issue_key=None if issue_key is None else parse_issue_key(issue_key),
            limit=parse_limit(limit, default=JOURNAL_DEFAULT_LIMIT),
        )


async def read_journal(
    query: JournalQuery, *, tenants: TenantStore, journal: Journal
) -> list[JournalEntry]:
    """§A journal of a tenant (unknown tenant → 404)."""
    await _tenant(query.tenant_id, tenants)
    return await journal.journal(query.tenant_id, issue_key=query.issue_key, limit=query.limit)


async def list_dead_letters(limit: object = None, *, journal: Journal) -> list[DeadLetter]:
    return await journal.dead_letters(limit=parse_limit(limit, default=JOURNAL_MAX_LIMIT))


async def retry_dead_letter(dead_letter_id: object, *, journal: Journal, clock: Clock) -> int:
    """§A retry: re-queue a dead letter; 404 when there is none with this id (any more)."""
    number = parse_id(dead_letter_id, "dead letter id")
    if not await journal.retry_dead_letter(number, now=clock.now()):
        raise NotFound(f"no dead letter {number}")
    return number


async def _tenant(tenant_id: int, tenants: TenantStore) -> Tenant:
    tenant = await tenants.get(tenant_id)
    if tenant is None:
        raise NotFound(f"no tenant {tenant_id}")
    return tenant
