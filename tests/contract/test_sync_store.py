"""One contract suite for every SyncStore: plans once, actions once, watermarks never backwards,
journal newest first, dead letters and their retry, retention, worker heartbeats (W6, W9, §A)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

from adapters.memory.inbox import MemoryInbox
from adapters.memory.sync_store import MemorySyncStore
from adapters.sqlite.inbox import SqliteInbox
from adapters.sqlite.loop_connection import LoopConnection
from adapters.sqlite.sync_store import SqliteSyncStore
from adapters.wiring import open_database
from core.issue_update import Kind, Outcome, Watermark, WatermarkAdvance, WatermarkKey
from ports.inbox import ClaimedDelivery, Inbox, NewDelivery
from ports.sync_store import ActionState, JournalEntry, NewAction, SyncStore
from tests.support.builders import a_settings

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
KEY = WatermarkKey(1, "20417", "acme", Kind.STATUS)


@attrs.define
class Stores:
    inbox: Inbox
    sync: SyncStore


@pytest.fixture(params=["memory", "sqlite", "sqlite-on-the-loop"])
async def stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stores]:
    if request.param == "memory":
        inbox = MemoryInbox()
        yield Stores(inbox, MemorySyncStore(inbox))
        return
    database = open_database(a_settings(tmp_path))
    loop_connection = LoopConnection(database.path)
    on_loop = loop_connection if request.param == "sqlite-on-the-loop" else None
    try:
        yield Stores(SqliteInbox(database, loop_connection),
                     SqliteSyncStore(database, on_loop))
    finally:
        loop_connection.close()
        database.close()


async def a_claimed(stores: Stores, delivery_id: str = "d-1", *, at: datetime = T0,
                    issue_id: str = "20417", owner: str = "w1") -> ClaimedDelivery:
    await stores.inbox.record(NewDelivery(tenant_id=1, delivery_id=delivery_id,
                                          issue_id=issue_id, issue_key="APP-1", body=b"{}",
                                          received_at=at))
    [claimed] = await stores.inbox.claim(owner, now=at, lease_seconds=30)
    return claimed


def an_entry(outcome: Outcome = Outcome.APPLIED, *, at: datetime = T0, issue_key: str = "APP-1",
             detail: str = "why", delivery_id: str = "d-1") -> JournalEntry:
    return JournalEntry(at=at, tenant_id=1, delivery_id=delivery_id, issue_key=issue_key,
                        org="acme", kind=Kind.STATUS, outcome=outcome, detail=detail)


def a_write(sentry_issue_id: str = "4711") -> NewAction:
    record: dict[str, Any] = {"org": "acme", "sentry_issue_id": sentry_issue_id,
                              "payload": {"status": "resolved"}}
    return NewAction(Kind.STATUS, "acme", record)


def mark(seconds: int, delivery_id: str = "d-1") -> Watermark:
    return Watermark(updated=T0 + timedelta(seconds=seconds), delivery_id=delivery_id)


async def test_a_plan_is_stored_once_with_its_journal_and_advances(stores: Stores) -> None:
    claimed = await a_claimed(stores)
    assert await stores.sync.plan_of(claimed.id) is None
    plan = await stores.sync.save_plan(
        claimed, actions=[a_write("1"), a_write("2")], entries=[an_entry(Outcome.NOOP)],
        advances=[WatermarkAdvance(KEY, mark(0))], at=T0)
    assert [a.record["sentry_issue_id"] for a in plan] == ["1", "2"]
    assert all(a.state is ActionState.PENDING and a.attempts == 0 for a in plan)
    # A second save (a worker that lost its lease) stores nothing and gets the first plan.
    again = await stores.sync.save_plan(
        claimed, actions=[a_write("3")], entries=[an_entry(Outcome.STALE)], advances=[], at=T0)
    assert again == plan
    assert await stores.sync.plan_of(claimed.id) == plan
    assert [e.outcome for e in await stores.sync.journal(1)] == [Outcome.NOOP]
    assert await stores.sync.watermarks([KEY]) == {KEY: mark(0)}


async def test_W9_an_action_is_finished_once(stores: Stores) -> None:
    claimed = await a_claimed(stores)
    [action] = await stores.sync.save_plan(claimed, actions=[a_write()], entries=[],
                                           advances=[], at=T0)
    advance = WatermarkAdvance(KEY, mark(5))
    assert await stores.sync.finish(action.id, state=ActionState.DONE, entry=an_entry(),
                                     advance=advance) is True
    assert await stores.sync.finish(action.id, state=ActionState.DONE, entry=an_entry(),
                                    advance=advance) is False
    assert await stores.sync.postpone(action.id, entry=an_entry(Outcome.RETRYING), error="x",
                                      not_before=T0) is False
    assert await stores.sync.bury(action.id, entry=an_entry(Outcome.DEAD), error="x",
                                  at=T0) is False
    assert [e.outcome for e in await stores.sync.journal(1)] == [Outcome.APPLIED]
    [stored] = await stores.sync.plan_of(claimed.id) or []
    assert stored.state is ActionState.DONE


async def test_W6_a_watermark_never_moves_backwards(stores: Stores) -> None:
    claimed = await a_claimed(stores)
    first, second = await stores.sync.save_plan(
        claimed, actions=[a_write("1"), a_write("2")], entries=[], advances=[], at=T0)
    await stores.sync.finish(second.id, state=ActionState.DONE, entry=an_entry(),
                             advance=WatermarkAdvance(KEY, mark(10, "newer")))
    await stores.sync.finish(first.id, state=ActionState.DONE, entry=an_entry(),
                             advance=WatermarkAdvance(KEY, mark(5, "older")))
    assert (await stores.sync.watermarks([KEY]))[KEY] == mark(10, "newer")
    other = attrs.evolve(KEY, kind=Kind.ASSIGNEE)
    assert await stores.sync.watermarks([KEY, other]) == {KEY: mark(10, "newer")}


async def test_a_watermark_keeps_its_time_exactly(stores: Stores) -> None:
    """W6 compares times for equality: a round trip must not lose precision or the offset."""
    claimed = await a_claimed(stores)
    [action] = await stores.sync.save_plan(claimed, actions=[a_write()], entries=[],
                                           advances=[], at=T0)
    odd = datetime(2025, 11, 28, 9, 0, 0, 123456, tzinfo=UTC).astimezone(
        datetime.fromisoformat("2025-01-01T00:00:00+05:30").tzinfo)
    await stores.sync.finish(action.id, state=ActionState.DONE, entry=an_entry(),
                             advance=WatermarkAdvance(KEY, Watermark(odd, "d-1")))
    stored = (await stores.sync.watermarks([KEY]))[KEY]
    assert stored.updated == odd and stored.delivery_id == "d-1"


async def test_settle_releases_a_delivery_until_its_next_action_then_finishes_it(
    stores: Stores,
) -> None:
    claimed = await a_claimed(stores)
    first, second = await stores.sync.save_plan(
        claimed, actions=[a_write("1"), a_write("2")], entries=[], advances=[], at=T0)
    await stores.sync.finish(first.id, state=ActionState.SKIPPED, entry=an_entry(Outcome.STALE))
    due = T0 + timedelta(seconds=8)
    await stores.sync.postpone(second.id, entry=an_entry(Outcome.RETRYING), error="503",
                               not_before=due, record={"replaced": True})
    assert await stores.sync.settle(claimed.id, "someone-else") == due  # not the holder
    assert await stores.inbox.claim("w2", now=T0, lease_seconds=30) == []  # still leased
    assert await stores.sync.settle(claimed.id, "w1") == due
    assert await stores.inbox.claim("w2", now=T0 + timedelta(seconds=7), lease_seconds=30) == []
    [again] = await stores.inbox.claim("w2", now=due, lease_seconds=30)
    plan = await stores.sync.plan_of(again.id) or []
    assert plan[1].attempts == 1 and plan[1].last_error == "503"
    assert plan[1].record == {"replaced": True}
    await stores.sync.finish(second.id, state=ActionState.DONE, entry=an_entry())
    assert await stores.sync.settle(again.id, "w2") is None
    assert (await stores.inbox.stats(due)).pending == 0


async def test_dead_letters_are_listed_newest_first_and_retried_once(stores: Stores) -> None:
    claimed = await a_claimed(stores)
    first, second = await stores.sync.save_plan(
        claimed, actions=[a_write("1"), a_write("2")], entries=[], advances=[], at=T0)
    await stores.sync.bury(first.id, entry=an_entry(Outcome.DEAD), error="Sentry 400", at=T0)
    later = T0 + timedelta(seconds=1)
    await stores.sync.bury(second.id, entry=an_entry(Outcome.DEAD), error="Sentry 404",
                           at=later, record={"sentry_issue_id": "2", "payload": {}})
    assert await stores.sync.settle(claimed.id, "w1") is None  # nothing pending: finished
    letters = await stores.sync.dead_letters()
    assert [d.id for d in letters] == [second.id, first.id]
    assert letters[0].last_error == "Sentry 404" and letters[0].attempts == 1
    assert letters[0].created_at == later and letters[0].kind is Kind.STATUS
    assert letters[0].org == "acme" and letters[0].issue_key == "APP-1"
    assert letters[0].action == {"sentry_issue_id": "2", "payload": {}}
    assert await stores.sync.dead_letter_count() == 2

    now = T0 + timedelta(minutes=5)
    assert await stores.sync.retry_dead_letter(second.id, now=now) is True
    assert await stores.sync.retry_dead_letter(second.id, now=now) is False  # not dead now
    assert await stores.sync.retry_dead_letter(999_999, now=now) is False
    assert [d.id for d in await stores.sync.dead_letters()] == [first.id]
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
    [letter] = await stores.sync.dead_letters()
    assert letter.kind is Kind.DELIVERY and letter.org is None
    assert letter.action["delivery_id"] == "d-1" and letter.attempts == 1
    assert await stores.sync.plan_of(claimed.id) is None  # not decided: decided on retry
    assert await stores.sync.retry_dead_letter(letter.id, now=T0) is True
    [again] = await stores.inbox.claim("w2", now=T0, lease_seconds=30)
    assert again.id == claimed.id and again.attempts == 0  # fresh attempts
    assert await stores.sync.dead_letters() == []


async def test_the_journal_is_newest_first_per_tenant_filtered_and_limited(
    stores: Stores,
) -> None:
    entries = [an_entry(at=T0 + timedelta(seconds=n), issue_key=f"APP-{n % 2}",
                        detail=f"entry {n}") for n in range(6)]
    await stores.sync.record(entries)
    await stores.sync.record([attrs.evolve(an_entry(), tenant_id=2, detail="another tenant")])
    found = await stores.sync.journal(1)
    assert [e.detail for e in found] == [f"entry {n}" for n in range(5, -1, -1)]
    assert found[0] == entries[5]
    assert [e.detail for e in await stores.sync.journal(1, issue_key="APP-0")] == [
        "entry 4", "entry 2", "entry 0"]
    assert [e.detail for e in await stores.sync.journal(1, limit=2)] == ["entry 5", "entry 4"]
    assert [e.detail for e in await stores.sync.journal(2)] == ["another tenant"]
    assert await stores.sync.journal(3) == []


async def test_retention_prunes_old_journal_and_finished_deliveries_but_keeps_dead_letters(
    stores: Stores,
) -> None:
    old = T0 - timedelta(days=40)
    finished = await a_claimed(stores, "finished", at=old, issue_id="1")
    [action] = await stores.sync.save_plan(finished, actions=[a_write()], entries=[],
                                           advances=[], at=old)
    await stores.sync.finish(action.id, state=ActionState.DONE, entry=an_entry(at=old))
    await stores.sync.settle(finished.id, "w1")
    dead = await a_claimed(stores, "dead", at=old, issue_id="2")
    [lost] = await stores.sync.save_plan(dead, actions=[a_write()], entries=[], advances=[],
                                         at=old)
    await stores.sync.bury(lost.id, entry=an_entry(Outcome.DEAD, at=old), error="400", at=old)
    await stores.sync.settle(dead.id, "w1")
    pending = await a_claimed(stores, "pending", at=old, issue_id="3")
    await stores.sync.record([an_entry(at=T0, detail="recent")])

    assert await stores.sync.prune(T0 - timedelta(days=30)) > 0
    assert [e.detail for e in await stores.sync.journal(1)] == ["recent"]
    assert await stores.sync.plan_of(finished.id) is None
    assert len(await stores.sync.dead_letters()) == 1  # an operator may still retry it
    assert (await stores.inbox.stats(T0)).pending == 1  # unfinished work is never pruned
    assert pending.delivery_id == "pending"
    # The finished delivery's dedupe record went with it: the same id is new again.
    assert await stores.inbox.record(NewDelivery(
        tenant_id=1, delivery_id="finished", issue_id="1", issue_key="APP-1", body=b"{}",
        received_at=T0)) is True
    assert await stores.inbox.record(NewDelivery(
        tenant_id=1, delivery_id="dead", issue_id="2", issue_key="APP-1", body=b"{}",
        received_at=T0)) is False


async def test_workers_beat_and_are_forgotten(stores: Stores) -> None:
    await stores.sync.beat("w1", T0)
    await stores.sync.beat("w2", T0 - timedelta(minutes=5))
    assert await stores.sync.live_workers(T0 - timedelta(seconds=15)) == 1
    await stores.sync.beat("w2", T0)
    assert await stores.sync.live_workers(T0 - timedelta(seconds=15)) == 2
    await stores.sync.forget_worker("w1")
    assert await stores.sync.live_workers(T0 - timedelta(seconds=15)) == 1
