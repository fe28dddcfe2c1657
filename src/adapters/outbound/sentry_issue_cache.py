"""§10 glance: Sentry issue reads kept at most 60 s (a busy issue view does not call Sentry on
every render). Only successful answers are kept: a Sentry that recovers shows at once."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from core.model.bindings import Binding
from core.model.sentry import SentryIssue, SentryMember
from ports.clock import Clock
from ports.sentry import SentryApi

GLANCE_CACHE_SECONDS = 60
MAX_CACHED_ISSUES = 4096

_Key = tuple[int, str, str, str, str]


class CachedSentryIssues:
    """A `SentryApi` whose `get_issue` answers are reused for `ttl_seconds` (≤ 60); every other
    call goes straight to the wrapped API. Keyed by tenant, org, Sentry URL, a digest of the
    Sentry token and issue id: a binding moved to another Sentry, or whose token was replaced
    (a revoked one, one of another scope), never sees answers read with the old one."""

    def __init__(
        self,
        inner: SentryApi,
        clock: Clock,
        *,
        ttl_seconds: int = GLANCE_CACHE_SECONDS,
        max_entries: int = MAX_CACHED_ISSUES,
    ) -> None:
        self._inner = inner
        self._clock = clock
        self._ttl = timedelta(seconds=min(ttl_seconds, GLANCE_CACHE_SECONDS))
        self._max = max_entries
        self._entries: dict[_Key, tuple[datetime, SentryIssue]] = {}

    async def get_issue(self, binding: Binding, issue_id: str) -> SentryIssue:
        key = (binding.tenant_id, binding.org, binding.sentry_url, _credential(binding), issue_id)
        now = self._clock.now()
        kept = self._entries.get(key)
        if kept is not None and kept[0] > now:
            return kept[1]
        issue = await self._inner.get_issue(binding, issue_id)
        self._entries.pop(key, None)
        while len(self._entries) >= self._max:  # bounded: the oldest entry goes first
            del self._entries[next(iter(self._entries))]
        self._entries[key] = (now + self._ttl, issue)
        return issue

    async def check_organization(self, binding: Binding) -> None:
        await self._inner.check_organization(binding)

    async def update_issue(
        self, binding: Binding, issue_id: str, payload: Mapping[str, Any]
    ) -> None:
        await self._inner.update_issue(binding, issue_id, payload)

    async def get_issue_status(self, binding: Binding, issue_id: str) -> str:
        return await self._inner.get_issue_status(binding, issue_id)

    async def members_by_email(self, binding: Binding, email: str) -> list[SentryMember]:
        return await self._inner.members_by_email(binding, email)


def _credential(binding: Binding) -> str:
    """The token's digest (the cache holds no second copy of a token)."""
    return hashlib.sha256(binding.sentry_token.encode("utf-8")).hexdigest()
