"""handle issue update, part 1: verify, dedupe, record durably, answer (W1–W4, W10).

The acknowledgement path reads no binding or link and calls neither Jira nor Sentry: it
records the raw delivery in the inbox, and the worker processes it after the response.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Literal

import attrs

from core.connect.tokens import ConnectRequest, verify_tenant_token
from core.issue_update.webhook import delivery_id, parse_issue_update, payload_to_record
from core.model.errors import BadRequest
from core.model.settings import AppSettings
from ports.clock import Clock
from ports.inbox import Inbox, NewDelivery
from ports.tenants import TenantLookup

Outcome = Literal["accepted", "duplicate", "ignored"]


@attrs.frozen
class Acknowledgement:
    status: Outcome
    delivery: str | None = None


def encode_json_body(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def decode_json_body(raw: bytes) -> Any:
    """Standard-library decoding; adapters may inject a faster decoder with the same errors."""
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadRequest("the body is not valid UTF-8") from None
    except RecursionError:
        raise BadRequest("the body is nested too deeply") from None
    except ValueError:
        raise BadRequest("the body is not valid JSON") from None


async def acknowledge_issue_update(
    request: ConnectRequest,
    *,
    webhook_id: str | None,
    tenants: TenantLookup,
    inbox: Inbox,
    clock: Clock,
    settings: AppSettings,
    decode: Callable[[bytes], Any] = decode_json_body,
    encode: Callable[[Any], bytes] = encode_json_body,
) -> Acknowledgement:
    """W1 token (401) → W2 body (400) → W4 relevance → W3 record once (202 / 200)."""
    verified = await verify_tenant_token(request, tenants=tenants, settings=settings, clock=clock)
    body = decode(request.body)
    update = parse_issue_update(body)
    if not update.is_relevant:
        return Acknowledgement("ignored")
    delivery = delivery_id(update, webhook_id)
    recorded = await inbox.record(
        NewDelivery(
            tenant_id=verified.tenant.id,
            delivery_id=delivery,
            issue_id=update.issue_id,
            issue_key=update.issue_key,
            body=encode(payload_to_record(body)),
            received_at=clock.now(),
        )
    )
    return Acknowledgement("accepted" if recorded else "duplicate", delivery)
