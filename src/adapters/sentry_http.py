"""The Sentry issues API over httpx (W8), its failures sorted into the W9 error kinds."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import httpx

from core.bindings import Binding
from core.errors import SentryError, SentryRejected, SentryReleaseRefused, SentryUnavailable
from core.sentry import SentryMember, is_release_based

# Path segments this adapter puts in a URL: no '/', no dot segments, nothing to encode.
_SEGMENT = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
MAX_RETRY_AFTER_SECONDS = 3600  # a misbehaving Sentry cannot park an action for days
MAX_ANSWER_BYTES = 2 * 1024 * 1024


class HttpSentryApi:
    """`SentryApi` for sentry.io or a self-hosted Sentry. The client is shared (one pool for the
    process); every call sets its own timeout and never follows a redirect."""

    def __init__(self, client: httpx.AsyncClient, timeout: float) -> None:
        self._client = client
        self._timeout = httpx.Timeout(timeout)

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
    ) -> httpx.Response:
        headers = {
            "Authorization": f"Bearer {binding.sentry_token}",
            "Accept": "application/json",
        }
        # Never put an exception's text in an error: it may quote the request (and the token).
        try:
            return await self._client.request(
                method,
                url,
                json=json,
                params=params,
                headers=headers,
                timeout=self._timeout,
                follow_redirects=False,
            )
        except httpx.TimeoutException:
            raise SentryUnavailable(f"Sentry did not answer in time ({what})") from None
        except (httpx.LocalProtocolError, httpx.UnsupportedProtocol, httpx.InvalidURL):
            raise SentryRejected(f"the request could not be sent ({what})") from None
        except httpx.TransportError:
            raise SentryUnavailable(f"could not reach Sentry ({what})") from None
        except (UnicodeEncodeError, ValueError):
            raise SentryRejected(
                f"the Sentry URL or token cannot be sent in a request ({what})"
            ) from None


def _org_url(binding: Binding) -> str:
    if not _SEGMENT.match(binding.org):
        raise SentryRejected("not a valid Sentry org slug")
    return f"{binding.sentry_url.rstrip('/')}/api/0/organizations/{quote(binding.org, safe='')}"


def _issue_url(binding: Binding, issue_id: str) -> str:
    if not _SEGMENT.match(issue_id):
        raise SentryRejected("not a valid Sentry issue id")
    return f"{_org_url(binding)}/issues/{quote(issue_id, safe='')}/"


def _raise_for_status(response: httpx.Response, what: str) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    error: SentryError
    if status == 429:
        error = SentryUnavailable(
            f"Sentry is rate limiting ({what}, 429)",
            status=status,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
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


def _json(response: httpx.Response, what: str) -> Any:
    if len(response.content) > MAX_ANSWER_BYTES:
        raise SentryRejected(f"Sentry's answer is too large ({what})", status=response.status_code)
    try:
        return response.json()
    except ValueError:
        raise SentryRejected(
            f"Sentry answered with invalid JSON ({what})", status=response.status_code
        ) from None


def _member(raw: Any) -> SentryMember | None:
    """A member of the members list; pending invites (no user) are no one to assign."""
    user = raw.get("user") if isinstance(raw, dict) else None
    if not isinstance(user, dict):
        return None
    user_id = user.get("id")
    if isinstance(user_id, bool) or not isinstance(user_id, str | int):
        return None
    emails: list[tuple[str, bool]] = []
    for entry in user.get("emails") or ():
        if isinstance(entry, dict) and isinstance(entry.get("email"), str):
            emails.append((entry["email"], entry.get("is_verified") is True))
    return SentryMember(user_id=str(user_id), emails=tuple(emails))


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> int | None:
    """`Retry-After` as whole seconds (delta or HTTP date), capped; None when absent or bad."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return (
            MAX_RETRY_AFTER_SECONDS if len(value) > 9 else min(int(value), MAX_RETRY_AFTER_SECONDS)
        )
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(math.ceil(seconds), 0), MAX_RETRY_AFTER_SECONDS)
