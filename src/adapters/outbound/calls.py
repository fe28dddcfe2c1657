"""One outbound HTTP exchange, as Jira, Sentry and the install-key fetch all make it.

- One overall deadline for the whole call (connect, headers and body): a server that
  trickles one byte a second cannot hold a worker slot past the HTTP timeout (§8.3).
- No redirect is followed (a 3xx is answered to the caller as it is).
- The body is streamed and read up to a cap; a larger answer is refused while reading,
  never loaded whole (a `Content-Length` over the cap is refused before reading at all).
- `Retry-After` parsed once for every caller (delta seconds or an HTTP date, capped).

Failures are this module's exceptions (plus `EgressRefused` from the guarded transport);
each adapter turns them into its own error kinds. No exception text from httpx is kept:
it may quote the request, and a request may carry a token.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Final

import attrs
import httpx

from adapters.outbound.egress import EgressRefused

MAX_RETRY_AFTER_SECONDS: Final = 3600  # a misbehaving server cannot park work for days


class OutboundError(Exception):
    """A call that did not produce an answer to use; the message is fixed and safe."""


class OutboundTimeout(OutboundError):
    """The call's deadline passed (connecting, waiting for headers or reading the body)."""


class OutboundUnreachable(OutboundError):
    """The connection failed or broke (refused, reset, protocol error from the server)."""


class OutboundUnsendable(OutboundError):
    """The request itself cannot be sent (a bad URL or header value)."""


class AnswerTooLarge(OutboundError):
    """The answer's body is larger than the cap; reading stopped at the cap."""

    def __init__(self, status: int) -> None:
        super().__init__("the answer is too large")
        self.status = status


@attrs.frozen
class Answer:
    status: int
    headers: httpx.Headers
    body: bytes = attrs.field(repr=False)  # b"" when the caller did not want it read


def is_success(status: int) -> bool:
    return 200 <= status < 300


async def exchange(
    client: httpx.AsyncClient,
    request: httpx.Request,
    *,
    deadline_seconds: float,
    max_bytes: int,
    auth: httpx.Auth | None = None,
    read_body: Callable[[int], bool] = is_success,
    observe: Callable[[str], None] | None = None,
) -> Answer:
    """Send `request` and read its answer within one deadline; the body only when
    `read_body(status)`, and at most `max_bytes` of it. `observe` (the metrics' hook, §3) is
    told the answer's status class (`2xx`…) or the failure's kind, once per call."""
    if observe is None:
        return await _exchange(client, request, deadline_seconds=deadline_seconds,
                               max_bytes=max_bytes, auth=auth, read_body=read_body)
    try:
        answer = await _exchange(client, request, deadline_seconds=deadline_seconds,
                                 max_bytes=max_bytes, auth=auth, read_body=read_body)
    except BaseException as error:
        observe(failure_kind(error))
        raise
    observe(status_class(answer.status))
    return answer


def status_class(status: int) -> str:
    """`2xx` … `5xx` (anything else: `other`): an answered call's metrics label."""
    return f"{status // 100}xx" if 100 <= status < 600 else "other"


def failure_kind(error: BaseException) -> str:
    """A failed call's metrics label: one of a fixed set, never the error's text."""
    if isinstance(error, AnswerTooLarge):
        return "too_large"
    if isinstance(error, OutboundTimeout):
        return "timeout"
    if isinstance(error, OutboundUnreachable):
        return "unreachable"
    if isinstance(error, OutboundUnsendable):
        return "unsendable"
    if isinstance(error, EgressRefused):  # the guard refused the address: nothing was sent
        return "refused"
    return "error" if isinstance(error, Exception) else "cancelled"


async def _exchange(
    client: httpx.AsyncClient,
    request: httpx.Request,
    *,
    deadline_seconds: float,
    max_bytes: int,
    auth: httpx.Auth | None,
    read_body: Callable[[int], bool],
) -> Answer:
    try:
        async with asyncio.timeout(deadline_seconds):
            response = await client.send(
                request,
                auth=auth if auth is not None else httpx.USE_CLIENT_DEFAULT,
                follow_redirects=False,
                stream=True,
            )
            try:
                body = await read_capped(response, max_bytes) if read_body(
                    response.status_code
                ) else b""
            finally:
                await response.aclose()
    except (TimeoutError, httpx.TimeoutException):
        raise OutboundTimeout("no answer in time") from None
    except (httpx.LocalProtocolError, httpx.UnsupportedProtocol, httpx.InvalidURL):
        raise OutboundUnsendable("the request cannot be sent") from None
    except httpx.HTTPError:
        raise OutboundUnreachable("could not reach the server") from None
    return Answer(status=response.status_code, headers=response.headers, body=body)


async def read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    """The body of a streamed response, or AnswerTooLarge as soon as it passes `max_bytes`."""
    declared = response.headers.get("Content-Length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > max_bytes:
        raise AnswerTooLarge(response.status_code)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():  # decoded: the cap is on what is kept
        size += len(chunk)
        if size > max_bytes:
            raise AnswerTooLarge(response.status_code)
        chunks.append(chunk)
    return b"".join(chunks)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> int | None:
    """`Retry-After` as whole seconds (delta or HTTP date), at most an hour, never negative;
    None when absent or unreadable (a date without a zone is not an HTTP date)."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return MAX_RETRY_AFTER_SECONDS if len(text) > 9 else min(int(text), MAX_RETRY_AFTER_SECONDS)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(math.ceil(seconds), 0), MAX_RETRY_AFTER_SECONDS)
