"""One contract suite for every SyncStore (the use cases' port): plans once, actions once,
watermarks never backwards, a delivery settled with its actions (W6, W9). The journal and
dead letters are tests/contract/test_journal.py; heartbeats and retention,
tests/contract/test_worker_upkeep.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs

from core.model.sync import Kind, Outcome, Watermark, WatermarkAdvance
from ports.inbox import NewDelivery
from ports.sync_store import ActionState
from tests.support.sync_stores import KEY, T0, Stores, a_claimed, a_write, an_entry, mark


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
    assert [e.outcome for e in await stores.journal.journal(1)] == [Outcome.NOOP]
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
    assert [e.outcome for e in await stores.journal.journal(1)] == [Outcome.APPLIED]
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


async def test_a_settled_delivery_leaves_the_queue_and_stays_a_duplicate(stores: Stores) -> None:
    claimed = await a_claimed(stores)
    assert await stores.sync.save_plan(claimed, actions=[], entries=[], advances=[], at=T0) == []
    assert await stores.sync.settle(claimed.id, "w1") is None  # nothing pending: finished
    assert await stores.inbox.claim("w1", now=T0 + timedelta(hours=1), lease_seconds=30) == []
    assert (await stores.inbox.stats(T0)).pending == 0
    assert await stores.inbox.record(NewDelivery(
        tenant_id=1, delivery_id="d-1", issue_id="20417", issue_key="APP-1", body=b"{}",
        received_at=T0)) is False  # still a duplicate once finished
