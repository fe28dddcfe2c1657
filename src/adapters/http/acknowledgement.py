"""The answer every transport's issue-update route gives once its verifier named the site
(W2–W4, W10): the one acknowledgement use case, then 202 / 200 as JSON. Shared so that the
Connect and plain-webhook routes (and Forge's, next) cannot drift apart.

`counted(transport, container)` is the metrics hook (§3 /metrics) every such route wears:
one decorator line; it counts the answer (accepted / duplicate / ignored, or the refusal's
status code) and observes the time the route took. Its cost on the ack path: a clock read
before and after, one counter increment and one histogram observation (docs/performance.md).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from litestar.exceptions import HTTPException
from litestar.types import Receive, Scope, Send

from adapters.http.body import decode_json
from adapters.http.errors import STATUS_OF
from adapters.wiring import Container
from core.issue_update.acknowledge import (
    Acknowledgement,
    acknowledge_issue_body,
    acknowledge_issue_update,
)
from core.model.errors import ServiceError
from core.model.tenant import VerifiedSite

_JSON = [(b"content-type", b"application/json")]
encode_json = msgspec.json.Encoder().encode


async def acknowledge_and_answer(site: VerifiedSite, raw_body: bytes, *, webhook_id: str | None,
                                 container: Container, send: Send) -> str:
    """Record the delivery once (202 accepted, waking the worker) or answer 200 duplicate /
    ignored; a body error is raised (400) before anything is recorded. Returns the answer
    (`accepted`, `duplicate` or `ignored`) for the metrics."""
    ack = await acknowledge_issue_update(
        site, raw_body, webhook_id=webhook_id, inbox=container.inbox,
        clock=container.clock, decode=decode_json, encode=encode_json)
    await answer_acknowledgement(ack, container=container, send=send)
    return ack.status


async def acknowledge_body_and_answer(site: VerifiedSite, body: Any, *, webhook_id: str,
                                      container: Container, send: Send) -> str:
    """As `acknowledge_and_answer`, for a body the transport decoded and mapped onto W2."""
    ack = await acknowledge_issue_body(site, body, webhook_id=webhook_id,
                                       inbox=container.inbox, clock=container.clock,
                                       encode=encode_json)
    await answer_acknowledgement(ack, container=container, send=send)
    return ack.status


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


AckRoute = Callable[[Scope, Receive, Send], Awaitable[str]]
AsgiRoute = Callable[[Scope, Receive, Send], Awaitable[None]]


def answer_of(error: BaseException) -> str:
    """A refused delivery's metrics label: the status code its error maps to."""
    if isinstance(error, ServiceError):
        return str(next((code for kind, code in STATUS_OF.items() if isinstance(error, kind)),
                        500))
    if isinstance(error, HTTPException):
        return str(error.status_code)
    return "500" if isinstance(error, Exception) else "cancelled"


def counted(transport: str, container: Container) -> Callable[[AckRoute], AsgiRoute]:
    """The metrics hook of an issue-update route (one decorator line, under `@asgi`): the
    route returns `acknowledge_and_answer`'s answer, or raises its refusal."""
    metrics = container.metrics
    clock = time.perf_counter

    def wrap(route: AckRoute) -> AsgiRoute:
        async def handler(scope: Scope, receive: Receive, send: Send) -> None:
            started = clock()
            try:
                answer = await route(scope, receive, send)
            except BaseException as error:
                metrics.delivery(transport, answer_of(error), clock() - started)
                raise
            # A route that forgot to return the answer still counts (as `answered`).
            metrics.delivery(transport, answer or "answered", clock() - started)

        handler.__name__ = route.__name__
        handler.__qualname__ = route.__qualname__
        handler.__doc__ = route.__doc__
        return handler

    return wrap
