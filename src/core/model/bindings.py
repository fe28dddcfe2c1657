"""Bindings of a tenant to Sentry orgs, issue links and account mappings (SPEC §A, W5)."""

from __future__ import annotations

import enum
from datetime import datetime

import attrs


class ResolutionStrategy(enum.StrEnum):
    RESOLVE = "resolve"
    RESOLVE_CURRENT_RELEASE = "resolve_current_release"
    RESOLVE_NEXT_RELEASE = "resolve_next_release"


@attrs.frozen
class StatusRule:
    """A `status_map` entry for one Jira project: status ids that resolve / unresolve (W5)."""

    resolve: frozenset[str] = frozenset()
    unresolve: frozenset[str] = frozenset()


@attrs.frozen
class Binding:
    """A tenant bound to one Sentry org, with its sync settings."""

    tenant_id: int
    org: str
    sentry_url: str  # e.g. https://sentry.io, no trailing slash
    sentry_token: str = attrs.field(repr=False)
    sync_status: bool = True
    sync_assignee: bool = True
    resolution_strategy: ResolutionStrategy = ResolutionStrategy.RESOLVE
    skip_archived: bool = False
    # Jira project id → its rule; a project listed here ignores status categories.
    status_map: dict[str, StatusRule] = attrs.field(factory=dict)


@attrs.frozen
class Link:
    """The Sentry issues linked to one Jira issue key in one org."""

    tenant_id: int
    org: str
    issue_key: str
    sentry_issue_ids: tuple[str, ...]


@attrs.frozen
class AccountMapping:
    """A Jira account mapped to a Sentry user id in one org (W5 assignee, first choice)."""

    tenant_id: int
    org: str
    account_id: str
    sentry_user_id: str


@attrs.frozen
class SearchToken:
    """A search token of one org (S1); only its hash is stored."""

    id: int
    org: str
    created_at: datetime
