"""The shell of handle issue update against fakes: W5–W9 end state in Sentry, the journal,
watermarks, retries, dead letters, the release fallback and once-only writes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from tests.support.sync_world import (
    DONE,
    IN_PROGRESS,
    REOPENED,
    T0,
    SyncWorld,
    assignee_item,
    issue_updated,
    key_item,
    status_item,
)

from adapters.memory.sentry import GET_STATUS, MEMBERS, UPDATE
from core.admin import journal as sync_admin
from core.issue_update import RELEASE_FALLBACK_REASON, Kind, WatermarkKey
from core.model.errors import (
    SentryRejected,
    SentryUnavailable,
    UpstreamFailed,
    UpstreamRateLimited,
)
from ports.sync_store import ActionState


def updates(world: SyncWorld, org: str | None = None) -> list[tuple[str, str, dict[str, object]]]:
    return [(c.org, c.target, c.payload or {}) for c in world.sentry.updates(org)]


async def test_W5_W8_a_status_change_into_done_resolves_every_linked_sentry_issue() -> None:
    world = SyncWorld()
    tenant = await world.a_tenant()
    await world.bind(tenant, "acme", issues={"APP-123": ["4711", "4712"]})
    await world.deliver(tenant, issue_updated(status_item(IN_PROGRESS, DONE)), "d-1")
    await world.run()

    assert updates(world) == [("acme", "4711", {"status": "resolved"}),
                              ("acme", "4712", {"status": "resolved"})]
    assert world.sentry.issue("acme", "4711").status == "resolved"
    journal = await world.journal(tenant)
    assert [(k, o, org) for k, o, org, _ in journal] == [
        ("status", "applied", "acme"), ("status", "applied", "acme")]
    assert journal[0][3].startswith("Sentry issue 4711: Jira status In Progress (3) → Done")
    marks = await world.sync.watermarks([WatermarkKey(tenant.id, "20417", "acme", Kind.STATUS)])
    assert [m.delivery_id for m in marks.values()] == ["d-1"]
    assert (await world.inbox.stats(world.clock.now())).pending == 0


async def test_W5_two_orgs_bound_one_with_status_sync_off_only_the_other_changes() -> None:
    world = SyncWorld()
    tenant = await world.a_tenant()
    await world.bind(tenant, "acme", issues={"APP-123": ["1"]})
    await world.bind(tenant, "quiet", issues={"APP-123": ["2"]}, sync_status=False)
    await world.deliver(tenant, issue_updated())
    await world.run()

    assert updates(world) == [("acme", "1", {"status": "resolved"})]
    assert world.sentry.issue("quiet", "2").status == "unresolved"
    assert ("status", "ignored", "quiet", "status sync is off") in await world.journal(tenant)


async def test_W5_a_key_linked_only_in_another_tenant_is_untouched() -> None:
    world = SyncWorld()
    tenant = await world.a_tenant("site-1")
    other = await world.a_tenant("site-2")
    await world.bind(other, "acme", issues={"APP-123": ["9"]})
    await world.deliver(tenant, issue_updated())
    await world.run()

    assert updates(world) == []
    assert await world.journal(tenant) == [
        ("delivery", "ignored", None, "the tenant is bound to no Sentry org")]
    assert await world.journal(other) == []


async def test_W5_a_status_map_decides_alone_without_asking_jira() -> None:
    world = SyncWorld()
    tenant = await world.a_tenant()
    await world.bind(tenant, "acme", issues={"APP-123": ["1"]},
                     status_map={"10000": {"unresolve": [DONE]}})
    await world.deliver(tenant, issue_updated(status_item(IN_PROGRESS, DONE)))
    await world.run()
    assert updates(world) == [("acme", "1", {"status": "unresolved"})]
    assert [c.method for c in world.jira.calls] == []


async def test_W9_a_transient_failure_is_retried_with_backoff_and_written_once() -> None:
    world = SyncWorld(retry_base_seconds=2.0)
    tenant = await world.a_tenant()
    await world.bind(tenant, "acme", issues={"APP-123": ["1", "2"]})
    world.sentry.fail(SentryUnavailable("Sentry answered 503", status=503), target="2",
                      operation=UPDATE)
    await world.deliver(tenant, issue_updated())
    await world.run(jitter=0.5)  # jitter factor 1.0: the delay is exactly the base

    assert world.sentry.issue("acme", "1").status == "resolved"
    assert world.sentry.issue("acme", "2").status == "unresolved"
    assert await world.run() == 0  # not due before the backoff ends
    world.clock.advance(1.99)
    assert await world.run() == 0
    world.clock.advance(0.01)
    assert await world.run() == 1

    # Issue 1 was not written again: its action was done in the first pass.
    assert [(org, target) for org, target, _ in updates(world)] == [
        ("acme", "1"), ("acme", "2"), ("acme", "2")]
    assert world.sentry.issue("acme", "2").status == "resolved"
    outcomes = [(o, d.split(":")[0]) for _, o, _, d in await world.journal(tenant)]
    assert outcomes == [("applied", "Sentry issue 1"), ("retrying", "Sentry issue 2"),
                        ("applied", "Sentry issue 2")]
    assert (await world.inbox.stats(world.clock.now())).pending == 0


async def test_W9_retry_after_is_honoured() -> None:
    world = SyncWorld(retry_base_seconds=0.1)
    tenant = await world.a_tenant()
    await world.bind(tenant, "acme", issues={"APP-123": ["1"]})
    world.sentry.fail(SentryUnavailable("Sentry answered 429", status=429, retry_after=7))
    await world.deliver(tenant, issue_updated())
    await world.run()
    world.clock.advance(6.9)
    assert await world.run() == 0
    world.clock.advance(0.1)
    assert await world.run() == 1
    assert world.sentry.issue("acme", "1").status == "resolved"


@pytest.mark.parametrize("jitter", [0.0, 0.999])
async def test_W9_the_backoff_doubles_with_jitter(jitter: float) -> None:
    world = SyncWorld(retry_base_seconds=1.0, max_attempts=10)
    tenant = await world.a_tenant()
    await world.bind(tenant, "acme", issues={"APP-123": ["1"]})
    world.sentry.fail(SentryUnavailable("down", status=503), times=3)
    await world.deliver(tenant, issue_updated())
    delays = []
    for _ in range(3):
        await world.run(jitter=jitter)
        [action] = await world.sync.plan_of(1) or []
        delays.append((action.not_before - world.clock.now()).total_seconds())
        world.clock.advance(delays[-1])
    factor = 0.5 + jitter
    assert delays == pytest.approx([1 * factor, 2 * factor, 4 * factor])


async def test_W9_a_4xx_is_a_dead_letter_at_once() -> None:
    world = SyncWorld()
    tenant = await world.a_tenant()
    await world.bind(tenant, "acme", issues={"APP-123": ["1"]})
    world.sentry.fail(SentryRejected("Sentry refused the request (400)", status=400))
    await world.deliver(tenant, issue_updated())
    await world.run()

    assert len(world.sentry.updates()) == 1
    [letter] = await world.sync.dead_letters()
    assert (letter.tenant_id, letter.org, letter.issue_key, letter.kind.value) == (
        tenant.id, "acme", "APP-123", "status")
    assert letter.attempts == 1 and "400" in letter.last_error
    assert letter.action["payload"] == {"status": "resolved"}
    assert "token" not in str(letter.action).lower()
    [(_, outcome, _, detail)] = await world.journal(tenant)
    assert outcome == "dead" and detail.endswith("not retried")
    assert (await world.inbox.stats(world.clock.now())).pending == 0


async def test_W9_exhausted_attempts_make_a_dead_letter_an_admin_retry_applies() -> None:
    world = SyncWorld(max_attempts=3, retry_base_seconds=1.0)
    tenant = await world.a_tenant()
    await world.bind(tenant, "acme", issues={"APP-123": ["1"]})
    world.sentry.fail(SentryUnavailable("Sentry answered 503", status=503), times=3)
    await world.deliver(tenant, issue_updated())
    await world.run_until_idle()

    assert [o for _, o, _, _ in await world.journal(tenant)] == ["retrying", "retrying", "dead"]
    [letter] = await world.sync.dead_letters()
    assert letter.attempts == 3 and world.sentry.issue("acme", "1").status == "unresolved"

    await sync_admin.retry_dead_letter(str(letter.id), journal=world.sync, clock=world.clock)
    await world.run()
    assert world.sentry.issue("acme", "1").status == "resolved"
    assert [o for _, o, _, _ in await world.journal(tenant)][-1] == "applied"
    assert await world.sync.dead_letters() == []


async def test_W6_an_admin_retry_of_a_superseded_action_is_stale_and_writes_nothing() -> None:
    world = SyncWorld()
    tenant = await world.a_tenant()
    await world.bind(tenant, "acme", issues={"APP-123": ["1"]})
    world.sentry.fail(SentryRejected("Sentry refused the request (400)", status=400))
    await world.deliver(tenant, issue_updated(status_item(IN_PROGRESS, DONE),
                                              updated="2025-11-28T09:00:00.000+0000"))
    await world.run()
    [letter] = await world.sync.dead_letters()
    # A newer delivery reopens the issue; then the old resolve is retried by an admin.
    await world.deliver(tenant, issue_updated(status_item(DONE, REOPENED),
                                              updated="2025-11-28T10:00:00.000+0000"))
    await world.run()
    assert world.sentry.issue("acme", "1").status == "unresolved"
    writes_before = len(world.sentry.updates())

    await sync_admin.retry_dead_letter(letter.id, journal=world.sync, clock=world.clock)
    await world.run()
    assert len(world.sentry.updates()) == writes_before
    assert world.sentry.issue("acme", "1").status == "unresolved"
    kind, outcome, _, detail = (await world.journal(tenant))[-1]
    assert (kind, outcome) == ("status", "stale") and "older than the status" in detail


async def test_W6_a_delivery_older_than_the_watermark_is_stale_at_decision() -> None:
    world = SyncWorld()
    tenant = await world.a_tenant()
    await world.bind(tenant, "acme", issues={"APP-123": ["1"]})
    await world.deliver(tenant, issue_updated(status_item(IN_PROGRESS, DONE),
                                              updated="2025-11-28T10:00:00.000+0000"))
    await world.deliver(tenant, issue_updated(status_item(DONE, REOPENED),
                                              updated="2025-11-28T09:00:00.000+0000"))
    await world.run_until_idle()
    assert updates(world) == [("acme", "1", {"status": "resolved"})]
    assert [o for _, o, _, _ in await world.journal(tenant)] == ["applied", "stale"]


async def test_W5_a_refused_release_based_resolve_falls_back_to_a_plain_resolve() -> None:
    world = SyncWorld()
    tenant = await world.a_tenant()
    await world.bind(tenant, "acme", issues={"APP-123": ["1"]}, has_releases=False,
                     resolution_strategy="resolve_current_release")
    await world.deliver(tenant, issue_updated())
    await world.run()

    assert [payload for _, _, payload in updates(world)] == [
        {"status": "resolved", "statusDetails": {"inRelease": "latest"}},
        {"status": "resolved"},
    ]
    [(_, outcome, _, detail)] = await world.journal(tenant)
    assert outcome == "applied" and RELEASE_FALLBACK_REASON in detail


async def test_W5_a_failed_fallback_is_retried_as_the_plain_resolve() -> None:
    world = SyncWorld(retry_base_seconds=1.0)
    tenant = await world.a_tenant()
    await world.bind(tenant, "acme", issues={"APP-123": ["1"]}, has_releases=False,
                     resolution_strategy="resolve_next_release")
    await world.deliver(tenant, issue_updated())
    await world.run()  # refused (400) → the fallback in the same attempt
    [action] = await world.sync.plan_of(1) or []
    assert action.state is ActionState.DONE and action.record["payload"] == {
        "status": "resolved", "statusDetails": {"inNextRelease": True}}

    world2 = SyncWorld(retry_base_seconds=1.0)
    tenant2 = await world2.a_tenant()
    await world2.bind(tenant2, "acme", issues={"APP-123": ["1"]}, has_releases=False,
                      resolution_strategy="resolve_next_release")
    world2.sentry.fail(SentryUnavailable("Sentry answered 503", status=503), times=1)
    await world2.deliver(tenant2, issue_updated())
    await world2.run_until_idle(step_seconds=10)
    payloads = [payload for _, _, payload in updates(world2)]
    # first attempt: 503 on the release-based resolve (transient, retried as is); second:
    # 400 → fallback at once.
    assert payloads == [
        {"status": "resolved", "statusDetails": {"inNextRelease": True}},
        {"status": "resolved", "statusDetails": {"inNextRelease": True}},
        {"status": "resolved"},
    ]
    assert world2.sentry.issue("acme", "1").status == "resolved"


async def test_W5_skip_archived_reads_the_status_and_skips_an_ignored_issue() -> None:
    world = SyncWorld()
    tenant = await world.a_tenant()
    await world.bind(tenant, "acme", issues={"APP-123": ["1"]}, skip_archived=True)
    world.sentry.add_issue("acme", "1", status="ignored")
    await world.deliver(tenant, issue_updated(), "d-1")
    await world.run()

    assert [c.operation for c in world.sentry.calls] == [GET_STATUS]
    assert world.sentry.issue("acme", "1").status == "ignored"
    [(_, outcome, _, detail)] = await world.journal(tenant)
    assert outcome == "noop" and "archived" in detail
    marks = await world.sync.watermarks([WatermarkKey(tenant.id, "20417", "acme", Kind.STATUS)])
    assert next(iter(marks.values())).delivery_id == "d-1"  # a no-op advances the watermark


async def test_W5_the_assignee_is_found_by_verified_email_and_assigned() -> None:
    world = SyncWorld()
    tenant = await world.a_tenant()
    await world.bind(tenant, "acme", issues={"APP-123": ["1"]})
    world.sentry.add_member("acme", "42", [("Grace@example.com", True)])
    body = issue_updated(assignee_item(),
                         assignee={"accountId": "abc", "emailAddress": "grace@example.com"})
    await world.deliver(tenant, body)
    await world.run()
    assert updates(world) == [("acme", "1", {"assignedTo": "user:42"})]
    assert [c.operation for c in world.sentry.calls] == [MEMBERS, UPDATE]
    journal = await world.journal(tenant)
    assert journal[0][:2] == ("assignee", "applied")
    assert "grace@example.com" not in journal[0][3].lower()  # no e-mail in the journal


async def test_W5_the_email_api_is_asked_only_with_the_email_scope() -> None:
    for scope, expected in ((False, []), (True, [("acme", "1", {"assignedTo": "user:42"})])):
        world = SyncWorld(use_email_scope=scope)
        tenant = await world.a_tenant()
        await world.bind(tenant, "acme", issues={"APP-123": ["1"]})
        world.sentry.add_member("acme", "42", [("grace@example.com", True)])
        world.jira.site(tenant).emails["abc"] = "grace@example.com"
        await world.deliver(tenant, issue_updated(assignee_item(), assignee={"accountId": "abc"}))
        await world.run()
        assert updates(world) == expected
        asked = [c.method for c in world.jira.calls if c.method == "user_email"]
        assert asked == (["user_email"] if scope else [])
        if not scope:
            assert (await world.journal(tenant))[0][1] == "unresolvable"


async def test_W5_an_account_mapping_wins_and_null_unassigns() -> None:
    world = SyncWorld()
    tenant = await world.a_tenant()
    await world.bind(tenant, "acme", issues={"APP-123": ["1"]})
    world.sentry.add_member("acme", "7", [])
    await world.map_account(tenant, "acme", "abc", "7")
    await world.deliver(tenant, issue_updated(assignee_item(), assignee={"accountId": "abc"},
                                              updated="2025-11-28T09:00:00.000+0000"))
    await world.deliver(tenant, issue_updated(assignee_item(), assignee=None,
                                              updated="2025-11-28T09:05:00.000+0000"))
    await world.run_until_idle()
    assert updates(world) == [("acme", "1", {"assignedTo": "user:7"}),
                              ("acme", "1", {"assignedTo": None})]


async def test_W7_a_moved_issue_rekeys_its_links_first_and_syncs_them() -> None:
    world = SyncWorld()
    tenant = await world.a_tenant()
    await world.bind(tenant, "acme", issues={"OLD-1": ["1"]})
    await world.bind(tenant, "beta", issues={"OLD-1": ["2"]})
    body = issue_updated(key_item("OLD-1", "NEW-9"), status_item(), key="NEW-9")
    await world.deliver(tenant, body)
    await world.run()

    assert await world.links.get(tenant.id, "acme", "OLD-1") is None
    moved = await world.links.get(tenant.id, "acme", "NEW-9")
    assert moved is not None and moved.sentry_issue_ids == ("1",)
    assert await world.links.get(tenant.id, "beta", "NEW-9") is not None
    assert sorted(updates(world)) == [("acme", "1", {"status": "resolved"}),
                                      ("beta", "2", {"status": "resolved"})]
    journal = await world.journal(tenant)
    assert journal[0][:2] == ("key", "applied") and "2 link(s) re-keyed" in journal[0][3]


async def test_W9_a_failed_jira_lookup_retries_the_delivery_then_applies() -> None:
    world = SyncWorld(retry_base_seconds=1.0)
    tenant = await world.a_tenant()
    await world.bind(tenant, "acme", issues={"APP-123": ["1"]})
    world.jira.fail("statuses", UpstreamRateLimited("Jira answered 429", retry_after=30))
    await world.deliver(tenant, issue_updated())
    await world.run()
    assert updates(world) == []
    [(kind, outcome, org, detail)] = await world.journal(tenant)
    assert (kind, outcome, org) == ("delivery", "retrying", None)
    assert "workflow statuses" in detail and "429" in detail
    world.jira.fail("statuses", None)
    world.clock.advance(29)
    assert await world.run() == 0  # Jira's Retry-After is honoured too
    world.clock.advance(1)
    assert await world.run() == 1
    assert world.sentry.issue("acme", "1").status == "resolved"


async def test_W9_a_jira_lookup_failing_every_time_is_a_delivery_dead_letter() -> None:
    world = SyncWorld(max_attempts=2, retry_base_seconds=1.0)
    tenant = await world.a_tenant()
    await world.bind(tenant, "acme", issues={"APP-123": ["1"]})
    world.jira.fail("statuses", UpstreamFailed("Jira answered 500", status=500))
    await world.deliver(tenant, issue_updated())
    await world.run_until_idle(step_seconds=10)
    [letter] = await world.sync.dead_letters()
    assert letter.kind is Kind.DELIVERY and letter.org is None and letter.attempts == 2
    assert [o for _, o, _, _ in await world.journal(tenant)] == ["retrying", "dead"]

    world.jira.fail("statuses", None)
    await sync_admin.retry_dead_letter(letter.id, journal=world.sync, clock=world.clock)
    await world.run()
    assert world.sentry.issue("acme", "1").status == "resolved"


async def test_a_transient_failure_of_one_tenant_does_not_hold_back_another() -> None:
    world = SyncWorld()
    failing = await world.a_tenant("site-1")
    healthy = await world.a_tenant("site-2")
    await world.bind(failing, "down", issues={"APP-123": ["1"]})
    await world.bind(healthy, "up", issues={"APP-123": ["2"]})
    world.sentry.fail(SentryUnavailable("Sentry answered 503", status=503), times=100,
                      operation=UPDATE, target="1")
    await world.deliver(failing, issue_updated())
    await world.deliver(healthy, issue_updated())
    await world.run()
    assert world.sentry.issue("up", "2").status == "resolved"


async def test_an_org_unbound_after_the_decision_gets_no_write() -> None:
    world = SyncWorld(retry_base_seconds=1.0)
    tenant = await world.a_tenant()
    await world.bind(tenant, "acme", issues={"APP-123": ["1"]})
    world.sentry.fail(SentryUnavailable("Sentry answered 503", status=503))
    await world.deliver(tenant, issue_updated())
    await world.run()
    await world.bindings.delete(tenant.id, "acme")
    world.clock.advance(5)
    await world.run()
    assert len(world.sentry.updates()) == 1
    _kind, outcome, _, detail = (await world.journal(tenant))[-1]
    assert outcome == "ignored" and "no longer bound" in detail


async def test_an_unreadable_body_is_journalled_and_finished() -> None:
    world = SyncWorld()
    tenant = await world.a_tenant()
    from ports.inbox import NewDelivery

    await world.inbox.record(NewDelivery(tenant_id=tenant.id, delivery_id="x", issue_id="1",
                                         issue_key="APP-1", body=b"\xff not json",
                                         received_at=T0))
    await world.run()
    [(kind, outcome, _, detail)] = await world.journal(tenant)
    assert (kind, outcome) == ("delivery", "ignored") and "cannot be read" in detail
    assert (await world.inbox.stats(T0 + timedelta(seconds=1))).pending == 0


async def test_W9_a_lost_lease_race_plans_once_and_writes_once() -> None:
    """A worker whose lease expired mid-way and the worker that took over both reach the
    same action: the plan is stored once, the action finished once, journalled once."""
    world = SyncWorld()
    tenant = await world.a_tenant()
    await world.bind(tenant, "acme", issues={"APP-123": ["1"]})
    await world.deliver(tenant, issue_updated())
    [slow] = await world.claim("slow")
    world.clock.advance(31)  # the slow worker's lease ran out
    [fast] = await world.claim("fast")
    from core.issue_update.process import process_delivery

    await process_delivery(fast, owner="fast", ports=world.ports, settings=world.settings)
    await process_delivery(slow, owner="slow", ports=world.ports, settings=world.settings)
    assert len(world.sentry.updates()) == 1
    assert [o for _, o, _, _ in await world.journal(tenant)] == ["applied"]


async def test_W9_each_outcome_is_stored_before_the_next_write_and_the_last_with_the_settle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 15: one commit less per delivery. An action's outcome is stored before the next
    action calls Sentry (a crash then never repeats a finished write); the last outcome is
    stored in one batch with the settle of the delivery (`apply_batch`)."""
    world = SyncWorld()
    tenant = await world.a_tenant()
    await world.bind(tenant, "acme", issues={"APP-123": ["1", "2"]})
    calls: list[str] = []

    def spy(target: object, name: str, label: Callable[..., str]) -> None:
        real = getattr(target, name)

        async def recorded(*args: Any, **kwargs: Any) -> Any:
            calls.append(label(*args, **kwargs))
            return await real(*args, **kwargs)

        monkeypatch.setattr(target, name, recorded)

    spy(world.sentry, "update_issue", lambda binding, issue, payload: f"sentry PUT {issue}")
    spy(world.sync, "finish", lambda action_id, **_: f"finish {action_id}")
    spy(world.sync, "settle", lambda row, owner: "settle")
    spy(world.sync, "apply_batch",
        lambda changes: "batch " + " + ".join(type(c).__name__ for c in changes))
    await world.deliver(tenant, issue_updated(status_item(IN_PROGRESS, DONE)), "d-1")
    await world.run()

    assert calls == ["sentry PUT 1", "batch Finish", "finish 1", "sentry PUT 2",
                     "batch Finish + Settle", "finish 2", "settle"]
    assert (await world.inbox.stats(world.clock.now())).pending == 0
    assert [o for _, o, _, _ in await world.journal(tenant)] == ["applied", "applied"]


