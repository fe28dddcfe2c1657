"""What the core knows of Sentry: the W8 request bodies and its members (W5 assignee)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from core.model.bindings import ResolutionStrategy

# W8: the only bodies this service ever PUTs to a Sentry issue.
RESOLVE: dict[str, Any] = {"status": "resolved"}
RESOLVE_IN_CURRENT_RELEASE: dict[str, Any] = {
    "status": "resolved",
    "statusDetails": {"inRelease": "latest"},
}
RESOLVE_IN_NEXT_RELEASE: dict[str, Any] = {
    "status": "resolved",
    "statusDetails": {"inNextRelease": True},
}
UNRESOLVE: dict[str, Any] = {"status": "unresolved"}
UNASSIGN: dict[str, Any] = {"assignedTo": None}

IGNORED = "ignored"  # the status of an archived Sentry issue (W5 skip_archived)


def resolve_payload(strategy: ResolutionStrategy) -> dict[str, Any]:
    """The PUT body of a resolve under this binding's resolution strategy (W5, W8)."""
    if strategy is ResolutionStrategy.RESOLVE_CURRENT_RELEASE:
        return _copy(RESOLVE_IN_CURRENT_RELEASE)
    if strategy is ResolutionStrategy.RESOLVE_NEXT_RELEASE:
        return _copy(RESOLVE_IN_NEXT_RELEASE)
    return _copy(RESOLVE)


def assign_payload(user_id: str) -> dict[str, Any]:
    return {"assignedTo": f"user:{user_id}"}


def is_release_based(payload: Mapping[str, Any]) -> bool:
    """A resolve that names a release: Sentry answers 400 to it when the org has none (W5)."""
    details = payload.get("statusDetails")
    return (
        payload.get("status") == "resolved"
        and isinstance(details, Mapping)
        and ("inRelease" in details or "inNextRelease" in details)
    )


def _copy(payload: Mapping[str, Any]) -> dict[str, Any]:
    return {k: dict(v) if isinstance(v, Mapping) else v for k, v in payload.items()}


@attrs.frozen
class SentryMember:
    """A member of a Sentry org who is a user: `emails` are (address, is_verified) pairs."""

    user_id: str
    emails: tuple[tuple[str, bool], ...] = ()

    def has_verified_email(self, address: str) -> bool:
        wanted = address.lower()
        return any(verified and email.lower() == wanted for email, verified in self.emails)


def members_with_verified_email(members: Iterable[SentryMember], address: str) -> list[str]:
    """The distinct user ids of the members with this *verified* e-mail, case-insensitive (W5)."""
    found: list[str] = []
    for member in members:
        if member.has_verified_email(address) and member.user_id not in found:
            found.append(member.user_id)
    return found


# §10 glance: what is kept of a Sentry issue answer (up to 1 MB each, §8.3). Bounded so that a
# hostile Sentry cannot fill the glance cache with megabytes, nor the Jira issue view.
MAX_TITLE_CHARS = 500
MAX_SHORT_ID_CHARS = 64
MAX_STATUS_CHARS = 32
MAX_PERMALINK_CHARS = 2048


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _short_id(text: str) -> str:
    return _cut(text, MAX_SHORT_ID_CHARS)


def _title(text: str) -> str:
    return _cut(text, MAX_TITLE_CHARS)


def _status(text: str) -> str:
    return _cut(text, MAX_STATUS_CHARS)


def _whole_link(link: str | None) -> str | None:
    """A permalink too long to keep is dropped, never cut (a cut link points elsewhere)."""
    return link if link is None or len(link) <= MAX_PERMALINK_CHARS else None


@attrs.frozen
class SentryIssue:
    """What the §10 glance shows of a Sentry issue: `GET .../issues/{id}/` as read.

    `permalink` is Sentry's own link, None when it gave none (the page then builds one).
    Text fields are cut to their bounds when built (`MAX_*_CHARS`)."""

    id: str
    short_id: str = attrs.field(converter=_short_id)
    title: str = attrs.field(converter=_title)
    status: str = attrs.field(converter=_status)
    permalink: str | None = attrs.field(default=None, converter=_whole_link)
