"""The Sentry issues API over httpx (W8), its failures sorted into the W9 error kinds.

Every call (§8.3): the binding's Sentry URL is checked again against
`SENTRY_JIRA_SENTRY_HOSTS` before anything is sent (a refused host: no socket opened, a
non-retryable `SentryRejected`); the connection goes through the egress guard; no
redirect is followed; one deadline (the HTTP timeout) covers the whole call; the answer
is streamed and refused past 1 MiB.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import re
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from adapters.outbound.calls import (
    AnswerTooLarge,
    OutboundTimeout,
    OutboundUnreachable,
    OutboundUnsendable,
    exchange,
    parse_retry_after,
)
from adapters.outbound.egress import EgressRefused, GuardedTransport, Resolver
from core.model.bindings import Binding
from core.model.errors import SentryError, SentryRejected, SentryReleaseRefused, SentryUnavailable
from core.model.host_patterns import HostPattern, HostRefused, check_sentry_url
from core.model.sentry import SentryIssue, SentryMember, is_release_based

__all__ = ["HttpSentryApi", "parse_retry_after", "sentry_http_client"]

# Path segments this adapter puts in a URL: no '/', no dot segments, nothing to encode.
_SEGMENT = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
MAX_ANSWER_BYTES = 1024 * 1024  # §8.3


# httpcore's pool matches every waiting request against every connection on each change: its
# CPU per call grows with the calls in flight (benchmark machine: ~400 µs at 8, ~920 µs at 16).
# So the Sentry client is several small pools (POOL_CONNECTIONS each) behind one transport,
# and at most PER_HOST_CALLS calls are in flight per Sentry host (scheme, host, port): 32
# calls over 4 pools cost ~390 µs each. The connections stay open between bursts (keep-alive).
POOL_CONNECTIONS = 8
POOLS = 4
PER_HOST_CALLS = POOL_CONNECTIONS * POOLS
MAX_ORIGINS = 1024  # per-host semaphores kept (one per Sentry host the bindings name)


class PooledTransport(httpx.AsyncBaseTransport):
    """Round-robin over several guarded transports (every connection still goes through the
    egress guard of its own `GuardedTransport`)."""

    def __init__(self, pools: list[GuardedTransport]) -> None:
        self._pools = pools
        self._next = itertools.cycle(range(len(pools)))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._pools[next(self._next)].handle_async_request(request)

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()


def sentry_http_client(
    patterns: tuple[HostPattern, ...], *, resolver: Resolver | None = None,
    pools: int = POOLS,
) -> httpx.AsyncClient:
    """The one shared client for Sentry calls: guarded egress, no redirects, no env proxy,
    `pools` pools of POOL_CONNECTIONS kept-alive connections each."""
    limits = httpx.Limits(max_connections=POOL_CONNECTIONS,
                          max_keepalive_connections=POOL_CONNECTIONS, keepalive_expiry=30.0)
    return httpx.AsyncClient(
        transport=PooledTransport([GuardedTransport(patterns, resolver=resolver, limits=limits)
                                   for _ in range(max(1, pools))]),
        follow_redirects=False,
        trust_env=False,
        headers={"Accept-Encoding": "identity"},
    )


class _Answer:
    """What the W8 calls read of an answer: the status, `Retry-After` and the body."""

    def __init__(self, status_code: int, retry_after: str | None, body: bytes) -> None:
        self.status_code = status_code
        self.retry_after = retry_after
        self.body = body


class HttpSentryApi:
    """`SentryApi` for sentry.io or a self-hosted Sentry. The client is shared (one pool for the
    process); every call has one deadline and never follows a redirect."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        timeout: float,
        sentry_hosts: tuple[HostPattern, ...] = (),
        *,
        per_host_calls: int = PER_HOST_CALLS,
        observe: Callable[[str], None] | None = None,
    ) -> None:
        self._client = client
        self._observe = observe  # §3 metrics: each call's status class or failure
        self._timeout = timeout
        self._hosts = sentry_hosts
        self._per_host_calls = per_host_calls
        self._turns: dict[str, asyncio.Semaphore] = {}
        self._checked: dict[str, bool] = {}  # Sentry URL → allowed by `sentry_hosts`

    async def update_issue(
        self, binding: Binding, issue_id: str, payload: Mapping[str, Any]
    ) -> None:
        what = "updating the Sentry issue"
        response = await self._send(
            "PUT", binding, _issue_url(binding, issue_id), what, json=dict(payload)
        )
        if response.status_code == 400 and is_release_based(payload):
            raise SentryReleaseRefused("Sentry refused the release-based resolve (400)", status=400)
        _raise_for_status(response, what)

    async def get_issue_status(self, binding: Binding, issue_id: str) -> str:
        what = "reading the Sentry issue"
        response = await self._send("GET", binding, _issue_url(binding, issue_id), what)
        _raise_for_status(response, what)
        body = _json(response, what)
        status = body.get("status") if isinstance(body, dict) else None
        if not isinstance(status, str):
            raise SentryRejected(f"Sentry answered {what} without a status", status=200)
        return status

    async def check_organization(self, binding: Binding) -> None:
        what = "reading the Sentry organization"
        response = await self._send("GET", binding, f"{_org_url(binding)}/", what)
        _raise_for_status(response, what)
        body = _json(response, what)
        if not isinstance(body, dict):
            raise SentryRejected(f"Sentry answered {what} with something else than an object")

    async def get_issue(self, binding: Binding, issue_id: str) -> SentryIssue:
        what = "reading the Sentry issue"
        response = await self._send("GET", binding, _issue_url(binding, issue_id), what)
        _raise_for_status(response, what)
        issue = _issue(issue_id, _json(response, what))
        if issue is None:
            raise SentryRejected(f"Sentry answered {what} without an issue", status=200)
        return issue

    async def members_by_email(self, binding: Binding, email: str) -> list[SentryMember]:
        what = "searching Sentry members"
        url = f"{_org_url(binding)}/members/"
        response = await self._send("GET", binding, url, what, params={"query": f"email:{email}"})
        _raise_for_status(response, what)
        body = _json(response, what)
        if not isinstance(body, list):
            raise SentryRejected(f"Sentry answered {what} with something else than a list")
        return [member for member in (_member(raw) for raw in body) if member is not None]

    async def _send(
        self,
        method: str,
        binding: Binding,
        url: str,
        what: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
    ) -> _Answer:
        # §8.3: re-checked before every call; nothing is sent to a refused host
        if not self._allowed(binding.sentry_url):
            raise SentryRejected(
                f"the org's Sentry URL is not an allowed Sentry host ({what}); "
                "see SENTRY_JIRA_SENTRY_HOSTS"
            )
        headers = {
            "Authorization": f"Bearer {binding.sentry_token}",
            "Accept": "application/json",
        }
        # One deadline covers the wait for a turn and the call (§8.3).
        started = time.monotonic()
        turn = self._turn(binding.sentry_url)  # the call's origin is the org's Sentry URL's
        if turn.locked():  # every turn taken: wait, within the deadline
            try:
                await asyncio.wait_for(turn.acquire(), timeout=self._timeout)
            except TimeoutError:
                raise SentryUnavailable(f"Sentry did not answer in time ({what})") from None
        else:  # a free turn is taken at once (wait_for would start a task for it)
            await turn.acquire()
        try:
            return await self._exchange(method, url, what, headers, json=json, params=params,
                                        deadline=self._timeout - (time.monotonic() - started))
        finally:
            turn.release()

    def _allowed(self, sentry_url: str) -> bool:
        """Whether SENTRY_JIRA_SENTRY_HOSTS allow this URL. The patterns are fixed for the
        life of this client, so each URL's answer is kept (bounded) rather than parsed and
        matched again on every call."""
        allowed = self._checked.get(sentry_url)
        if allowed is None:
            try:
                check_sentry_url(sentry_url, self._hosts)
                allowed = True
            except HostRefused:
                allowed = False
            if len(self._checked) >= MAX_ORIGINS:
                self._checked.clear()
            self._checked[sentry_url] = allowed
        return allowed

    def _turn(self, url: str) -> asyncio.Semaphore:
        """The semaphore of the URL's origin: at most `per_host_calls` calls in flight."""
        origin = _origin(url)
        turn = self._turns.get(origin)
        if turn is None:
            if len(self._turns) >= MAX_ORIGINS:  # bounded: forget idle origins
                for key in [k for k, t in self._turns.items() if not t.locked()]:
                    del self._turns[key]
            turn = self._turns[origin] = asyncio.Semaphore(self._per_host_calls)
        return turn

    async def _exchange(
        self,
        method: str,
        url: str,
        what: str,
        headers: dict[str, str],
        *,
        json: Any,
        params: Mapping[str, str] | None,
        deadline: float,
    ) -> _Answer:
        # Never put an exception's text in an error: it may quote the request (and the token).
        try:
            request = self._client.build_request(
                method, url, json=json, params=params, headers=headers,
                timeout=httpx.Timeout(self._timeout),
            )
            answer = await exchange(
                self._client,
                request,
                deadline_seconds=max(0.001, deadline),
                max_bytes=MAX_ANSWER_BYTES,
                observe=self._observe,
            )
        except OutboundTimeout:
            raise SentryUnavailable(f"Sentry did not answer in time ({what})") from None
        except AnswerTooLarge as error:
            raise SentryRejected(
                f"Sentry's answer is too large ({what})", status=error.status
            ) from None
        except EgressRefused:
            raise SentryRejected(
                f"the org's Sentry URL resolves to an address that is not allowed ({what})"
            ) from None
        except (OutboundUnsendable, httpx.InvalidURL, httpx.UnsupportedProtocol):
            raise SentryRejected(f"the request could not be sent ({what})") from None
        except OutboundUnreachable:
            raise SentryUnavailable(f"could not reach Sentry ({what})") from None
        except (UnicodeEncodeError, ValueError):
            raise SentryRejected(
                f"the Sentry URL or token cannot be sent in a request ({what})"
            ) from None
        return _Answer(answer.status, answer.headers.get("Retry-After"), answer.body)


