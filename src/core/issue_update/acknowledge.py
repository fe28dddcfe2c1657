"""handle issue update, part 1: check, dedupe, record durably, answer (W2–W4, W10).

The caller is a transport: it verified the request (W1 for Connect, §8.1 for webhooks) and
passes the site it found. This path reads no binding or link and calls neither Jira nor
Sentry: it records what the worker needs in the inbox, and the worker processes it after the
response.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import attrs

from core.issue_update.delivery import read_issue_update
from core.json_body import decode_json_body, encode_json_body
from core.model.tenant import VerifiedSite
from ports.clock import Clock
from ports.inbox import Inbox, NewDelivery

Outcome = Literal["accepted", "duplicate", "ignored"]


@attrs.frozen
class Acknowledgement:
    status: Outcome
    delivery: str | None = None


async def acknowledge_issue_update(
    site: VerifiedSite,
    raw_body: bytes,
    *,
    webhook_id: str | None,
    inbox: Inbox,
    clock: Clock,
    decode: Callable[[bytes], Any] = decode_json_body,
    encode: Callable[[Any], bytes] = encode_json_body,
) -> Acknowledgement:
    """W2 body (400) → W4 relevance → W3 record once (202 / 200) for a verified site."""
    return await acknowledge_issue_body(site, decode(raw_body), webhook_id=webhook_id,
                                        inbox=inbox, clock=clock, encode=encode)


async def acknowledge_issue_body(
    site: VerifiedSite,
    body: Any,
    *,
    webhook_id: str | None,
    inbox: Inbox,
    clock: Clock,
    encode: Callable[[Any], bytes] = encode_json_body,
) -> Acknowledgement:
    """As `acknowledge_issue_update`, for a body a transport already decoded and mapped
    onto W2 (§8.2: a Forge event)."""
    incoming = read_issue_update(body, webhook_id)
    if incoming is None:
        return Acknowledgement("ignored")
    recorded = await inbox.record(
        NewDelivery(
            tenant_id=site.tenant.id,
            delivery_id=incoming.id,
            issue_id=incoming.issue_id,
            issue_key=incoming.issue_key,
            body=encode(incoming.record),
            received_at=clock.now(),
        )
    )
    return Acknowledgement("accepted" if recorded else "duplicate", incoming.id)
