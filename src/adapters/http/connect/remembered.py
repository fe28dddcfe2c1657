"""W1–W4 on PostgreSQL in one round trip (§7, §9): verify against the tenant as this process
last read it, and let the insert check that the tenant's row has not moved on.

Every answer stays what a fresh read would give (a rotation or uninstall committed anywhere is
honoured by the next request, §9):

- a token refused against a remembered tenant is verified again against a fresh read (it may
  be signed with a secret rotated in since);
- a delivery verified against a remembered tenant is recorded only while the tenant's row
  still has the `secret_version` it was verified with (`PgInbox.record_verified`); when it has
  not, nothing is recorded and the request is verified again, freshly;
- an answer that records nothing (400 bad body, 200 ignored) is given only after a fresh
  read confirmed the tenant.
"""

from __future__ import annotations

from datetime import datetime

from litestar.types import Send

from adapters.http.acknowledgement import answer_acknowledgement, encode_json
from adapters.http.body import decode_json
from adapters.postgres.inbox import PgInbox, TenantChanged
from adapters.postgres.tenants import RememberedTenants
from adapters.wiring import Container
from core.connect.tokens import ConnectRequest
from core.connect.verify import verify_connect_site
from core.issue_update.acknowledge import Acknowledgement, acknowledge_issue_update
from core.model.errors import BadRequest, Unauthorized
from core.model.tenant import VerifiedSite
from ports.inbox import ClaimedDelivery, InboxStats, NewDelivery


class _RecordIfCurrent:
    """The inbox the use case records into: only while the tenant is at `secret_version`."""

    def __init__(self, inbox: PgInbox, secret_version: int) -> None:
        self._inbox = inbox
        self._version = secret_version

    async def record(self, delivery: NewDelivery) -> bool:
        return await self._inbox.record_verified(delivery, self._version)

    async def claim(self, owner: str, *, now: datetime, lease_seconds: float,
                    limit: int = 1) -> list[ClaimedDelivery]:
        return await self._inbox.claim(owner, now=now, lease_seconds=lease_seconds, limit=limit)

    async def renew(self, id: int, owner: str, *, now: datetime, lease_seconds: float) -> bool:
        return await self._inbox.renew(id, owner, now=now, lease_seconds=lease_seconds)

    async def release(self, id: int, owner: str, *, not_before: datetime) -> bool:
        return await self._inbox.release(id, owner, not_before=not_before)

    async def stats(self, now: datetime) -> InboxStats:
        return await self._inbox.stats(now)


async def acknowledge_remembered(request: ConnectRequest, *, webhook_id: str | None,
                                 remembered: RememberedTenants, inbox: PgInbox,
                                 container: Container, send: Send) -> str:
    """Answer the request (as `acknowledge_and_answer` would) and return the answer
    (`accepted`, `duplicate` or `ignored`) for the metrics (§3 /metrics)."""
    settings, clock = container.settings.app, container.clock
    attempt = remembered.attempt()
    try:
        site: VerifiedSite | None = await verify_connect_site(
            request, tenants=attempt, settings=settings, clock=clock)
    except Unauthorized:
        if not attempt.from_memory:
            raise
        site = None
    if site is not None and attempt.from_memory:
        ack = await _acknowledge_if_current(site, request, webhook_id, inbox, container)
        if ack is not None:
            await answer_acknowledgement(ack, container=container, send=send)
            return ack.status
    elif site is not None:  # read just now: as current as a fresh read
        ack = await _acknowledge(site, request, webhook_id, inbox, container)
        await answer_acknowledgement(ack, container=container, send=send)
        return ack.status
    fresh = remembered.attempt(fresh=True)
    site = await verify_connect_site(request, tenants=fresh, settings=settings, clock=clock)
    ack = await _acknowledge(site, request, webhook_id, inbox, container)
    await answer_acknowledgement(ack, container=container, send=send)
    return ack.status


async def _acknowledge(site: VerifiedSite, request: ConnectRequest, webhook_id: str | None,
                       inbox: PgInbox, container: Container) -> Acknowledgement:
    return await acknowledge_issue_update(
        site, request.body, webhook_id=webhook_id, inbox=inbox, clock=container.clock,
        decode=decode_json, encode=encode_json)


async def _acknowledge_if_current(site: VerifiedSite, request: ConnectRequest,
                                  webhook_id: str | None, inbox: PgInbox,
                                  container: Container) -> Acknowledgement | None:
    """The acknowledgement, or None when the remembered tenant turned out stale."""
    try:
        ack = await acknowledge_issue_update(
            site, request.body, webhook_id=webhook_id,
            inbox=_RecordIfCurrent(inbox, site.tenant.secret_version),
            clock=container.clock, decode=decode_json, encode=encode_json)
    except TenantChanged:
        return None
    except BadRequest:
        return None  # answered after a fresh verification (which may say 401 instead)
    if ack.status == "ignored":
        return None  # nothing recorded, nothing checked: confirm with a fresh read
    return ack
