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


@attrs.frozen
class SentryIssue:
    """What the §10 glance shows of a Sentry issue: `GET .../issues/{id}/` as read.

    `permalink` is Sentry's own link, None when it gave none (the page then builds one)."""

    id: str
    short_id: str
    title: str
    status: str
    permalink: str | None = None