@functools.lru_cache(maxsize=MAX_ORIGINS)
def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _org_url(binding: Binding) -> str:
    if not _SEGMENT.match(binding.org):
        raise SentryRejected("not a valid Sentry org slug")
    return f"{binding.sentry_url.rstrip('/')}/api/0/organizations/{quote(binding.org, safe='')}"


def _issue_url(binding: Binding, issue_id: str) -> str:
    if not _SEGMENT.match(issue_id):
        raise SentryRejected("not a valid Sentry issue id")
    return f"{_org_url(binding)}/issues/{quote(issue_id, safe='')}/"


def _raise_for_status(response: _Answer, what: str) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    error: SentryError
    if status == 429:
        error = SentryUnavailable(
            f"Sentry is rate limiting ({what}, 429)",
            status=status,
            retry_after=parse_retry_after(response.retry_after),
        )
    elif status >= 500:
        error = SentryUnavailable(f"Sentry failed ({what}, {status})", status=status)
    elif 300 <= status < 400:
        error = SentryRejected(
            f"Sentry answered a redirect ({what}, {status}); redirects are not followed",
            status=status,
        )
    elif status in (401, 403):
        error = SentryRejected(f"Sentry refused the org's token ({what}, {status})", status=status)
    elif status == 404:
        error = SentryRejected(f"Sentry does not know it ({what}, 404)", status=status)
    else:
        error = SentryRejected(f"Sentry refused the request ({what}, {status})", status=status)
    raise error


