"""One contract suite for every WorkerUpkeep (adapters/worker.py): retention prunes what is
old and finished but keeps dead letters and unfinished work; workers beat and are forgotten."""

from __future__ import annotations

from datetime import timedelta

from core.model.sync import Outcome
from ports.inbox import NewDelivery
from ports.sync_store import ActionState
from tests.support.sync_stores import T0, Stores, a_claimed, a_write, an_entry


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
    await stores.journal.record([an_entry(at=T0, detail="recent")])

    assert await stores.upkeep.prune(T0 - timedelta(days=30)) > 0
    assert [e.detail for e in await stores.journal.journal(1)] == ["recent"]
    assert await stores.sync.plan_of(finished.id) is None
    assert len(await stores.journal.dead_letters()) == 1  # an operator may still retry it
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
    await stores.upkeep.beat("w1", T0)
    await stores.upkeep.beat("w2", T0 - timedelta(minutes=5))
    assert await stores.upkeep.live_workers(T0 - timedelta(seconds=15)) == 1
    await stores.upkeep.beat("w2", T0)
    assert await stores.upkeep.live_workers(T0 - timedelta(seconds=15)) == 2
    await stores.upkeep.forget_worker("w1")
    assert await stores.upkeep.live_workers(T0 - timedelta(seconds=15)) == 1
