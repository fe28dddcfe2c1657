"""§A /health as a core use case over fakes: the figures, NoWorker when the sync state is there
but no worker runs, and storage that does not answer before anything else is read."""

from __future__ import annotations

from datetime import datetime, timedelta

import attrs
import pytest
from tests.support.sync_stores import T0, Stores, a_claimed, an_entry

from adapters.memory.clock import FixedClock
from adapters.memory.inbox import MemoryInbox
from adapters.memory.sync_store import MemorySyncStore
from core.admin.health import NoWorker, check_health
from core.model.errors import Unavailable
from core.model.sync import Kind, Outcome
from ports.inbox import NewDelivery


def a_queue() -> Stores:
    inbox = MemoryInbox()
    store = MemorySyncStore(inbox)
    return Stores(inbox, store, store, store)


async def one_dead_letter_and_one_pending(stores: Stores) -> None:
    claimed = await a_claimed(stores, "lost")
    entry = attrs.evolve(an_entry(Outcome.DEAD), kind=Kind.DELIVERY, org=None)
    assert await stores.sync.bury_delivery(claimed, "w1", entry=entry, error="Jira 503", at=T0)
    await stores.inbox.record(NewDelivery(tenant_id=1, delivery_id="waiting", issue_id="9",
                                          issue_key="APP-9", body=b"{}", received_at=T0))


async def test_A_health_gives_the_queue_and_the_dead_letters_while_a_worker_runs() -> None:
    stores = a_queue()
    await one_dead_letter_and_one_pending(stores)
    asked: list[datetime] = []

    async def running(now: datetime) -> bool:
        asked.append(now)
        return True

    clock = FixedClock(T0 + timedelta(seconds=90))
    figures = await check_health(inbox=stores.inbox, journal=stores.journal, clock=clock,
                                 workers_running=running)
    assert figures == {"queue_depth": 1, "oldest_pending_seconds": 90.0, "dead_letters": 1}
    assert asked == [clock.now()]


async def test_A_health_is_NoWorker_with_the_figures_when_no_worker_runs() -> None:
    stores = a_queue()
    await one_dead_letter_and_one_pending(stores)

    async def none_running(now: datetime) -> bool:
        return False

    with pytest.raises(NoWorker) as raised:
        await check_health(inbox=stores.inbox, journal=stores.journal, clock=FixedClock(T0),
                           workers_running=none_running)
    assert raised.value.retry_after == 5 and raised.value.detail == "no sync worker is running"
    assert raised.value.figures == {"queue_depth": 1, "oldest_pending_seconds": 0.0,
                                    "dead_letters": 1}


async def test_A_without_the_sync_state_no_worker_is_asked_about() -> None:
    async def must_not_be_asked(now: datetime) -> bool:
        raise AssertionError("asked about workers")

    figures = await check_health(inbox=MemoryInbox(), journal=None, clock=FixedClock(T0),
                                 workers_running=must_not_be_asked)
    assert figures == {"queue_depth": 0, "oldest_pending_seconds": None, "dead_letters": 0}


async def test_A_storage_that_does_not_answer_is_unavailable_before_any_figure() -> None:
    class SilentInbox(MemoryInbox):
        async def stats(self, now: datetime) -> object:
            raise AssertionError("read after a failed ping")

    async def ping() -> None:
        raise Unavailable("the database is not available")

    async def running(now: datetime) -> bool:
        return True

    with pytest.raises(Unavailable, match="the database is not available") as raised:
        await check_health(inbox=SilentInbox(), journal=None, clock=FixedClock(T0),
                           workers_running=running, ping=ping)
    assert not isinstance(raised.value, NoWorker)