async def test_W9_an_admin_retry_of_a_delivery_dead_after_its_plan_writes_the_planned_action_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 15: a first claim (no earlier claim counted) skips reading a stored plan. An
    admin retry of a `delivery` dead letter resets the count while a plan may exist (the
    failure came after the plan was stored): the delivery is decided again, `save_plan`
    gives back the stored plan, and its pending action is written once."""
    from core.issue_update.process import process_delivery, processing_failed

    world = SyncWorld(max_attempts=1)
    tenant = await world.a_tenant()
    await world.bind(tenant, "acme", issues={"APP-123": ["1"]})
    await world.deliver(tenant, issue_updated(status_item(IN_PROGRESS, DONE)), "d-1")
    real = world.sentry.update_issue

    async def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a bug after the plan was stored")

    monkeypatch.setattr(world.sentry, "update_issue", broken)
    [claimed] = await world.claim()
    assert claimed.attempts == 0
    with pytest.raises(RuntimeError):
        await process_delivery(claimed, owner="w1", ports=world.ports, settings=world.settings)
    await processing_failed(claimed, "RuntimeError", owner="w1", ports=world.ports,
                            settings=world.settings)
    [letter] = await world.sync.dead_letters()
    assert letter.kind is Kind.DELIVERY
    plan = await world.sync.plan_of(claimed.id)
    assert plan is not None and [a.state for a in plan] == [ActionState.PENDING]

    monkeypatch.setattr(world.sentry, "update_issue", real)
    await sync_admin.retry_dead_letter(letter.id, journal=world.sync, clock=world.clock)
    [again] = await world.claim()
    assert again.attempts == 0  # the retry reset the count: no plan read on this claim
    await process_delivery(again, owner="w1", ports=world.ports, settings=world.settings)
    assert updates(world) == [("acme", "1", {"status": "resolved"})]
    assert [a.state for a in await world.sync.plan_of(claimed.id) or []] == [ActionState.DONE]
    assert [o for _, o, _, _ in await world.journal(tenant)] == ["dead", "applied"]
