"""One contract suite for every SentryApi: the in-memory fake, and the httpx adapter talking to
a fake Sentry on loopback (W8 calls, W9 error kinds). HTTP-only checks follow the suite."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx
import pytest

from adapters.memory.sentry import GET_STATUS, MEMBERS, UPDATE, MemorySentryApi
from adapters.outbound.sentry import HttpSentryApi, parse_retry_after, sentry_http_client
from core.model.bindings import Binding
from core.model.errors import (
    SentryError,
    SentryRejected,
    SentryReleaseRefused,
    SentryUnavailable,
)
from core.model.host_patterns import parse_host_patterns
from core.model.sentry import SentryMember
from ports.sentry import SentryApi
from tests.support.fake_sentry import Answer, FakeSentry
from tests.support.paths import fixture_json

LOOPBACK_SENTRY = parse_host_patterns("http://127.0.0.1:*")  # §8.3: the fake is named
ORG = "acme"
TOKEN = "sntrys_acme-token-that-must-never-leak-0123456789"
ISSUE = "4711"

RESOLVE = {"status": "resolved"}
RESOLVE_CURRENT = {"status": "resolved", "statusDetails": {"inRelease": "latest"}}
RESOLVE_NEXT = {"status": "resolved", "statusDetails": {"inNextRelease": True}}
UNRESOLVE = {"status": "unresolved"}

# What a failure looks like at each side: an HTTP answer of the fake server, or the error the
# memory fake is told to raise (the one the httpx adapter makes of that answer).
FAILURES: dict[str, tuple[Answer, SentryError]] = {
    "503": (
        Answer(503, {"detail": "down"}),
        SentryUnavailable("Sentry failed (503)", status=503),
    ),
    "429": (
        Answer(429, {"detail": "slow down"}, {"Retry-After": "7"}),
        SentryUnavailable("Sentry is rate limiting (429)", status=429, retry_after=7),
    ),
    "400": (
        Answer(400, {"detail": "bad"}),
        SentryRejected("Sentry refused the request (400)", status=400),
    ),
    "404": (
        Answer(404, {"detail": "gone"}),
        SentryRejected("Sentry does not know it (404)", status=404),
    ),
    "timeout": (
        Answer(hang=5.0),
        SentryUnavailable("Sentry did not answer in time"),
    ),
    "dropped": (
        Answer(drop=True),
        SentryUnavailable("could not reach Sentry"),
    ),
}


class SentryWorld(Protocol):
    """A Sentry to arrange and inspect, and the SentryApi under test talking to it."""

    api: SentryApi

    def binding(self, org: str = ORG, token: str = TOKEN) -> Binding: ...
    def add_org(self, org: str, token: str, *, has_releases: bool = True) -> None: ...
    def add_issue(self, org: str, issue_id: str, *, status: str = "unresolved") -> None: ...
    def add_member(self, org: str, user_id: str, emails: Iterable[tuple[str, bool]]) -> None: ...
    def state(self, org: str, issue_id: str) -> tuple[str, dict[str, Any], str | None]: ...
    def fail_next(self, operation: str, org: str, target: str, failure: str, times: int) -> None:
        """`operation` is UPDATE, GET_STATUS or MEMBERS; `target` the issue id or e-mail."""
        ...


class MemoryWorld:
    def __init__(self) -> None:
        self.api = self.fake = MemorySentryApi()

    def binding(self, org: str = ORG, token: str = TOKEN) -> Binding:
        return Binding(
            tenant_id=1, org=org, sentry_url="https://sentry.invalid", sentry_token=token
        )

    def add_org(self, org: str, token: str, *, has_releases: bool = True) -> None:
        self.fake.add_org(org, token, has_releases=has_releases)

    def add_issue(self, org: str, issue_id: str, *, status: str = "unresolved") -> None:
        self.fake.add_issue(org, issue_id, status=status)

    def add_member(self, org: str, user_id: str, emails: Iterable[tuple[str, bool]]) -> None:
        self.fake.add_member(org, user_id, emails)

    def state(self, org: str, issue_id: str) -> tuple[str, dict[str, Any], str | None]:
        issue = self.fake.issue(org, issue_id)
        return issue.status, issue.status_details, issue.assigned_to

    def fail_next(self, operation: str, org: str, target: str, failure: str, times: int) -> None:
        self.fake.fail(FAILURES[failure][1], times=times, operation=operation, target=target)


class HttpWorld:
    def __init__(self, server: FakeSentry, client: httpx.AsyncClient) -> None:
        self.server = server
        self.api = HttpSentryApi(client, timeout=0.5, sentry_hosts=LOOPBACK_SENTRY)

    def binding(self, org: str = ORG, token: str = TOKEN) -> Binding:
        return Binding(tenant_id=1, org=org, sentry_url=self.server.url, sentry_token=token)

    def add_org(self, org: str, token: str, *, has_releases: bool = True) -> None:
        self.server.add_org(org, token, has_releases=has_releases)

    def add_issue(self, org: str, issue_id: str, *, status: str = "unresolved") -> None:
        self.server.add_issue(org, issue_id, status=status)

    def add_member(self, org: str, user_id: str, emails: Iterable[tuple[str, bool]]) -> None:
        self.server.add_member(org, user_id, emails)

    def state(self, org: str, issue_id: str) -> tuple[str, dict[str, Any], str | None]:
        issue = self.server.issue(org, issue_id)
        return issue.status, issue.status_details, issue.assigned_to

    def fail_next(self, operation: str, org: str, target: str, failure: str, times: int) -> None:
        method = "PUT" if operation == UPDATE else "GET"
        path = (
            FakeSentry.members_path(org)
            if operation == MEMBERS
            else (FakeSentry.issue_path(org, target))
        )
        self.server.script(method, path, *[FAILURES[failure][0]] * times)


@pytest.fixture
async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    async with sentry_http_client(LOOPBACK_SENTRY) as client:
        yield client


@pytest.fixture(params=["memory", "http"])
def world(
    request: pytest.FixtureRequest, fake_sentry: FakeSentry, http_client: httpx.AsyncClient
) -> SentryWorld:
    chosen: SentryWorld = (
        MemoryWorld() if request.param == "memory" else HttpWorld(fake_sentry, http_client)
    )
    chosen.add_org(ORG, TOKEN)
    chosen.add_issue(ORG, ISSUE)
    return chosen


# ------------------------------------------------------------------ the W8 calls


@pytest.mark.parametrize(
    ("payload", "status", "details"),
    [
        (RESOLVE, "resolved", {}),
        (RESOLVE_CURRENT, "resolved", {"inRelease": "latest"}),
        (RESOLVE_NEXT, "resolved", {"inNextRelease": True}),
    ],
)
async def test_W8_each_resolve_body_resolves_the_issue(
    world: SentryWorld, payload: dict[str, Any], status: str, details: dict[str, Any]
) -> None:
    await world.api.update_issue(world.binding(), ISSUE, payload)
    assert world.state(ORG, ISSUE) == (status, details, None)
    assert await world.api.get_issue_status(world.binding(), ISSUE) == "resolved"


async def test_W8_unresolve_reopens_a_resolved_issue(world: SentryWorld) -> None:
    await world.api.update_issue(world.binding(), ISSUE, RESOLVE_NEXT)
    await world.api.update_issue(world.binding(), ISSUE, UNRESOLVE)
    assert world.state(ORG, ISSUE) == ("unresolved", {}, None)


async def test_W8_assign_to_a_member_then_unassign(world: SentryWorld) -> None:
    world.add_member(ORG, "42", [("grace@example.com", True)])
    await world.api.update_issue(world.binding(), ISSUE, {"assignedTo": "user:42"})
    assert world.state(ORG, ISSUE)[2] == "42"
    await world.api.update_issue(world.binding(), ISSUE, {"assignedTo": None})
    assert world.state(ORG, ISSUE)[2] is None


async def test_W8_assigning_someone_who_is_not_a_member_is_refused(world: SentryWorld) -> None:
    with pytest.raises(SentryRejected) as refused:
        await world.api.update_issue(world.binding(), ISSUE, {"assignedTo": "user:999"})
    assert refused.value.status == 400 and not refused.value.transient
    assert world.state(ORG, ISSUE) == ("unresolved", {}, None)


async def test_W8_a_body_outside_W8_is_refused(world: SentryWorld) -> None:
    with pytest.raises(SentryRejected):
        await world.api.update_issue(world.binding(), ISSUE, {"status": "ignored"})
    assert world.state(ORG, ISSUE) == ("unresolved", {}, None)


async def test_W8_issue_status_is_read_for_skip_archived(world: SentryWorld) -> None:
    world.add_issue(ORG, "5000", status="ignored")
    assert await world.api.get_issue_status(world.binding(), "5000") == "ignored"
    assert await world.api.get_issue_status(world.binding(), ISSUE) == "unresolved"


async def test_W8_members_by_email_returns_users_with_their_verified_flags(
    world: SentryWorld,
) -> None:
    recorded = fixture_json("sentry-members-by-email.json")[0]["user"]
    world.add_member(
        ORG, recorded["id"], [(e["email"], e["is_verified"]) for e in recorded["emails"]]
    )
    world.add_member(ORG, "43", [("someone@example.com", True)])
    members = await world.api.members_by_email(world.binding(), "Grace@Example.com")
    assert members == [
        SentryMember(
            user_id="42",
            emails=(("grace@example.com", True), ("g.hopper@example.org", False)),
        )
    ]
    assert await world.api.members_by_email(world.binding(), "nobody@example.com") == []


async def test_W8_an_unknown_issue_is_a_permanent_404(world: SentryWorld) -> None:
    with pytest.raises(SentryRejected) as missing:
        await world.api.update_issue(world.binding(), "999", RESOLVE)
    assert missing.value.status == 404 and not missing.value.transient
    with pytest.raises(SentryRejected):
        await world.api.get_issue_status(world.binding(), "999")


# ------------------------------------------------------------------ W5 release fallback


@pytest.mark.parametrize("payload", [RESOLVE_CURRENT, RESOLVE_NEXT])
async def test_W5_release_resolve_in_an_org_without_releases_is_the_special_400(
    world: SentryWorld, payload: dict[str, Any]
) -> None:
    world.add_org("bare", "bare-token-0123456789", has_releases=False)
    world.add_issue("bare", "1")
    binding = world.binding("bare", "bare-token-0123456789")
    with pytest.raises(SentryReleaseRefused) as refused:
        await world.api.update_issue(binding, "1", payload)
    assert refused.value.status == 400 and not refused.value.transient
    assert world.state("bare", "1") == ("unresolved", {}, None)
    await world.api.update_issue(binding, "1", RESOLVE)  # the fallback goes through
    assert world.state("bare", "1") == ("resolved", {}, None)


async def test_W9_a_400_to_a_plain_resolve_is_not_the_release_case(world: SentryWorld) -> None:
    world.fail_next(UPDATE, ORG, ISSUE, "400", times=1)
    with pytest.raises(SentryRejected) as refused:
        await world.api.update_issue(world.binding(), ISSUE, RESOLVE)
    assert not isinstance(refused.value, SentryReleaseRefused)
    assert refused.value.status == 400 and not refused.value.transient


# ------------------------------------------------------------------ W9 error kinds


@pytest.mark.parametrize("failure", ["503", "timeout", "dropped"])
async def test_W9_transient_failures_change_nothing_and_the_next_attempt_succeeds(
    world: SentryWorld, failure: str
) -> None:
    world.fail_next(UPDATE, ORG, ISSUE, failure, times=2)
    for _ in range(2):
        with pytest.raises(SentryUnavailable) as down:
            await world.api.update_issue(world.binding(), ISSUE, RESOLVE)
        assert down.value.transient
    assert world.state(ORG, ISSUE) == ("unresolved", {}, None)
    await world.api.update_issue(world.binding(), ISSUE, RESOLVE)
    assert world.state(ORG, ISSUE)[0] == "resolved"


async def test_W9_503_carries_its_status(world: SentryWorld) -> None:
    world.fail_next(GET_STATUS, ORG, ISSUE, "503", times=1)
    with pytest.raises(SentryUnavailable) as down:
        await world.api.get_issue_status(world.binding(), ISSUE)
    assert down.value.status == 503 and down.value.retry_after is None


async def test_W9_429_is_transient_with_its_retry_after(world: SentryWorld) -> None:
    world.fail_next(MEMBERS, ORG, "grace@example.com", "429", times=1)
    with pytest.raises(SentryUnavailable) as limited:
        await world.api.members_by_email(world.binding(), "grace@example.com")
    assert limited.value.transient
    assert limited.value.status == 429
    assert limited.value.retry_after == 7


async def test_W9_a_404_is_permanent(world: SentryWorld) -> None:
    world.fail_next(UPDATE, ORG, ISSUE, "404", times=1)
    with pytest.raises(SentryRejected) as gone:
        await world.api.update_issue(world.binding(), ISSUE, UNRESOLVE)
    assert gone.value.status == 404 and not gone.value.transient


async def test_W8_a_wrong_token_is_refused_as_permanent_401_and_never_echoed(
    world: SentryWorld,
) -> None:
    wrong = "sntrys_wrong-token-0123456789-abcdef"
    with pytest.raises(SentryRejected) as refused:
        await world.api.update_issue(world.binding(token=wrong), ISSUE, RESOLVE)
    assert refused.value.status == 401 and not refused.value.transient
    assert world.state(ORG, ISSUE) == ("unresolved", {}, None)
    for text in (str(refused.value), repr(refused.value), refused.value.detail):
        assert wrong not in text and TOKEN not in text
    with pytest.raises(SentryRejected):
        await world.api.members_by_email(world.binding(token=wrong), "grace@example.com")


async def test_W8_an_unknown_org_is_refused(world: SentryWorld) -> None:
    with pytest.raises(SentryRejected) as refused:
        await world.api.get_issue_status(world.binding(org="other"), ISSUE)
    assert not refused.value.transient


# ------------------------------------------------------------------ httpx adapter only


@pytest.fixture
def served(fake_sentry: FakeSentry, http_client: httpx.AsyncClient) -> HttpWorld:
    world = HttpWorld(fake_sentry, http_client)
    world.add_org(ORG, TOKEN)
    world.add_issue(ORG, ISSUE)
    return world


@pytest.mark.parametrize(
    "payload",
    [
        RESOLVE,
        RESOLVE_CURRENT,
        RESOLVE_NEXT,
        UNRESOLVE,
        {"assignedTo": "user:42"},
        {"assignedTo": None},
    ],
)
async def test_W8_http_put_sends_exactly_the_body_with_the_bearer_token(
    served: HttpWorld, payload: dict[str, Any]
) -> None:
    served.add_member(ORG, "42", [("grace@example.com", True)])
    await served.api.update_issue(served.binding(), ISSUE, payload)
    [sent] = served.server.requests
    assert (sent.method, sent.path, sent.query) == (
        "PUT",
        f"/api/0/organizations/{ORG}/issues/{ISSUE}/",
        {},
    )
    assert sent.json == payload
    assert sent.authorization == f"Bearer {TOKEN}"


async def test_W8_http_members_query_is_email_colon_address(served: HttpWorld) -> None:
    await served.api.members_by_email(served.binding(), "grace+jira@example.com")
    [sent] = served.server.requests
    assert (sent.method, sent.path) == ("GET", f"/api/0/organizations/{ORG}/members/")
    assert sent.query == {"query": ["email:grace+jira@example.com"]}
    assert sent.authorization == f"Bearer {TOKEN}"


async def test_W8_http_get_issue_status_path(served: HttpWorld) -> None:
    await served.api.get_issue_status(served.binding(), ISSUE)
    [sent] = served.server.requests
    assert (sent.method, sent.path, sent.json) == (
        "GET",
        f"/api/0/organizations/{ORG}/issues/{ISSUE}/",
        None,
    )


async def test_W8_pending_invites_are_not_members_to_assign(served: HttpWorld) -> None:
    served.server.add_invite(ORG, "grace@example.com")
    assert await served.api.members_by_email(served.binding(), "grace@example.com") == []


@pytest.mark.parametrize("user_id", ["10\u0000", "\u001b[2J", "9" * 65, "\ud800"])
async def test_W8_a_member_whose_user_id_no_engine_can_hold_is_no_one_to_assign(
    served: HttpWorld, user_id: str,
) -> None:
    """docs/security.md, "Malformed identifiers": a Sentry user id is sent back in the PUT and
    kept in the account mappings; one that is not short printable text (a NUL, a control, a
    lone surrogate, over 64 characters) is no member at all, beside a good one."""
    member = {"id": "1", "email": "grace@example.com", "pending": False,
              "user": {"id": user_id, "emails": [{"email": "grace@example.com",
                                                  "is_verified": True}]}}
    good = {"id": "2", "email": "grace@example.com", "pending": False,
            "user": {"id": "42", "emails": [{"email": "grace@example.com",
                                              "is_verified": True}]}}
    # JSON-encoded by the fake: a NUL travels as \u0000, a lone surrogate as \ud800.
    served.server.script("GET", FakeSentry.members_path(ORG), Answer(200, [member, good]))
    members = await served.api.members_by_email(served.binding(), "grace@example.com")
    assert [m.user_id for m in members] == ["42"]


async def test_W8_a_sentry_url_with_a_path_prefix_is_kept(
    served: HttpWorld, http_client: httpx.AsyncClient
) -> None:
    binding = Binding(
        tenant_id=1, org=ORG, sentry_url=served.server.url + "/sentry/", sentry_token=TOKEN
    )
    with pytest.raises(SentryRejected) as missing:
        await served.api.get_issue_status(binding, ISSUE)
    assert missing.value.status == 404  # the fake serves no prefix: the request went there
    assert served.server.requests[0].path == f"/sentry/api/0/organizations/{ORG}/issues/{ISSUE}/"


async def test_W8_a_redirect_is_not_followed(served: HttpWorld) -> None:
    elsewhere = served.server.url + FakeSentry.issue_path(ORG, "1")
    served.server.script(
        "PUT", FakeSentry.issue_path(ORG, ISSUE), Answer(302, None, {"Location": elsewhere})
    )
    with pytest.raises(SentryRejected) as refused:
        await served.api.update_issue(served.binding(), ISSUE, RESOLVE)
    assert refused.value.status == 302 and not refused.value.transient
    assert len(served.server.requests) == 1


async def test_W9_a_hanging_sentry_times_out_as_transient(served: HttpWorld) -> None:
    served.server.hang("GET", FakeSentry.issue_path(ORG, ISSUE), seconds=5)
    started = time.monotonic()
    with pytest.raises(SentryUnavailable):
        await served.api.get_issue_status(served.binding(), ISSUE)
    assert time.monotonic() - started < 4  # the 0.5 s timeout cut it, not the hang's end


@pytest.mark.parametrize("status", [500, 502, 504])
async def test_W9_every_5xx_is_transient(served: HttpWorld, status: int) -> None:
    served.server.fail("PUT", FakeSentry.issue_path(ORG, ISSUE), status)
    with pytest.raises(SentryUnavailable) as down:
        await served.api.update_issue(served.binding(), ISSUE, RESOLVE)
    assert down.value.status == status


@pytest.mark.parametrize("status", [401, 403, 409, 410, 422])
async def test_W9_other_4xx_are_permanent(served: HttpWorld, status: int) -> None:
    served.server.fail("PUT", FakeSentry.issue_path(ORG, ISSUE), status)
    with pytest.raises(SentryRejected) as refused:
        await served.api.update_issue(served.binding(), ISSUE, RESOLVE_NEXT)
    assert refused.value.status == status
    assert not isinstance(refused.value, SentryReleaseRefused)


async def test_W9_the_error_never_carries_sentrys_body(served: HttpWorld) -> None:
    served.server.script(
        "PUT",
        FakeSentry.issue_path(ORG, ISSUE),
        Answer(400, {"detail": "secret internals <html>"}),
    )
    with pytest.raises(SentryRejected) as refused:
        await served.api.update_issue(served.binding(), ISSUE, RESOLVE)
    assert "internals" not in str(refused.value) and "html" not in str(refused.value)


async def test_W9_an_unreadable_answer_is_permanent(served: HttpWorld) -> None:
    served.server.script("GET", FakeSentry.issue_path(ORG, ISSUE), Answer(200, ["no", "status"]))
    with pytest.raises(SentryRejected):
        await served.api.get_issue_status(served.binding(), ISSUE)


async def test_W9_an_unreachable_sentry_is_transient(http_client: httpx.AsyncClient) -> None:
    with FakeSentry() as gone:
        url = gone.url
    api = HttpSentryApi(http_client, timeout=0.5, sentry_hosts=LOOPBACK_SENTRY)
    binding = Binding(tenant_id=1, org=ORG, sentry_url=url, sentry_token=TOKEN)
    with pytest.raises(SentryUnavailable) as down:
        await api.update_issue(binding, ISSUE, RESOLVE)
    assert down.value.status is None and TOKEN not in str(down.value)


@pytest.mark.parametrize("issue_id", ["../members", "1/2", "..", "", "4711?x=1", "a b"])
async def test_W8_an_issue_id_that_is_not_one_path_segment_is_refused_unsent(
    served: HttpWorld, issue_id: str
) -> None:
    with pytest.raises(SentryRejected):
        await served.api.update_issue(served.binding(), issue_id, RESOLVE)
    assert served.server.requests == []


async def test_W8_a_token_that_cannot_be_a_header_is_refused_unsent(served: HttpWorld) -> None:
    for bad in ("line\nbreak-token", "tøken-non-ascii"):
        with pytest.raises(SentryRejected) as refused:
            await served.api.update_issue(served.binding(token=bad), ISSUE, RESOLVE)
        assert bad not in str(refused.value)
    assert served.server.requests == []


def test_W9_retry_after_is_read_as_seconds_or_a_date_and_capped() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7
    assert parse_retry_after(" 120 ") == 120
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:30 GMT", now=now) == 30
    assert parse_retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now=now) == 0
    assert parse_retry_after("99999999999999999999") == 3600
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-5") is None
