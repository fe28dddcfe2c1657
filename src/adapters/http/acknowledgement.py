"""The answer every transport's issue-update route gives once its verifier named the site
(W2–W4, W10): the one acknowledgement use case, then 202 / 200 as JSON. Shared so that the
Connect and plain-webhook routes (and Forge's, next) cannot drift apart."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar.types import Send

from adapters.http.body import decode_json
from adapters.wiring import Container
from core.issue_update.acknowledge import (
    Acknowledgement,
    acknowledge_issue_body,
    acknowledge_issue_update,
)
from core.model.tenant import VerifiedSite

_JSON = [(b"content-type", b"application/json")]
encode_json = msgspec.json.Encoder().encode


async def acknowledge_and_answer(site: VerifiedSite, raw_body: bytes, *, webhook_id: str | None,
                                 container: Container, send: Send) -> None:
    """Record the delivery once (202 accepted, waking the worker) or answer 200 duplicate /
    ignored; a body error is raised (400) before anything is recorded."""
    ack = await acknowledge_issue_update(
        site, raw_body, webhook_id=webhook_id, inbox=container.inbox,
        clock=container.clock, decode=decode_json, encode=encode_json)
    await answer_acknowledgement(ack, container=container, send=send)


async def acknowledge_body_and_answer(site: VerifiedSite, body: Any, *, webhook_id: str,
                                      container: Container, send: Send) -> None:
    """As `acknowledge_and_answer`, for a body the transport decoded and mapped onto W2."""
    ack = await acknowledge_issue_body(site, body, webhook_id=webhook_id,
                                       inbox=container.inbox, clock=container.clock,
                                       encode=encode_json)
    await answer_acknowledgement(ack, container=container, send=send)


async def answer_acknowledgement(ack: Acknowledgement, *, container: Container,
                                 send: Send) -> None:
    """202 accepted (waking the worker) or 200 duplicate / ignored, as JSON."""
    if ack.status == "accepted":
        container.wake_worker()
        status, body = 202, {"status": "accepted", "delivery": ack.delivery}
    else:
        status, body = 200, {"status": ack.status}
    await send_json(send, status, body)


async def send_json(send: Send, status: int, body: Any) -> None:
    payload = encode_json(body)
    start: Any = {"type": "http.response.start", "status": status,
                  "headers": [*_JSON, (b"content-length", str(len(payload)).encode())]}
    await send(start)
    end: Any = {"type": "http.response.body", "body": payload}
    await send(end)
