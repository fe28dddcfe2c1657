"""The worker loop (adapters/worker.py) over in-memory ports and the real clock: it claims
and processes, renews leases longer than the work, releases on stop, and two workers on one
queue write once (SPEC §3)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

import attrs

from adapters.clock import SystemClock
from adapters.memory.sentry import MemorySentryApi
from adapters.worker import Worker
from core.model.bindings import Binding
from tests.support.sync_world import SyncWorld, issue_updated


class SlowSentry:
    """The memory Sentry, answering each PUT after `seconds`."""

    def __init__(self, inner: MemorySentryApi, seconds: float) -> None:
        self.inner, self.seconds = inner, seconds

    async def update_issue(self, binding: Binding, issue_id: str,
                           payload: Mapping[str, Any]) -> None:
        await asyncio.sleep(self.seconds)
        await self.inner.update_issue(binding, issue_id, payload)

    async def get_issue_status(self, binding: Binding, issue_id: str) -> str:
        return await self.inner.get_issue_status(binding, issue_id)

    async def members_by_email(self, binding: Binding, email: str) -> Any:
        return await self.inner.members_by_email(binding, email)


async def eventually(check: Any, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_the_worker_processes_a_recorded_delivery_once_woken() -> None:
    world = SyncWorld(clock=SystemClock())
    tenant = await world.a_tenant()
    await world.bind(tenant, "acme", issues={"APP-123": ["1"]})
    # idle_poll_max=30: only a wake-up helps
    worker = Worker(world.ports, world.settings, upkeep=world.sync, idle_poll_max=30)
    await worker.start()
    try:
        assert worker.running
        await asyncio.sleep(0.1)  # idle now, waiting long
        await world.deliver(tenant, issue_updated())
        worker.wake()

        async def written() -> bool:
            return world.sentry.issue("acme", "1").status == "resolved"

        await eventually(written, timeout=1.0)
        assert await world.sync.live_workers(world.clock.now().replace(year=2000)) == 1
    finally:
        await worker.stop()
    assert not worker.running
    assert await world.sync.live_workers(world.clock.now().replace(year=2000)) == 0


async def test_SPEC3_a_lease_shorter_than_the_work_is_renewed_so_nobody_else_takes_it() -> None:
    world = SyncWorld(clock=SystemClock())
    tenant = await world.a_tenant()
    await world.bind(tenant, "acme", issues={"APP-123": ["1"]})
    ports = attrs.evolve(world.ports, sentry=SlowSentry(world.sentry, 1.0))
    first = Worker(ports, world.settings, upkeep=world.sync, lease_seconds=0.3,
                   owner="first")
    second = Worker(ports, world.settings, upkeep=world.sync, lease_seconds=0.3,
                    owner="second")
    await world.deliver(tenant, issue_updated())
    await first.start()
    await asyncio.sleep(0.1)  # first has claimed it
    await second.start()
    try:
        async def written() -> bool:
            return world.sentry.issue("acme", "1").status == "resolved"

        await eventually(written)
        await asyncio.sleep(0.2)
    finally:
        await first.stop()
        await second.stop()
    assert len(world.sentry.updates()) == 1
    assert [o for _, o, _, _ in await world.journal(tenant)] == ["applied"]


async def test_SPEC3_stopping_releases_the_claims_of_unfinished_work() -> None:
    world = SyncWorld(clock=SystemClock())
    tenant = await world.a_tenant()
    await world.bind(tenant, "acme", issues={"APP-123": ["1"]})
    ports = attrs.evolve(world.ports, sentry=SlowSentry(world.sentry, 30))
    worker = Worker(ports, world.settings, upkeep=world.sync, lease_seconds=60)
    await world.deliver(tenant, issue_updated())
    await worker.start()
    await asyncio.sleep(0.2)
    assert await world.claim("other") == []  # leased by the worker
    await worker.stop(grace=0.1)
    # Released at once, not after the 60 s lease: another worker takes it now.
    [claimed] = await world.claim("other")
    assert claimed.delivery_id == "delivery-1"
    assert world.sentry.issue("acme", "1").status == "unresolved"


async def test_two_workers_on_one_queue_write_each_action_once() -> None:
    world = SyncWorld(clock=SystemClock())
    tenant = await world.a_tenant()
    issues = {f"APP-{n}": [str(n)] for n in range(1, 21)}
    await world.bind(tenant, "acme", issues=issues)
    workers = [Worker(world.ports, world.settings, upkeep=world.sync, owner=f"w{n}")
               for n in range(2)]
    for worker in workers:
        await worker.start()
    try:
        for n in range(1, 21):
            await world.deliver(tenant, issue_updated(issue_id=str(n), key=f"APP-{n}"))
            for worker in workers:
                worker.wake()

        async def all_done() -> bool:
            return (await world.inbox.stats(world.clock.now())).pending == 0

        await eventually(all_done)
    finally:
        for worker in workers:
            await worker.stop()
    targets = [c.target for c in world.sentry.updates()]
    assert sorted(targets, key=int) == [str(n) for n in range(1, 21)]


async def _renew_refused_for(worker: Worker, work: Any) -> asyncio.Task[None]:
    """One delivery in progress whose lease renewal the inbox refuses (its row is not held
    by this worker: settled, or claimed by another); `work` is what its task still does."""
    world_claim = await worker.ports.inbox.claim("someone-else", now=worker.ports.clock.now(),
                                                 lease_seconds=60, limit=1)
    [claimed] = world_claim
    task = asyncio.create_task(work())
    worker._inflight[claimed.id] = (claimed, task)
    await worker._renew()
    return task


async def test_SPEC3_a_renewal_refused_for_a_delivery_just_settled_is_no_lost_lease(
        caplog: Any) -> None:
    """Under load every round of renewals met deliveries whose settle had committed while
    their task had not resumed yet: "lost the lease" was logged and the task cancelled."""
    world = SyncWorld(clock=SystemClock())
    tenant = await world.a_tenant()
    await world.deliver(tenant, issue_updated())
    worker = Worker(world.ports, world.settings, upkeep=world.sync)
    finished = []

    async def last_step() -> None:
        await asyncio.sleep(0.005)
        finished.append(True)

    with caplog.at_level("WARNING", logger="sentry_jira.worker"):
        task = await _renew_refused_for(worker, last_step)
    assert finished == [True] and not task.cancelled()
    assert "lost the lease" not in caplog.text


async def test_SPEC3_a_renewal_refused_while_the_work_goes_on_stops_it(caplog: Any) -> None:
    world = SyncWorld(clock=SystemClock())
    tenant = await world.a_tenant()
    await world.deliver(tenant, issue_updated())
    worker = Worker(world.ports, world.settings, upkeep=world.sync)

    async def long_call() -> None:
        await asyncio.sleep(30)

    with caplog.at_level("WARNING", logger="sentry_jira.worker"):
        task = await _renew_refused_for(worker, long_call)
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert task.cancelled()
    assert "lost the lease of delivery delivery-1" in caplog.text
