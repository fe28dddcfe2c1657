"""The functional core of "handle issue update": one test per rule of W5–W7 (and W6/W9 checks
the shell repeats before every write). Deliveries are the recorded fixtures, edited."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
from tests.support.paths import fixture_json

from core.issue_update import (
    Actions,
    Decision,
    Delivery,
    Kind,
    Lookups,
    Need,
    NeedAccountMapping,
    NeedDoneStatuses,
    NeedJiraEmail,
    NeedMembers,
    Outcome,
    Rekey,
    SentryWrite,
    Watermark,
    WatermarkKey,
    advance_after,
    after_failure,
    applied,
    check_write,
    decide,
    gather_lookups,
    rekey_decision,
    retry_delay,
)
from core.model.bindings import AccountMapping, Binding, Link, ResolutionStrategy, StatusRule
from core.model.errors import SentryRejected, SentryUnavailable
from core.model.sentry import SentryMember

TENANT = 1
ORG = "acme"
DONE = frozenset({"10101", "10102"})  # jira-status-list.json: the `done` category
UPDATED = datetime(2025, 11, 28, 9, 0, tzinfo=UTC)
GRACE = "5b10ac8d82e05b22cc7d4ef5"  # the assignee fixture's accountId
JIRA_STATUSES = fixture_json("jira-status-list.json")


def test_DONE_matches_the_recorded_status_list() -> None:
    assert {s["id"] for s in JIRA_STATUSES if s["statusCategory"]["key"] == "done"} == DONE


# ------------------------------------------------------------------ builders


def a_binding(org: str = ORG, **settings: Any) -> Binding:
    return Binding(
        tenant_id=TENANT,
        org=org,
        sentry_url="https://sentry.example.com",
        sentry_token="sntrys_token",
        **settings,
    )


def a_link(*sentry_ids: str, org: str = ORG, key: str = "APP-123") -> Link:
    return Link(tenant_id=TENANT, org=org, issue_key=key, sentry_issue_ids=sentry_ids)


def status_delivery(
    from_id: str = "3",
    to_id: str = "10101",
    *,
    updated: str | None = "2025-11-28T09:00:00.000+0000",
    delivery_id: str = "d-status",
) -> Delivery:
    payload = fixture_json("jira-issue-updated-status.json")
    item = payload["changelog"]["items"][1]
    item["from"], item["to"] = from_id, to_id
    if updated is None:
        del payload["issue"]["fields"]["updated"]
    else:
        payload["issue"]["fields"]["updated"] = updated
    return Delivery.parse(payload, delivery_id=delivery_id, tenant_id=TENANT)


_MISSING = object()


def assignee_delivery(
    assignee: Any = _MISSING,
    *,
    updated: str = "2025-11-28T09:00:00.000+0000",
    delivery_id: str = "d-assignee",
) -> Delivery:
    """The assignee fixture; `assignee` replaces issue.fields.assignee (None: null; "absent":
    the field removed; a dict: that object; default: the recorded Grace Hopper)."""
    payload = fixture_json("jira-issue-updated-assignee.json")
    fields = payload["issue"]["fields"]
    fields["updated"] = updated
    if assignee == "absent":
        del fields["assignee"]
    elif assignee is not _MISSING:
        fields["assignee"] = assignee
    return Delivery.parse(payload, delivery_id=delivery_id, tenant_id=TENANT)


def hidden_grace() -> dict[str, Any]:
    grace = copy.deepcopy(fixture_json("jira-issue-updated-assignee.json"))
    assignee: dict[str, Any] = grace["issue"]["fields"]["assignee"]
    del assignee["emailAddress"]
    return assignee


def grace_member(user_id: str = "42", *, verified: bool = True) -> SentryMember:
    return SentryMember(user_id, (("grace@example.com", verified), ("g.hopper@example.org", False)))


class FakeShell:
    """Performs the lookups the core names, from plain data, and remembers what was asked."""

    def __init__(
        self,
        *,
        mappings: Sequence[AccountMapping] = (),
        jira_emails: Mapping[str, str | None] | None = None,
        members: Mapping[str, Sequence[SentryMember]] | None = None,
    ) -> None:
        self.mappings = mappings
        self.jira_emails = jira_emails or {}
        self.members = members or {}
        self.asked: list[Need] = []

    async def perform(self, need: Need) -> Any:
        self.asked.append(need)
        if isinstance(need, NeedDoneStatuses):
            return [s["id"] for s in JIRA_STATUSES if s["statusCategory"]["key"] == "done"]
        if isinstance(need, NeedAccountMapping):
            return next(
                (
                    m.sentry_user_id
                    for m in self.mappings
                    if (m.org, m.account_id) == (need.org, need.account_id)
                ),
                None,
            )
        if isinstance(need, NeedJiraEmail):
            return self.jira_emails.get(need.account_id)  # None: hidden (Jira said 403 / 404)
        wanted = need.email.lower()  # Sentry's search matches any of a member's e-mails
        return [
            m
            for m in self.members.get(need.org, ())
            if any(e.lower() == wanted for e, _ in m.emails)
        ]

    def asked_kinds(self) -> set[type]:
        return {type(n) for n in self.asked}


async def run(
    delivery: Delivery,
    bindings: Sequence[Binding],
    links: Sequence[Link],
    *,
    shell: FakeShell | None = None,
    watermarks: Mapping[WatermarkKey, Watermark] | None = None,
    look_up_email: bool = False,
) -> Actions:
    shell = shell or FakeShell()
    lookups = await gather_lookups(
        delivery,
        bindings=bindings,
        links=links,
        look_up_email=look_up_email,
        perform=shell.perform,
    )
    return decide(
        delivery,
        bindings=bindings,
        links=links,
        lookups=lookups,
        watermarks=watermarks or {},
        look_up_email=look_up_email,
    )


def payloads(actions: Actions) -> list[tuple[str, str, dict[str, Any]]]:
    return [(w.org, w.sentry_issue_id, w.payload) for w in actions.writes]


def outcomes(actions: Actions) -> list[tuple[Kind, Outcome, str | None, str | None]]:
    return [(d.kind, d.outcome, d.org, d.sentry_issue_id) for d in actions.decisions]


def status_key(org: str = ORG) -> WatermarkKey:
    return WatermarkKey(TENANT, "20417", org, Kind.STATUS)


def assignee_key(org: str = ORG) -> WatermarkKey:
    return WatermarkKey(TENANT, "20417", org, Kind.ASSIGNEE)


# ------------------------------------------------------------------ W5 status by category


async def test_W5_a_move_into_done_resolves() -> None:
    actions = await run(status_delivery("3", "10101"), [a_binding()], [a_link("4711")])
    assert payloads(actions) == [(ORG, "4711", {"status": "resolved"})]
    [write] = actions.writes
    assert write.kind is Kind.STATUS and write.updated == UPDATED
    assert "In Progress (3) → Done (10101)" in write.reason
    assert "entered the done category" in write.reason
    assert actions.decisions == () and actions.advances == ()


async def test_W5_a_move_out_of_done_unresolves() -> None:
    actions = await run(status_delivery("10101", "3"), [a_binding()], [a_link("4711")])
    assert payloads(actions) == [(ORG, "4711", {"status": "unresolved"})]
    assert "left the done category" in actions.writes[0].reason


@pytest.mark.parametrize(("from_id", "to_id"), [("10101", "10102"), ("1", "3")])
async def test_W5_a_move_within_or_outside_done_is_a_noop_that_advances_the_watermark(
    from_id: str, to_id: str
) -> None:
    actions = await run(status_delivery(from_id, to_id), [a_binding()], [a_link("4711", "4712")])
    assert actions.writes == ()
    assert outcomes(actions) == [
        (Kind.STATUS, Outcome.NOOP, ORG, "4711"),
        (Kind.STATUS, Outcome.NOOP, ORG, "4712"),
    ]
    assert [(a.key, a.watermark) for a in actions.advances] == [
        (status_key(), Watermark(UPDATED, "d-status"))
    ]


# ------------------------------------------------------------------ W5 status map


PROJECT = "10000"  # the status fixture's project id


@pytest.mark.parametrize(
    ("rule", "to_id", "expected"),
    [
        (StatusRule(resolve=frozenset({"10100"})), "10100", {"status": "resolved"}),
        (StatusRule(unresolve=frozenset({"10101"})), "10101", {"status": "unresolved"}),
    ],
)
async def test_W5_a_status_map_entry_alone_decides(
    rule: StatusRule, to_id: str, expected: dict[str, Any]
) -> None:
    shell = FakeShell()
    binding = a_binding(status_map={PROJECT: rule})
    actions = await run(status_delivery("3", to_id), [binding], [a_link("4711")], shell=shell)
    assert payloads(actions) == [(ORG, "4711", expected)]
    assert f"status map of project {PROJECT}" in actions.writes[0].reason
    assert shell.asked == []  # the done categories were not needed


async def test_W5_a_status_map_entry_naming_neither_is_a_noop_even_into_done() -> None:
    binding = a_binding(status_map={PROJECT: StatusRule(resolve=frozenset({"10100"}))})
    actions = await run(status_delivery("3", "10101"), [binding], [a_link("4711")])
    assert actions.writes == ()
    assert outcomes(actions) == [(Kind.STATUS, Outcome.NOOP, ORG, "4711")]
    assert "neither resolves nor unresolves" in actions.decisions[0].reason


async def test_W5_a_status_map_of_another_project_falls_back_to_categories() -> None:
    shell = FakeShell()
    binding = a_binding(status_map={"99999": StatusRule(unresolve=frozenset({"10101"}))})
    actions = await run(status_delivery("3", "10101"), [binding], [a_link("4711")], shell=shell)
    assert payloads(actions) == [(ORG, "4711", {"status": "resolved"})]
    assert shell.asked == [NeedDoneStatuses()]


# ------------------------------------------------------------------ W5 resolution strategies


@pytest.mark.parametrize(
    ("strategy", "payload", "fallback"),
    [
        (ResolutionStrategy.RESOLVE, {"status": "resolved"}, None),
        (
            ResolutionStrategy.RESOLVE_CURRENT_RELEASE,
            {"status": "resolved", "statusDetails": {"inRelease": "latest"}},
            {"status": "resolved"},
        ),
        (
            ResolutionStrategy.RESOLVE_NEXT_RELEASE,
            {"status": "resolved", "statusDetails": {"inNextRelease": True}},
            {"status": "resolved"},
        ),
    ],
)
async def test_W5_resolve_honours_the_resolution_strategy(
    strategy: ResolutionStrategy, payload: dict[str, Any], fallback: dict[str, Any] | None
) -> None:
    binding = a_binding(resolution_strategy=strategy)
    [write] = (await run(status_delivery(), [binding], [a_link("4711")])).writes
    assert write.payload == payload
    assert write.fallback == fallback
    assert strategy.value in write.reason


async def test_W5_unresolve_has_no_release_fallback() -> None:
    binding = a_binding(resolution_strategy=ResolutionStrategy.RESOLVE_NEXT_RELEASE)
    [write] = (await run(status_delivery("10101", "3"), [binding], [a_link("4711")])).writes
    assert write.payload == {"status": "unresolved"} and write.fallback is None


async def test_W5_the_no_release_fallback_is_a_plain_resolve_journalled_with_why() -> None:
    binding = a_binding(resolution_strategy=ResolutionStrategy.RESOLVE_CURRENT_RELEASE)
    [write] = (await run(status_delivery(), [binding], [a_link("4711")])).writes
    fallback = write.with_fallback()
    assert fallback is not None
    assert fallback.payload == {"status": "resolved"}
    assert fallback.fallback is None and fallback.with_fallback() is None
    assert (fallback.org, fallback.sentry_issue_id, fallback.kind) == (ORG, "4711", Kind.STATUS)
    entry = applied(fallback)
    assert entry.outcome is Outcome.APPLIED
    assert "no release" in entry.detail and "resolved without one" in entry.detail
    plain = (await run(status_delivery(), [a_binding()], [a_link("4711")])).writes[0]
    assert plain.with_fallback() is None


# ------------------------------------------------------------------ W5 skip_archived


async def test_W5_skip_archived_an_ignored_sentry_issue_gets_no_status_write() -> None:
    [write] = (
        await run(status_delivery(), [a_binding(skip_archived=True)], [a_link("4711")])
    ).writes
    assert write.skip_if_ignored
    skipped = check_write(write, watermark=None, sentry_status="ignored")
    assert skipped is not None
    assert (skipped.outcome, skipped.kind, skipped.sentry_issue_id) == (
        Outcome.NOOP,
        Kind.STATUS,
        "4711",
    )
    assert "archived" in skipped.reason
    assert check_write(write, watermark=None, sentry_status="unresolved") is None
    assert check_write(write, watermark=None, sentry_status="resolved") is None


async def test_W5_without_skip_archived_an_ignored_issue_is_written() -> None:
    [write] = (await run(status_delivery(), [a_binding()], [a_link("4711")])).writes
    assert not write.skip_if_ignored
    assert check_write(write, watermark=None, sentry_status="ignored") is None


# ------------------------------------------------------------------ W5 switches


async def test_W5_sync_status_off_writes_no_status() -> None:
    shell = FakeShell()
    actions = await run(
        status_delivery(), [a_binding(sync_status=False)], [a_link("4711")], shell=shell
    )
    assert actions.writes == () and actions.advances == ()
    assert outcomes(actions) == [(Kind.STATUS, Outcome.IGNORED, ORG, None)]
    assert shell.asked == []


async def test_W5_sync_assignee_off_writes_no_assignee() -> None:
    shell = FakeShell(members={ORG: [grace_member()]})
    actions = await run(
        assignee_delivery(), [a_binding(sync_assignee=False)], [a_link("4711")], shell=shell
    )
    assert actions.writes == ()
    assert outcomes(actions) == [(Kind.ASSIGNEE, Outcome.IGNORED, ORG, None)]
    assert shell.asked == []


# ------------------------------------------------------------------ W5 assignee chain


@pytest.mark.parametrize("assignee", [None, "absent"])
async def test_W5_a_null_or_missing_assignee_unassigns(assignee: Any) -> None:
    shell = FakeShell()
    actions = await run(
        assignee_delivery(assignee), [a_binding()], [a_link("4711", "4712")], shell=shell
    )
    assert payloads(actions) == [
        (ORG, "4711", {"assignedTo": None}),
        (ORG, "4712", {"assignedTo": None}),
    ]
    assert shell.asked == []


async def test_W5_the_account_mapping_wins_over_the_email() -> None:
    shell = FakeShell(
        mappings=[AccountMapping(TENANT, ORG, GRACE, "7")], members={ORG: [grace_member("42")]}
    )
    actions = await run(assignee_delivery(), [a_binding()], [a_link("4711")], shell=shell)
    assert payloads(actions) == [(ORG, "4711", {"assignedTo": "user:7"})]
    assert shell.asked == [NeedAccountMapping(ORG, GRACE)]


async def test_W5_a_mapping_of_another_org_does_not_count() -> None:
    shell = FakeShell(
        mappings=[AccountMapping(TENANT, "other", GRACE, "7")], members={ORG: [grace_member()]}
    )
    actions = await run(assignee_delivery(), [a_binding()], [a_link("4711")], shell=shell)
    assert payloads(actions) == [(ORG, "4711", {"assignedTo": "user:42"})]


async def test_W5_the_payload_email_is_used_without_asking_jira() -> None:
    shell = FakeShell(members={ORG: [grace_member("42")]}, jira_emails={GRACE: "x@example.com"})
    actions = await run(
        assignee_delivery(), [a_binding()], [a_link("4711")], shell=shell, look_up_email=True
    )
    assert payloads(actions) == [(ORG, "4711", {"assignedTo": "user:42"})]
    assert shell.asked == [
        NeedAccountMapping(ORG, GRACE),
        NeedMembers(ORG, "grace@example.com"),
    ]
    assert "from the webhook" in actions.writes[0].reason


async def test_W5_a_hidden_email_is_looked_up_with_the_email_scope() -> None:
    shell = FakeShell(members={ORG: [grace_member("42")]}, jira_emails={GRACE: "Grace@Example.com"})
    actions = await run(
        assignee_delivery(hidden_grace()),
        [a_binding()],
        [a_link("4711")],
        shell=shell,
        look_up_email=True,
    )
    assert payloads(actions) == [(ORG, "4711", {"assignedTo": "user:42"})]
    assert shell.asked == [
        NeedAccountMapping(ORG, GRACE),
        NeedJiraEmail(GRACE),
        NeedMembers(ORG, "Grace@Example.com"),
    ]
    assert "e-mail API" in actions.writes[0].reason


async def test_W5_a_hidden_email_without_the_scope_is_unresolvable_and_jira_is_not_asked() -> None:
    shell = FakeShell(members={ORG: [grace_member()]}, jira_emails={GRACE: "grace@example.com"})
    actions = await run(
        assignee_delivery(hidden_grace()), [a_binding()], [a_link("4711")], shell=shell
    )
    assert actions.writes == () and actions.advances == ()
    assert outcomes(actions) == [(Kind.ASSIGNEE, Outcome.UNRESOLVABLE, ORG, "4711")]
    assert "scope is off" in actions.decisions[0].reason
    assert NeedJiraEmail not in shell.asked_kinds()


async def test_W5_email_api_403_means_hidden_so_unresolvable_never_unassign() -> None:
    shell = FakeShell(members={ORG: [grace_member()]}, jira_emails={GRACE: None})
    actions = await run(
        assignee_delivery(hidden_grace()),
        [a_binding()],
        [a_link("4711")],
        shell=shell,
        look_up_email=True,
    )
    assert actions.writes == ()
    assert outcomes(actions) == [(Kind.ASSIGNEE, Outcome.UNRESOLVABLE, ORG, "4711")]
    assert NeedMembers not in shell.asked_kinds()


@pytest.mark.parametrize(
    ("members", "why"),
    [
        ([grace_member(verified=False)], "of no Sentry member"),
        ([], "of no Sentry member"),
        (
            [grace_member("42"), SentryMember("43", (("GRACE@example.com", True),))],
            "of 2 Sentry members",
        ),
    ],
    ids=["unverified", "nobody", "two-members"],
)
async def test_W5_an_email_not_verified_by_exactly_one_member_is_unresolvable(
    members: list[SentryMember], why: str
) -> None:
    shell = FakeShell(members={ORG: members})
    actions = await run(assignee_delivery(), [a_binding()], [a_link("4711")], shell=shell)
    assert actions.writes == () and actions.advances == ()
    assert outcomes(actions) == [(Kind.ASSIGNEE, Outcome.UNRESOLVABLE, ORG, "4711")]
    assert why in actions.decisions[0].reason
    assert "grace@example.com" not in actions.decisions[0].reason  # no e-mail in the journal


async def test_W5_the_verified_email_matches_case_insensitively() -> None:
    upper = SentryMember("42", (("GRACE@EXAMPLE.COM", True),))
    shell = FakeShell(members={ORG: [upper]})
    actions = await run(assignee_delivery(), [a_binding()], [a_link("4711")], shell=shell)
    assert payloads(actions) == [(ORG, "4711", {"assignedTo": "user:42"})]


async def test_W5_one_user_listed_twice_is_still_exactly_one_member() -> None:
    shell = FakeShell(members={ORG: [grace_member("42"), grace_member("42")]})
    actions = await run(assignee_delivery(), [a_binding()], [a_link("4711")], shell=shell)
    assert payloads(actions) == [(ORG, "4711", {"assignedTo": "user:42"})]


async def test_W5_an_assignee_without_identity_is_unresolvable_not_unassigned() -> None:
    actions = await run(
        assignee_delivery({"displayName": "Ghost"}),
        [a_binding()],
        [a_link("4711")],
        look_up_email=True,
    )
    assert actions.writes == ()
    assert outcomes(actions) == [(Kind.ASSIGNEE, Outcome.UNRESOLVABLE, ORG, "4711")]


async def test_W5_each_org_resolves_the_assignee_with_its_own_mapping_and_members() -> None:
    shell = FakeShell(
        mappings=[AccountMapping(TENANT, "beta", GRACE, "900")],
        members={ORG: [grace_member("42")]},
    )
    actions = await run(
        assignee_delivery(),
        [a_binding(), a_binding("beta")],
        [a_link("4711"), a_link("55", org="beta")],
        shell=shell,
    )
    assert payloads(actions) == [
        (ORG, "4711", {"assignedTo": "user:42"}),
        ("beta", "55", {"assignedTo": "user:900"}),
    ]
    assert NeedMembers("beta", "grace@example.com") not in shell.asked


# ------------------------------------------------------------------ W6 watermarks


EARLIER = Watermark(UPDATED - timedelta(seconds=1), "d-old")
SAME_OTHER = Watermark(UPDATED, "d-other")
LATER = Watermark(UPDATED + timedelta(milliseconds=1), "d-new")


@pytest.mark.parametrize(
    ("watermark", "outcome"),
    [(None, None), (EARLIER, None), (SAME_OTHER, Outcome.STALE), (LATER, Outcome.STALE)],
    ids=["none", "older", "equal-other-delivery", "newer"],
)
async def test_W6_status_is_stale_when_older_or_equal_to_another_deliverys_watermark(
    watermark: Watermark | None, outcome: Outcome | None
) -> None:
    watermarks = {} if watermark is None else {status_key(): watermark}
    actions = await run(status_delivery(), [a_binding()], [a_link("4711")], watermarks=watermarks)
    if outcome is None:
        assert payloads(actions) == [(ORG, "4711", {"status": "resolved"})]
    else:
        assert actions.writes == () and actions.advances == ()
        assert outcomes(actions) == [(Kind.STATUS, outcome, ORG, "4711")]


@pytest.mark.parametrize(
    ("watermark", "outcome"),
    [(None, None), (EARLIER, None), (SAME_OTHER, None), (LATER, Outcome.STALE)],
    ids=["none", "older", "equal-other-delivery", "newer"],
)
async def test_W6_assignee_is_stale_only_when_older_equal_is_applied(
    watermark: Watermark | None, outcome: Outcome | None
) -> None:
    watermarks = {} if watermark is None else {assignee_key(): watermark}
    actions = await run(
        assignee_delivery(None), [a_binding()], [a_link("4711")], watermarks=watermarks
    )
    if outcome is None:
        assert payloads(actions) == [(ORG, "4711", {"assignedTo": None})]
    else:
        assert actions.writes == ()
        assert outcomes(actions) == [(Kind.ASSIGNEE, outcome, ORG, "4711")]


async def test_W6_the_watermarks_of_kinds_and_orgs_are_separate() -> None:
    delivery = status_delivery()
    watermarks = {assignee_key(): LATER, status_key("beta"): LATER}
    actions = await run(
        delivery,
        [a_binding(), a_binding("beta")],
        [a_link("4711"), a_link("55", org="beta")],
        watermarks=watermarks,
    )
    assert payloads(actions) == [(ORG, "4711", {"status": "resolved"})]
    assert outcomes(actions) == [(Kind.STATUS, Outcome.STALE, "beta", "55")]


async def test_W6_a_delivery_never_makes_its_own_writes_stale_across_linked_issues() -> None:
    actions = await run(status_delivery(), [a_binding()], [a_link("1", "2", "3")])
    assert [w.sentry_issue_id for w in actions.writes] == ["1", "2", "3"]
    # The shell: re-check right before each write, then advance after it was applied.
    watermark: Watermark | None = EARLIER
    for write in actions.writes:
        assert check_write(write, watermark=watermark) is None
        advance = advance_after(write, watermark)
        if advance is not None:
            assert advance.key == status_key()
            watermark = advance.watermark
    assert watermark == Watermark(UPDATED, "d-status")
    # Another delivery with the same time is now stale for status on every linked issue.
    rival = await run(status_delivery(delivery_id="d-rival"), [a_binding()], [a_link("1")])
    [write] = rival.writes
    stale = check_write(write, watermark=watermark)
    assert stale is not None and stale.outcome is Outcome.STALE
    assert "d-status" in stale.reason


async def test_W6_a_retry_rechecks_the_watermark_a_newer_delivery_set_meanwhile() -> None:
    [old] = (await run(assignee_delivery(None), [a_binding()], [a_link("4711")])).writes
    newer = Watermark(UPDATED + timedelta(minutes=1), "d-newer")
    decision = check_write(old, watermark=newer)
    assert decision == Decision(Kind.ASSIGNEE, Outcome.STALE, decision.reason, ORG, "4711")


async def test_W6_a_stale_noop_is_stale_and_does_not_advance() -> None:
    actions = await run(
        status_delivery("1", "3"), [a_binding()], [a_link("4711")], watermarks={status_key(): LATER}
    )
    assert outcomes(actions) == [(Kind.STATUS, Outcome.STALE, ORG, "4711")]
    assert actions.advances == ()


async def test_W6_no_timestamp_is_applied_and_the_watermark_is_not_moved() -> None:
    delivery = status_delivery(updated=None)
    assert delivery.updated is None
    actions = await run(delivery, [a_binding()], [a_link("4711")], watermarks={status_key(): LATER})
    [write] = actions.writes
    assert check_write(write, watermark=LATER) is None
    assert advance_after(write, LATER) is None
    noop = await run(
        status_delivery("1", "3", updated=None),
        [a_binding()],
        [a_link("4711")],
        watermarks={status_key(): LATER},
    )
    assert outcomes(noop) == [(Kind.STATUS, Outcome.NOOP, ORG, "4711")]
    assert noop.advances == ()


async def test_W6_applied_writes_advance_but_never_backwards() -> None:
    [write] = (await run(status_delivery(), [a_binding()], [a_link("4711")])).writes
    first = advance_after(write, None)
    assert first is not None and first.watermark == Watermark(UPDATED, "d-status")
    assert advance_after(write, first.watermark) is None  # already there
    assert advance_after(write, LATER) is None


async def test_W6_unresolvable_does_not_advance_the_watermark() -> None:
    actions = await run(assignee_delivery(hidden_grace()), [a_binding()], [a_link("4711")])
    assert outcomes(actions) == [(Kind.ASSIGNEE, Outcome.UNRESOLVABLE, ORG, "4711")]
    assert actions.advances == ()


# ------------------------------------------------------------------ W7 and W5 targets


def moved_with_status() -> Delivery:
    payload = fixture_json("jira-issue-updated-moved.json")
    payload["changelog"]["items"].append(
        {
            "field": "status",
            "from": "3",
            "fromString": "In Progress",
            "to": "10101",
            "toString": "Done",
        }
    )
    return Delivery.parse(payload, delivery_id="d-moved", tenant_id=TENANT)


async def test_W7_a_moved_issue_is_re_keyed_before_its_status_is_synced() -> None:
    delivery = moved_with_status()
    actions = await run(
        delivery,
        [a_binding(), a_binding("beta")],
        [a_link("4711", key="APP-123"), a_link("55", org="beta", key="APP-123")],
    )
    assert actions.rekeys == (Rekey(TENANT, "APP-123", "OPS-7"),)
    assert payloads(actions) == [
        (ORG, "4711", {"status": "resolved"}),
        ("beta", "55", {"status": "resolved"}),
    ]
    assert {w.issue_key for w in actions.writes} == {"OPS-7"}


async def test_W7_links_already_under_the_new_key_are_found_too() -> None:
    actions = await run(
        moved_with_status(),
        [a_binding()],
        [a_link("1", key="OPS-7"), a_link("2", "1", key="APP-123"), a_link("9", key="APP-999")],
    )
    assert [w.sentry_issue_id for w in actions.writes] == ["1", "2"]


async def test_W7_a_move_alone_re_keys_in_every_org_even_unbound() -> None:
    delivery = Delivery.parse(
        fixture_json("jira-issue-updated-moved.json"), delivery_id="d-m", tenant_id=TENANT
    )
    actions = await run(delivery, [], [a_link("4711", key="APP-123")])
    assert actions == Actions(rekeys=(Rekey(TENANT, "APP-123", "OPS-7"),))
    rekey = actions.rekeys[0]
    assert rekey_decision(rekey, moved_links=2).outcome is Outcome.APPLIED
    assert rekey_decision(rekey, moved_links=0).outcome is Outcome.NOOP
    assert rekey_decision(rekey, moved_links=2).kind is Kind.KEY


async def test_W5_two_bound_orgs_each_get_their_actions() -> None:
    bindings = [
        a_binding(resolution_strategy=ResolutionStrategy.RESOLVE_NEXT_RELEASE),
        a_binding("beta", skip_archived=True),
    ]
    links = [a_link("4711", "4712"), a_link("55", org="beta")]
    actions = await run(status_delivery(), bindings, links)
    next_release = {"status": "resolved", "statusDetails": {"inNextRelease": True}}
    assert payloads(actions) == [
        (ORG, "4711", next_release),
        (ORG, "4712", next_release),
        ("beta", "55", {"status": "resolved"}),
    ]
    assert [w.skip_if_ignored for w in actions.writes] == [False, False, True]


async def test_W5_status_then_assignee_per_org() -> None:
    payload = fixture_json("jira-issue-updated-status.json")
    payload["changelog"]["items"].append(
        {"field": "assignee", "from": GRACE, "to": None, "fromString": "Grace", "toString": None}
    )
    delivery = Delivery.parse(payload, delivery_id="d-both", tenant_id=TENANT)
    actions = await run(delivery, [a_binding()], [a_link("4711")])
    assert [(w.kind, w.payload) for w in actions.writes] == [
        (Kind.STATUS, {"status": "resolved"}),
        (Kind.ASSIGNEE, {"assignedTo": None}),
    ]


async def test_W5_no_links_means_nothing_to_write() -> None:
    shell = FakeShell()
    actions = await run(
        status_delivery(), [a_binding()], [a_link("4711", key="APP-999")], shell=shell
    )
    assert actions.writes == () and actions.advances == () and actions.rekeys == ()
    assert outcomes(actions) == [(Kind.DELIVERY, Outcome.IGNORED, ORG, None)]
    assert shell.asked == []  # nothing looked up for an issue nobody linked


async def test_W5_no_links_means_no_assignee_lookups_either() -> None:
    shell = FakeShell(members={ORG: [grace_member()]})
    actions = await run(assignee_delivery(), [a_binding()], [], shell=shell, look_up_email=True)
    assert actions.writes == ()
    assert outcomes(actions) == [(Kind.DELIVERY, Outcome.IGNORED, ORG, None)]
    assert shell.asked == []


async def test_W5_links_of_unbound_orgs_or_other_tenants_are_not_written() -> None:
    foreign = Link(tenant_id=2, org=ORG, issue_key="APP-123", sentry_issue_ids=("666",))
    actions = await run(
        status_delivery(), [a_binding()], [a_link("77", org="unbound"), foreign, a_link("1")]
    )
    assert payloads(actions) == [(ORG, "1", {"status": "resolved"})]


async def test_W5_a_tenant_bound_to_no_org_is_ignored() -> None:
    actions = await run(status_delivery(), [], [a_link("1")])
    assert actions.writes == ()
    assert outcomes(actions) == [(Kind.DELIVERY, Outcome.IGNORED, None, None)]


async def test_decide_refuses_to_run_before_the_lookups_it_needs() -> None:
    with pytest.raises(ValueError, match="lookups missing"):
        decide(
            status_delivery(),
            bindings=[a_binding()],
            links=[a_link("1")],
            lookups=Lookups(),
            watermarks={},
            look_up_email=False,
        )
    with pytest.raises(ValueError, match="tenant"):
        decide(
            status_delivery(),
            bindings=[attrs.evolve(a_binding(), tenant_id=2)],
            links=[],
            lookups=Lookups(done_status_ids=DONE),
            watermarks={},
            look_up_email=False,
        )


# ------------------------------------------------------------------ W9 outcomes of attempts


async def a_write() -> SentryWrite:
    return (await run(status_delivery(), [a_binding()], [a_link("4711")])).writes[0]


async def test_W9_transient_errors_retry_until_the_last_attempt_then_dead() -> None:
    write = await a_write()
    down = SentryUnavailable("Sentry failed (updating the Sentry issue, 503)", status=503)
    retrying = after_failure(write, down, attempt=3, max_attempts=12)
    assert retrying.outcome is Outcome.RETRYING
    assert "attempt 3 of 12" in retrying.reason and "503" in retrying.reason
    assert after_failure(write, down, attempt=12, max_attempts=12).outcome is Outcome.DEAD


async def test_W9_a_permanent_error_is_dead_at_once() -> None:
    refused = SentryRejected("Sentry refused the org's token (401)", status=401)
    dead = after_failure(await a_write(), refused, attempt=1, max_attempts=12)
    assert (dead.outcome, dead.sentry_issue_id) == (Outcome.DEAD, "4711")
    assert "not retried" in dead.reason


def test_W9_backoff_doubles_with_jitter_honours_retry_after_and_is_capped() -> None:
    assert retry_delay(1, base_seconds=2, retry_after=None, jitter=0.5) == 2
    assert retry_delay(2, base_seconds=2, retry_after=None, jitter=0.5) == 4
    assert retry_delay(4, base_seconds=2, retry_after=None, jitter=0.5) == 16
    assert retry_delay(1, base_seconds=2, retry_after=None, jitter=0.0) == 1
    assert retry_delay(1, base_seconds=2, retry_after=None, jitter=0.99) < 3
    assert retry_delay(1, base_seconds=2, retry_after=30, jitter=0.5) == 30
    assert retry_delay(50, base_seconds=2, retry_after=None, jitter=0.9) == 3600
    assert retry_delay(1, base_seconds=2, retry_after=10**9, jitter=0.5) == 3600


async def test_a_write_survives_a_round_trip_through_its_record() -> None:
    binding = a_binding(
        resolution_strategy=ResolutionStrategy.RESOLVE_CURRENT_RELEASE, skip_archived=True
    )
    [write] = (await run(status_delivery(), [binding], [a_link("4711")])).writes
    assert SentryWrite.from_record(write.to_record()) == write
    [unassign] = (await run(assignee_delivery(None), [a_binding()], [a_link("1")])).writes
    assert SentryWrite.from_record(unassign.to_record()) == unassign
