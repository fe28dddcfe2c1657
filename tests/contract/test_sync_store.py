"""One contract suite for every SyncStore (the use cases' port): plans once, actions once,
watermarks never backwards, a delivery settled with its actions (W6, W9). The journal and
dead letters are tests/contract/test_journal.py; heartbeats and retention,
tests/contract/test_worker_upkeep.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import attrs
import pytest

from core.model.sync import Kind, Outcome, Watermark, WatermarkAdvance
from ports.inbox import NewDelivery
from ports.sync_store import ActionState, Finish, Settle, SyncStore, apply_batch
from tests.support.sync_stores import (
    KEY,
    T0,
    Stores,
    a_claimed,
    a_write,
    an_entry,
    mark,
    open_stores,
)


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


async def test_W6_watermarks_compare_as_instants_whatever_their_offsets(stores: Stores) -> None:
    """#16: 05:00 UTC is later than 10:00+05:30 (04:30 UTC) although it sorts first as text;
    an equal instant replaces the stored one (the later delivery names it)."""
    claimed = await a_claimed(stores)
    first, second, third = await stores.sync.save_plan(
        claimed, actions=[a_write("1"), a_write("2"), a_write("3")], entries=[], advances=[],
        at=T0)
    india = datetime.fromisoformat("2025-11-28T10:00:00+05:30")
    utc_later = datetime.fromisoformat("2025-11-28T05:00:00+00:00")
    await stores.sync.finish(first.id, state=ActionState.DONE, entry=an_entry(),
                             advance=WatermarkAdvance(KEY, Watermark(india, "d-india")))
    await stores.sync.finish(second.id, state=ActionState.DONE, entry=an_entry(),
                             advance=WatermarkAdvance(KEY, Watermark(utc_later, "d-utc")))
    assert (await stores.sync.watermarks([KEY]))[KEY] == Watermark(utc_later, "d-utc")
    same_instant = utc_later.astimezone(india.tzinfo)
    await stores.sync.finish(third.id, state=ActionState.DONE, entry=an_entry(),
                             advance=WatermarkAdvance(KEY, Watermark(same_instant, "d-same")))
    assert (await stores.sync.watermarks([KEY]))[KEY].delivery_id == "d-same"


async def test_a_plan_keeps_the_order_of_its_entries_and_the_latest_of_its_advances(
    stores: Stores,
) -> None:
    """Several journal entries and two advances of one key in one plan: the journal lists
    them newest first in the order given, and the later watermark stays, whichever came
    first."""
    claimed = await a_claimed(stores)
    other = attrs.evolve(KEY, kind=Kind.ASSIGNEE)
    await stores.sync.save_plan(
        claimed, actions=[],
        entries=[an_entry(Outcome.NOOP, detail="first"), an_entry(Outcome.STALE, detail="2nd"),
                 an_entry(Outcome.IGNORED, detail="third")],
        advances=[WatermarkAdvance(KEY, mark(9, "newer")), WatermarkAdvance(KEY, mark(4)),
                  WatermarkAdvance(other, mark(1)), WatermarkAdvance(other, mark(2, "later"))],
        at=T0)
    assert [e.detail for e in await stores.journal.journal(1)] == ["third", "2nd", "first"]
    assert await stores.sync.watermarks([KEY, other]) == {KEY: mark(9, "newer"),
                                                          other: mark(2, "later")}


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


# -- apply_batch (issue 15): finish + settle in one transaction ------------------------------


async def test_W9_apply_batch_finishes_and_settles_like_one_call_each(stores: Stores) -> None:
    """The last action's outcome and the settle of its delivery, in one batch: the same
    results and the same state as `finish` then `settle` (journal, watermark, delivery)."""
    claimed = await a_claimed(stores)
    [action] = await stores.sync.save_plan(claimed, actions=[a_write()], entries=[],
                                           advances=[], at=T0)
    advance = WatermarkAdvance(KEY, mark(5))
    results = await apply_batch(stores.sync, [
        Finish(action.id, ActionState.DONE, an_entry(), advance), Settle(claimed.id, "w1")])
    assert results == [True, None]
    assert [e.outcome for e in await stores.journal.journal(1)] == [Outcome.APPLIED]
    assert await stores.sync.watermarks([KEY]) == {KEY: mark(5)}
    assert (await stores.inbox.stats(T0)).pending == 0  # the delivery is finished
    # Once: the same batch again changes nothing (W9).
    assert await apply_batch(stores.sync, [
        Finish(action.id, ActionState.DONE, an_entry(), advance),
        Settle(claimed.id, "w1")]) == [False, None]
    assert len(await stores.journal.journal(1)) == 1


async def test_apply_batch_gives_back_a_delivery_with_a_pending_action(stores: Stores) -> None:
    claimed = await a_claimed(stores)
    first, second = await stores.sync.save_plan(
        claimed, actions=[a_write("1"), a_write("2")], entries=[], advances=[], at=T0)
    later = T0 + timedelta(minutes=5)
    await stores.sync.postpone(second.id, entry=an_entry(Outcome.RETRYING), error="503",
                               not_before=later)
    results = await apply_batch(stores.sync, [
        Finish(first.id, ActionState.SKIPPED, an_entry(Outcome.STALE)), Settle(claimed.id, "w1")])
    assert results == [True, later]
    assert (await stores.inbox.stats(T0)).pending == 1  # given back, due at `later`
    assert await stores.inbox.claim("w2", now=T0, lease_seconds=30) == []


async def test_apply_batch_of_several_outcomes_then_the_settle(stores: Stores) -> None:
    """A batch longer than the worker's usual pair: each change sees the ones before it."""
    claimed = await a_claimed(stores)
    first, second = await stores.sync.save_plan(
        claimed, actions=[a_write("1"), a_write("2")], entries=[], advances=[], at=T0)
    results = await apply_batch(stores.sync, [
        Finish(first.id, ActionState.DONE, an_entry(detail="one"), WatermarkAdvance(KEY, mark(1))),
        Finish(second.id, ActionState.DONE, an_entry(detail="two"),
               WatermarkAdvance(KEY, mark(2, "d-2"))),
        Finish(first.id, ActionState.DONE, an_entry(detail="again")),
        Settle(claimed.id, "w1")])
    assert results == [True, True, False, None]
    assert [e.detail for e in await stores.journal.journal(1)] == ["two", "one"]
    assert await stores.sync.watermarks([KEY]) == {KEY: mark(2, "d-2")}
    assert (await stores.inbox.stats(T0)).pending == 0


