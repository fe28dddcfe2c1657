"""The worker loop's pace (issue #15, SPEC §7 hot issue; W6): a finishing delivery wakes the
worker for the next delivery of its issue, claims come in batches, and W6 order holds.

In-memory ports and the real clock. The bounds are generous: the idle poll these tests guard
against costs at least 25 ms per delivery of one issue by construction (100 deliveries: 2.5 s
or more), the per-issue wake-up well under a millisecond each."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import attrs

from adapters.clock import SystemClock
from adapters.worker import IDLE_POLL_MIN, Worker
from ports.inbox import ClaimedDelivery
from tests.adapters.test_worker import SlowSentry
from tests.support.sync_world import DONE, IN_PROGRESS, SyncWorld, issue_updated, status_item

HOT = 100


def _updated(n: int) -> str:
    return f"2025-11-28T09:{n // 60:02d}:{n % 60:02d}.000+0000"


class CountingInbox:
    """The memory inbox, counting claims and what each one asked for."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.limits: list[int] = []
        self.claimed: list[int] = []

    async def claim(self, owner: str, *, now: Any, lease_seconds: float,
                    limit: int = 1) -> list[ClaimedDelivery]:
        got = await self.inner.claim(owner, now=now, lease_seconds=lease_seconds, limit=limit)
        self.limits.append(limit)
        self.claimed.append(len(got))
        return list(got)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class UnevenSentry(SlowSentry):
    """The memory Sentry, answering a PUT after 1–7 ms depending on the issue."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner, 0.0)

    async def update_issue(self, binding: Any, issue_id: str, payload: Any) -> None:
        await asyncio.sleep(0.001 * (int(issue_id) % 7 + 1))
        await self.inner.update_issue(binding, issue_id, payload)


async def test_W6_hot_issue_each_finished_delivery_wakes_the_claim_of_the_next_one() -> None:
    world = SyncWorld(clock=SystemClock())
    tenant = await world.a_tenant()
    await world.bind(tenant, "acme", issues={"APP-123": ["1"]},
                     status_map={"10000": {"resolve": [DONE], "unresolve": [IN_PROGRESS]}})
    for n in range(HOT):  # into "done" and out again, each newer than the last
        item = status_item(IN_PROGRESS, DONE) if n % 2 == 0 else status_item(DONE, IN_PROGRESS)
        await world.deliver(tenant, issue_updated(item, updated=_updated(n)),
                            delivery_id=f"hot-{n}")
    # Each write takes a moment, as a real one does: the next delivery is due while the
    # previous one is still in flight.
    worker = Worker(attrs.evolve(world.ports, sentry=SlowSentry(world.sentry, 0.002)),
                    world.settings, upkeep=world.sync)
    started = time.monotonic()
    await worker.start()
    try:
        while len(world.sentry.updates()) < HOT:
            assert time.monotonic() - started < 60, "the hot issue never drained"
            await asyncio.sleep(0.005)
        elapsed = time.monotonic() - started
    finally:
        await worker.stop()
    # The old idle poll: at least IDLE_POLL_MIN per delivery (2.5 s for 100).
    assert elapsed < HOT * IDLE_POLL_MIN * 0.8, f"{elapsed:.2f} s for {HOT} deliveries"
    # W6 order: every move written once, in the order Jira made them.
    assert [c.payload for c in world.sentry.updates()] == [
        {"status": "resolved" if n % 2 == 0 else "unresolved"} for n in range(HOT)]


async def test_claims_come_in_batches_while_many_issues_are_due() -> None:
    world = SyncWorld(clock=SystemClock())
    tenant = await world.a_tenant()
    issues = 200
    await world.bind(tenant, "acme", issues={f"APP-{n}": [str(n)] for n in range(issues)})
    for n in range(issues):
        await world.deliver(tenant, issue_updated(issue_id=str(10_000 + n), key=f"APP-{n}"),
                            delivery_id=f"d-{n}")
    inbox = CountingInbox(world.inbox)
    # Writes of different issues take different times (1–7 ms): they finish one by one.
    worker = Worker(attrs.evolve(world.ports, inbox=inbox, sentry=UnevenSentry(world.sentry)),
                    world.settings, upkeep=world.sync)
    await worker.start()
    try:
        started = time.monotonic()
        while len(world.sentry.updates()) < issues:
            assert time.monotonic() - started < 60, "never drained"
            await asyncio.sleep(0.005)
    finally:
        await worker.stop()
    # One claim per delivery would be 200 claims; a batch takes at least a quarter of the
    # worker's slots at once.
    taking = [n for n in inbox.claimed if n]
    assert sum(taking) == issues
    assert len(taking) <= issues // (worker.concurrency // 4), inbox.claimed
    assert min(inbox.limits) >= worker.concurrency // 4
