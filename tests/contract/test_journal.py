"""One contract suite for every Journal (§A): the journal newest first, per tenant, filtered
and limited; dead letters listed newest first and retried once (W9)."""

from __future__ import annotations

from datetime import timedelta

import attrs

from core.model.sync import Kind, Outcome
from ports.sync_store import ActionState
from tests.support.sync_stores import T0, Stores, a_claimed, a_write, an_entry


async def test_dead_letters_are_listed_newest_first_and_retried_once(stores: Stores) -> None:
    claimed = await a_claimed(stores)
    first, second = await stores.sync.save_plan(
        claimed, actions=[a_write("1"), a_write("2")], entries=[], advances=[], at=T0)
    await stores.sync.bury(first.id, entry=an_entry(Outcome.DEAD), error="Sentry 400", at=T0)
    later = T0 + timedelta(seconds=1)
    await stores.sync.bury(second.id, entry=an_entry(Outcome.DEAD), error="Sentry 404",
                           at=later, record={"sentry_issue_id": "2", "payload": {}})
    assert await stores.sync.settle(claimed.id, "w1") is None  # nothing pending: finished
    letters = await stores.journal.dead_letters()
    assert [d.id for d in letters] == [second.id, first.id]
    assert letters[0].last_error == "Sentry 404" and letters[0].attempts == 1
    assert letters[0].created_at == later and letters[0].kind is Kind.STATUS
    assert letters[0].org == "acme" and letters[0].issue_key == "APP-1"
    assert letters[0].action == {"sentry_issue_id": "2", "payload": {}}
    assert await stores.journal.dead_letter_count() == 2

    now = T0 + timedelta(minutes=5)
    assert await stores.journal.retry_dead_letter(second.id, now=now) is True
    assert await stores.journal.retry_dead_letter(second.id, now=now) is False  # not dead now
    assert await stores.journal.retry_dead_letter(999_999, now=now) is False
    assert [d.id for d in await stores.journal.dead_letters()] == [first.id]
    # The finished delivery is due again, the retried action pending with fresh attempts.
    [again] = await stores.inbox.claim("w3", now=now, lease_seconds=30)
    assert again.id == claimed.id
    plan = await stores.sync.plan_of(again.id) or []
    assert [(a.state, a.attempts) for a in plan] == [
        (ActionState.DEAD, 1), (ActionState.PENDING, 0)]


async def test_a_delivery_whose_lookups_failed_is_a_dead_letter_and_retried_afresh(
    stores: Stores,
) -> None:
    claimed = await a_claimed(stores)
    entry = attrs.evolve(an_entry(Outcome.DEAD), kind=Kind.DELIVERY, org=None)
    assert await stores.sync.bury_delivery(claimed, "not-the-owner", entry=entry,
                                           error="Jira 503", at=T0) is False
    assert await stores.sync.bury_delivery(claimed, "w1", entry=entry, error="Jira 503",
                                           at=T0) is True
    assert (await stores.inbox.stats(T0)).pending == 0
    [letter] = await stores.journal.dead_letters()
    assert letter.kind is Kind.DELIVERY and letter.org is None
    assert letter.action["delivery_id"] == "d-1" and letter.attempts == 1
    assert await stores.sync.plan_of(claimed.id) is None  # not decided: decided on retry
    assert await stores.journal.retry_dead_letter(letter.id, now=T0) is True
    [again] = await stores.inbox.claim("w2", now=T0, lease_seconds=30)
    assert again.id == claimed.id and again.attempts == 0  # fresh attempts
    assert await stores.journal.dead_letters() == []


async def test_the_journal_is_newest_first_per_tenant_filtered_and_limited(
    stores: Stores,
) -> None:
    entries = [an_entry(at=T0 + timedelta(seconds=n), issue_key=f"APP-{n % 2}",
                        detail=f"entry {n}") for n in range(6)]
    await stores.journal.record(entries)
    await stores.journal.record([attrs.evolve(an_entry(), tenant_id=2, detail="another tenant")])
    found = await stores.journal.journal(1)
    assert [e.detail for e in found] == [f"entry {n}" for n in range(5, -1, -1)]
    assert found[0] == entries[5]
    assert [e.detail for e in await stores.journal.journal(1, issue_key="APP-0")] == [
        "entry 4", "entry 2", "entry 0"]
    assert [e.detail for e in await stores.journal.journal(1, limit=2)] == ["entry 5", "entry 4"]
    assert [e.detail for e in await stores.journal.journal(2)] == ["another tenant"]
    assert await stores.journal.journal(3) == []


async def test_section10_dead_letters_of_one_tenant_only_and_no_retry_from_another(
    stores: Stores,
) -> None:
    """§10: a site's configure page lists its own dead letters; another site's retry of one
    finds nothing (False: a 404) and leaves it dead."""
    claimed = await a_claimed(stores)  # tenant 1
    [action] = await stores.sync.save_plan(
        claimed, actions=[a_write("1")], entries=[], advances=[], at=T0)
    await stores.sync.bury(action.id, entry=an_entry(Outcome.DEAD), error="Sentry 400", at=T0)
    assert [d.id for d in await stores.journal.dead_letters(tenant_id=1)] == [action.id]
    assert await stores.journal.dead_letters(tenant_id=2) == []
    now = T0 + timedelta(minutes=1)
    assert await stores.journal.retry_dead_letter(action.id, now=now, tenant_id=2) is False
    assert [d.id for d in await stores.journal.dead_letters()] == [action.id]
    assert await stores.journal.retry_dead_letter(action.id, now=now, tenant_id=1) is True
    assert await stores.journal.dead_letters(tenant_id=1) == []
