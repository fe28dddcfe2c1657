"""The Sentry issues API port (W8). Failures raise `core.model.errors.SentryError` kinds (W9)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from core.model.bindings import Binding
from core.model.sentry import SentryIssue, SentryMember


class SentryApi(Protocol):
    """Calls go to `binding.sentry_url` for `binding.org` with `binding.sentry_token`."""

    async def update_issue(
        self, binding: Binding, issue_id: str, payload: Mapping[str, Any]
    ) -> None:
        """PUT one W8 body to the issue. A release-based resolve refused with 400 raises
        `SentryReleaseRefused`; other 4xx `SentryRejected`; 5xx, 429, timeouts and connection
        errors `SentryUnavailable` (with `retry_after` from a 429)."""
        ...

    async def get_issue_status(self, binding: Binding, issue_id: str) -> str:
        """The issue's `status` (`resolved`, `unresolved`, `ignored`, …)."""
        ...

    async def members_by_email(self, binding: Binding, email: str) -> list[SentryMember]:
        """The org's members Sentry finds for this e-mail, as reported (not yet filtered to
        verified addresses: `core.model.sentry.members_with_verified_email` does that)."""
        ...

    async def check_organization(self, binding: Binding) -> None:
        """§10 bind: `GET /api/0/organizations/{org}/` answers 200 with this URL and token;
        else the W9 error kinds (401/403/404: `SentryRejected` with that status)."""
        ...

    async def get_issue(self, binding: Binding, issue_id: str) -> SentryIssue:
        """§10 glance: the issue's short id, title, status and permalink."""
        ...