async def test_apply_batch_settles_only_under_the_owners_lease(stores: Stores) -> None:
    claimed = await a_claimed(stores, owner="w1")
    [action] = await stores.sync.save_plan(claimed, actions=[a_write()], entries=[],
                                           advances=[], at=T0)
    await apply_batch(stores.sync, [Finish(action.id, ActionState.DONE, an_entry()),
                                    Settle(claimed.id, "somebody-else")])
    assert (await stores.inbox.stats(T0)).pending == 1  # not finished by a stranger


async def test_apply_batch_refuses_a_finish_to_a_pending_state_before_writing(
    stores: Stores,
) -> None:
    claimed = await a_claimed(stores)
    first, second = await stores.sync.save_plan(
        claimed, actions=[a_write("1"), a_write("2")], entries=[], advances=[], at=T0)
    with pytest.raises(ValueError, match="DONE or SKIPPED"):
        await stores.sync.finish(second.id, state=ActionState.DEAD, entry=an_entry())
    with pytest.raises(ValueError, match="DONE or SKIPPED"):
        await apply_batch(stores.sync, [Finish(first.id, ActionState.DONE, an_entry()),
                                        Finish(second.id, ActionState.DEAD, an_entry())])
    assert await stores.journal.journal(1) == []
    assert all(a.state is ActionState.PENDING for a in await stores.sync.plan_of(claimed.id) or [])


class OneCallEach:
    """A SyncStore without `apply_batch` (a store written against the port before it)."""

    def __init__(self, store: SyncStore) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        if name == "apply_batch":
            raise AttributeError(name)
        return getattr(self._store, name)


async def test_apply_batch_falls_back_to_one_call_each(stores: Stores) -> None:
    claimed = await a_claimed(stores)
    [action] = await stores.sync.save_plan(claimed, actions=[a_write()], entries=[],
                                           advances=[], at=T0)
    plain = cast(SyncStore, OneCallEach(stores.sync))
    assert not hasattr(plain, "apply_batch")
    results = await apply_batch(plain, [Finish(action.id, ActionState.DONE, an_entry(),
                                               WatermarkAdvance(KEY, mark(1))),
                                        Settle(claimed.id, "w1")])
    assert results == [True, None]
    assert await stores.sync.watermarks([KEY]) == {KEY: mark(1)}
    assert (await stores.inbox.stats(T0)).pending == 0


@pytest.mark.parametrize("kind", ["sqlite", "sqlite-on-the-loop", "postgres"])
async def test_sqlite_apply_batch_is_one_transaction(kind: str, tmp_path: Path,
                                                     request: pytest.FixtureRequest) -> None:
    """A change that fails rolls back the changes before it in the batch: the action stays
    pending, nothing is journalled, the watermark does not move (W9: one transaction; on
    PostgreSQL too, §9)."""
    async with open_stores(kind, tmp_path, request) as stores:
        claimed = await a_claimed(stores)
        first, second = await stores.sync.save_plan(
            claimed, actions=[a_write("1"), a_write("2")], entries=[], advances=[], at=T0)
        broken = attrs.evolve(an_entry(), kind=cast(Kind, "no-such-kind"))
        with pytest.raises(AttributeError):
            await apply_batch(stores.sync, [
                Finish(first.id, ActionState.DONE, an_entry(), WatermarkAdvance(KEY, mark(3))),
                Finish(second.id, ActionState.DONE, broken)])
        assert await stores.journal.journal(1) == []
        assert await stores.sync.watermarks([KEY]) == {}
        assert all(a.state is ActionState.PENDING
                   for a in await stores.sync.plan_of(claimed.id) or [])
