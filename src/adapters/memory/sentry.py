"""In-memory Sentry: orgs with tokens, issues with their current state, members; scriptable
failures. It keeps end state (what each issue looks like now) and every call it received."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from core.model.bindings import Binding
from core.model.errors import SentryError, SentryRejected, SentryReleaseRefused
from core.model.sentry import (
    RESOLVE,
    RESOLVE_IN_CURRENT_RELEASE,
    RESOLVE_IN_NEXT_RELEASE,
    UNRESOLVE,
    SentryIssue,
    SentryMember,
    is_release_based,
)

UPDATE = "update_issue"
GET_STATUS = "get_issue_status"
MEMBERS = "members_by_email"
CHECK_ORG = "check_organization"
GET_ISSUE = "get_issue"


@attrs.define
class MemorySentryIssue:
    status: str = "unresolved"
    status_details: dict[str, Any] = attrs.field(factory=dict)
    assigned_to: str | None = None  # a Sentry user id
    title: str = "An error"
    short_id: str | None = None  # None: `<ORG>-<id>`


@attrs.frozen
class MemorySentryCall:
    operation: str  # UPDATE, GET_STATUS or MEMBERS
    org: str
    target: str  # the issue id, or the e-mail searched
    payload: dict[str, Any] | None = attrs.field(default=None, hash=False)


@attrs.define
class _Org:
    token: str
    has_releases: bool = True
    issues: dict[str, MemorySentryIssue] = attrs.field(factory=dict)
    members: list[SentryMember] = attrs.field(factory=list)


@attrs.define
class _Failure:
    error: SentryError
    remaining: int
    operation: str | None
    target: str | None


class MemorySentryApi:
    """`SentryApi` in memory. Arrange with `add_org` / `add_issue` / `add_member`; script
    failures with `fail(error, times=…, operation=…, target=…)`; assert with `issue(...)` and
    `calls`."""

    def __init__(self) -> None:
        self._orgs: dict[str, _Org] = {}
        self._failures: list[_Failure] = []
        self.calls: list[MemorySentryCall] = []

    # -- arrange

    def add_org(self, org: str, token: str, *, has_releases: bool = True) -> None:
        self._orgs[org] = _Org(token=token, has_releases=has_releases)

    def add_issue(
        self,
        org: str,
        issue_id: str,
        *,
        status: str = "unresolved",
        assigned_to: str | None = None,
        title: str = "An error",
        short_id: str | None = None,
    ) -> None:
        self._orgs[org].issues[issue_id] = MemorySentryIssue(
            status=status, assigned_to=assigned_to, title=title, short_id=short_id
        )

    def add_member(self, org: str, user_id: str, emails: Iterable[tuple[str, bool]]) -> None:
        self._orgs[org].members.append(SentryMember(user_id=user_id, emails=tuple(emails)))

    def fail(
        self,
        error: SentryError,
        *,
        times: int = 1,
        operation: str | None = None,
        target: str | None = None,
    ) -> None:
        """The next `times` calls (of this operation, about this issue id or e-mail, when given)
        raise `error` and change nothing."""
        self._failures.append(_Failure(error, times, operation, target))

    # -- assert

    def issue(self, org: str, issue_id: str) -> MemorySentryIssue:
        issue = self._orgs[org].issues[issue_id]
        return attrs.evolve(issue, status_details=dict(issue.status_details))

    def updates(self, org: str | None = None) -> list[MemorySentryCall]:
        return [c for c in self.calls if c.operation == UPDATE and org in (None, c.org)]

    # -- SentryApi

    async def update_issue(
        self, binding: Binding, issue_id: str, payload: Mapping[str, Any]
    ) -> None:
        body = _plain(payload)
        org = self._enter(UPDATE, binding, issue_id, body)
        issue = org.issues.get(issue_id)
        if issue is None:
            raise SentryRejected(
                "Sentry does not know it (updating the Sentry issue, 404)", status=404
            )
        if is_release_based(body) and not org.has_releases:
            raise SentryReleaseRefused("Sentry refused the release-based resolve (400)", status=400)
        if body in (RESOLVE, RESOLVE_IN_CURRENT_RELEASE, RESOLVE_IN_NEXT_RELEASE, UNRESOLVE):
            issue.status = body["status"]
            issue.status_details = dict(body.get("statusDetails") or {})
            return
        if list(body) == ["assignedTo"]:
            target = body["assignedTo"]
            if target is None:
                issue.assigned_to = None
                return
            if isinstance(target, str) and target.startswith("user:"):
                user_id = target.removeprefix("user:")
                if any(m.user_id == user_id for m in org.members):
                    issue.assigned_to = user_id
                    return
        raise SentryRejected(
            "Sentry refused the request (updating the Sentry issue, 400)", status=400
        )

    async def get_issue_status(self, binding: Binding, issue_id: str) -> str:
        org = self._enter(GET_STATUS, binding, issue_id, None)
        issue = org.issues.get(issue_id)
        if issue is None:
            raise SentryRejected(
                "Sentry does not know it (reading the Sentry issue, 404)", status=404
            )
        return issue.status

    async def check_organization(self, binding: Binding) -> None:
        self._enter(CHECK_ORG, binding, binding.org, None)

    async def get_issue(self, binding: Binding, issue_id: str) -> SentryIssue:
        org = self._enter(GET_ISSUE, binding, issue_id, None)
        issue = org.issues.get(issue_id)
        if issue is None:
            raise SentryRejected(
                "Sentry does not know it (reading the Sentry issue, 404)", status=404
            )
        return SentryIssue(
            id=issue_id,
            short_id=issue.short_id or f"{binding.org.upper()}-{issue_id}",
            title=issue.title,
            status=issue.status,
            permalink=f"{binding.sentry_url}/organizations/{binding.org}/issues/{issue_id}/",
        )

    async def members_by_email(self, binding: Binding, email: str) -> list[SentryMember]:
        org = self._enter(MEMBERS, binding, email, None)
        wanted = email.lower()
        return [m for m in org.members if any(e.lower() == wanted for e, _ in m.emails)]

    def _enter(
        self, operation: str, binding: Binding, target: str, payload: dict[str, Any] | None
    ) -> _Org:
        """Record the call, then answer like the server would: scripted failure, unknown org,
        wrong token."""
        self.calls.append(MemorySentryCall(operation, binding.org, target, payload))
        for failure in self._failures:
            if (
                failure.remaining > 0
                and failure.operation in (None, operation)
                and failure.target in (None, target)
            ):
                failure.remaining -= 1
                raise failure.error
        org = self._orgs.get(binding.org)
        if org is None:
            raise SentryRejected("Sentry does not know it (unknown org, 404)", status=404)
        if binding.sentry_token != org.token:
            raise SentryRejected("Sentry refused the org's token (401)", status=401)
        return org


def _plain(payload: Mapping[str, Any]) -> dict[str, Any]:
    return {k: dict(v) if isinstance(v, Mapping) else v for k, v in payload.items()}