def _json(response: _Answer, what: str) -> Any:
    try:
        return json.loads(response.body)
    except (ValueError, RecursionError):  # UnicodeDecodeError included; nested too deeply
        raise SentryRejected(
            f"Sentry answered with invalid JSON ({what})", status=response.status_code
        ) from None



MAX_USER_ID = 64  # Sentry's user ids are integers; anything longer is no user id

def _member(raw: Any) -> SentryMember | None:
    """A member of the members list; pending invites (no user) are no one to assign."""
    user = raw.get("user") if isinstance(raw, dict) else None
    if not isinstance(user, dict):
        return None
    user_id = user.get("id")
    if isinstance(user_id, bool) or not isinstance(user_id, str | int):
        return None
    user_id = str(user_id)
    # Sent back in the PUT and kept in the account mappings: short printable text only (a
    # NUL cannot be stored on PostgreSQL; docs/security.md, "Malformed identifiers").
    if len(user_id) > MAX_USER_ID or not user_id.isprintable():
        return None
    emails: list[tuple[str, bool]] = []
    for entry in user.get("emails") or ():
        if isinstance(entry, dict) and isinstance(entry.get("email"), str):
            emails.append((entry["email"], entry.get("is_verified") is True))
    return SentryMember(user_id=user_id, emails=tuple(emails))


def _issue(issue_id: str, raw: Any) -> SentryIssue | None:
    """The glance's fields of an issue answer; None when its required fields are missing."""
    if not isinstance(raw, dict):
        return None
    status, title = raw.get("status"), raw.get("title")
    short_id, permalink = raw.get("shortId"), raw.get("permalink")
    if not isinstance(status, str) or not isinstance(title, str):
        return None
    return SentryIssue(
        id=issue_id,
        short_id=short_id if isinstance(short_id, str) and short_id else issue_id,
        title=title,
        status=status,
        permalink=permalink if isinstance(permalink, str) and permalink else None,
    )
