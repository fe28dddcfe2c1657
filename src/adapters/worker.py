"""The sync worker: claims recorded deliveries and processes them (W5–W9, SPEC §3 leases).

One `Worker` per process, started by `Container.startup` (the app's lifespan) or by the
`sentry-jira worker` command. Several processes may run workers on one database:

- A delivery is claimed with a lease (`claimed_until`), never two of one issue at once
  (ports/inbox.py). While a delivery is processed its lease is renewed every third of the
  lease, so the lease can be much shorter than the work; a process that dies stops renewing
  and its deliveries are claimed again once the lease ends.
- Stopping waits a few seconds for deliveries in progress, cancels the rest and releases
  their leases, so another worker takes them at once.
- Claims come in batches: up to `concurrency` (32) deliveries in progress, each of another
  issue (W6), claimed once a quarter of the slots is free — one window scan and one
  transaction for several deliveries.
- Wake-ups: a delivery that finishes wakes the loop at once (its slot is free, and so is its
  issue: the next delivery of a hot issue is claimed without waiting). `wake()` (the ack path
  of the same process calls it through `Container.wake_worker`) ends an idle wait, but not
  before 25 ms after a claim that found nothing (during a burst on one busy issue every claim
  would come back empty); when idle the wait backs off from 25 ms to `idle_poll_max`
  (250 ms), and a delivery due again soon (a retry with a short backoff) shortens it.
- The acknowledgement path comes first: while the event loop is busy serving requests (one
  turn takes over 1 ms), the worker waits 5 ms before claiming, for at most 50 ms. Its reads
  and writes run on the loop's own SQLite connection (adapters/sqlite/loop_writes.py), never
  holding the write lock from another thread nor waiting for the GIL on a thread hop.
- Every few seconds the worker records a heartbeat (`/health` of a process without its own
  worker asks whether any worker beats), and once an hour prunes what retention allows.
  Both are this adapter's upkeep (`WorkerUpkeep`), not a port of the core: no use case asks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
import socket
from datetime import datetime, timedelta
from typing import Protocol

from core.issue_update import retry_delay
from core.issue_update.process import SyncPorts, process_delivery, processing_failed
from core.model.errors import ServiceError
from core.model.settings import AppSettings
from ports.inbox import ClaimedDelivery

log = logging.getLogger("sentry_jira.worker")

IDLE_POLL_MIN = 0.025
IDLE_POLL_MAX = 0.25
HEARTBEAT_SECONDS = 5.0
PRUNE_EVERY_SECONDS = 3600.0
STOP_GRACE_SECONDS = 5.0
# The acknowledgement path comes first: while a turn of the event loop takes longer than
# BUSY_TURN_SECONDS (requests queue up), the worker waits DEFER_SECONDS before claiming, but
# claims at least every MAX_DEFER_SECONDS. Under a burst the queue grows, and drains after.
BUSY_TURN_SECONDS = 0.001
DEFER_SECONDS = 0.005
MAX_DEFER_SECONDS = 0.05
# A renewal refused for a delivery whose task ends within this was settled, not lost.
SETTLED_GRACE_SECONDS = 0.05
# Deliveries in progress at once (each of another issue: W6), and so Sentry connections.
CONCURRENCY = 32


def worker_name() -> str:
    """host:pid:random — unique per worker, readable in the deliveries table."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def heartbeat_horizon(now: datetime) -> datetime:
    """Workers that beat since then count as running (three missed beats: not running)."""
    return now - timedelta(seconds=3 * HEARTBEAT_SECONDS)


class WorkerUpkeep(Protocol):
    """What running workers keep beside the sync state: heartbeats and retention."""

    async def beat(self, worker: str, now: datetime) -> None:
        """A running worker says it is alive (health)."""
        ...

    async def forget_worker(self, worker: str) -> None:
        """A worker stopped cleanly."""
        ...

    async def live_workers(self, since: datetime) -> int:
        """How many workers beat at or after `since`."""
        ...

    async def prune(self, older_than: datetime) -> int:
        """Retention: forget journal entries, and finished deliveries with their actions,
        from before `older_than`. Dead letters and their deliveries are kept. Returns how
        many rows went."""
        ...


class Worker:
    def __init__(
        self,
        ports: SyncPorts,
        settings: AppSettings,
        *,
        upkeep: WorkerUpkeep,
        lease_seconds: float = 30.0,
        concurrency: int = CONCURRENCY,
        idle_poll_max: float = IDLE_POLL_MAX,
        owner: str | None = None,
    ) -> None:
        self.ports = ports
        self.settings = settings
        self.upkeep = upkeep
        self.owner = owner or worker_name()
        self.lease_seconds = lease_seconds
        self.concurrency = concurrency
        self.idle_poll_max = idle_poll_max
        self._task: asyncio.Task[None] | None = None
        self._keeper: asyncio.Task[None] | None = None
        self._inflight: dict[int, tuple[ClaimedDelivery, asyncio.Task[None]]] = {}
        self._wake: asyncio.Event | None = None
        self._freed: asyncio.Event | None = None
        self._stopping = False
        self._next_due: datetime | None = None

    # -- lifecycle --------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done() and not self._stopping

    async def start(self) -> None:
        if self._task is not None:
            return
        self._stopping = False
        self._wake = asyncio.Event()
        self._freed = asyncio.Event()
        await self._beat()
        self._keeper = asyncio.create_task(self._keep(), name="sync-worker-keeper")
        self._task = asyncio.create_task(self._run(), name="sync-worker")

    def wake(self) -> None:
        """New work may be there (an in-process acknowledgement): poll now."""
        if self._wake is not None:
            self._wake.set()

    async def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """Stop claiming, let work in progress finish for `grace` seconds, cancel the rest and
        release its leases."""
        if self._task is None:
            return
        self._stopping = True
        self.wake()
        if self._freed is not None:
            self._freed.set()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        inflight = dict(self._inflight)
        if inflight:
            _, late = await asyncio.wait([t for _, t in inflight.values()], timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
            for row_id, (claimed, task) in inflight.items():
                if task in late:
                    await self._release(claimed, self.ports.clock.now())
                self._inflight.pop(row_id, None)
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
        with contextlib.suppress(ServiceError):
            await self.upkeep.forget_worker(self.owner)
        self._task = self._keeper = None

    # -- the loop ---------------------------------------------------------------------

    async def _run(self) -> None:
        idle = IDLE_POLL_MIN
        loop = asyncio.get_running_loop()
        last_claim = loop.time()
        batch = max(1, self.concurrency // 4)
        while not self._stopping:
            free = self.concurrency - len(self._inflight)
            if free < batch:
                # Claims come in batches: one window scan and one transaction for several
                # deliveries. A finishing delivery ends this wait at once.
                await self._wait_freed(self.idle_poll_max)
                continue
            if loop.time() - last_claim < MAX_DEFER_SECONDS and await self._loop_is_busy():
                await asyncio.sleep(DEFER_SECONDS)  # requests are waiting: they come first
                continue
            last_claim = loop.time()
            assert self._freed is not None
            self._freed.clear()  # from here on, a finishing delivery means "claim again"
            claimed = await self._claim(free)
            for delivery in claimed:
                task = asyncio.create_task(self._process(delivery))
                self._inflight[delivery.id] = (delivery, task)
            if claimed:
                idle = IDLE_POLL_MIN
                await asyncio.sleep(0)
                continue
            # Nothing claimable. A delivery finishing frees its issue (per-issue wake-up:
            # the next delivery of a hot issue is claimed at once). An acknowledgement does
            # not end the wait before IDLE_POLL_MIN (during a burst on a busy issue every
            # claim would come back empty); the current backoff ends it at the latest.
            if await self._wait_freed(IDLE_POLL_MIN):
                continue
            await self._idle(max(0.0, idle - IDLE_POLL_MIN))
            idle = min(idle * 2, self.idle_poll_max)

    async def _wait_freed(self, seconds: float) -> bool:
        """Wait until a delivery in progress finishes (True) or `seconds` pass."""
        assert self._freed is not None
        if not self._freed.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._freed.wait(), timeout=seconds)
        freed = self._freed.is_set()
        self._freed.clear()
        return freed or self._stopping

    async def _loop_is_busy(self) -> bool:
        """Does a turn of the event loop take long (a burst of requests being served)?"""
        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.sleep(0)
        return loop.time() - started > BUSY_TURN_SECONDS

    async def _claim(self, free: int) -> list[ClaimedDelivery]:
        try:
            return await self.ports.inbox.claim(
                self.owner, now=self.ports.clock.now(), lease_seconds=self.lease_seconds,
                limit=free)
        except ServiceError as err:  # the database is busy or gone: try again shortly
            log.warning("claiming deliveries failed: %s", err.detail)
            return []

    async def _idle(self, seconds: float) -> None:
        assert self._wake is not None
        if self._next_due is not None:
            until_due = (self._next_due - self.ports.clock.now()).total_seconds()
            seconds = max(0.0, min(seconds, until_due))
            self._next_due = None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        self._wake.clear()

    async def _process(self, claimed: ClaimedDelivery) -> None:
        try:
            due = await process_delivery(claimed, owner=self.owner, ports=self.ports,
                                         settings=self.settings)
        except asyncio.CancelledError:
            raise
        except Exception as err:
            # A database outage, a bug or an answer nobody could read: W9 — it counts toward
            # max_attempts (`retrying`, then a dead letter), never an endless silent retry.
            # The journal gets the exception's type, never its text (it may quote data).
            detail = err.detail if isinstance(err, ServiceError) else type(err).__name__
            log.error("processing delivery %s of tenant %s failed: %s",
                      claimed.delivery_id, claimed.tenant_id, detail,
                      exc_info=not isinstance(err, ServiceError))
            due = await self._failed(claimed, detail)
        finally:
            self._inflight.pop(claimed.id, None)
        if due is not None and (self._next_due is None or due < self._next_due):
            self._next_due = due
        if self._freed is not None:
            self._freed.set()  # a slot is free, and the delivery's issue with it
        self.wake()

    async def _failed(self, claimed: ClaimedDelivery, detail: str) -> datetime | None:
        try:
            return await processing_failed(claimed, detail, owner=self.owner, ports=self.ports,
                                           settings=self.settings)
        except Exception as err:  # the database is gone too: back off, the claim counts
            log.warning("journalling the failure of delivery %s failed: %s", claimed.delivery_id,
                        err.detail if isinstance(err, ServiceError) else type(err).__name__)
        delay = retry_delay(claimed.attempts + 1, base_seconds=self.settings.retry_base_seconds,
                            retry_after=None, jitter=random.random())
        due = self.ports.clock.now() + timedelta(seconds=delay)
        await self._release(claimed, due)
        return due

    async def _release(self, claimed: ClaimedDelivery, not_before: datetime) -> None:
        try:
            await self.ports.inbox.release(claimed.id, self.owner, not_before=not_before)
        except ServiceError as err:  # the lease runs out on its own
            log.warning("releasing delivery %s failed: %s", claimed.delivery_id, err.detail)

    # -- leases, heartbeat, retention -------------------------------------------------

    async def _keep(self) -> None:
        renew_every = max(0.05, self.lease_seconds / 3)
        tick = min(renew_every, HEARTBEAT_SECONDS)
        last_beat = last_renew = 0.0
        last_prune = -PRUNE_EVERY_SECONDS
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(tick)
            now = loop.time()
            try:
                if now - last_renew >= renew_every:
                    last_renew = now
                    await self._renew()
                if now - last_beat >= HEARTBEAT_SECONDS:
                    last_beat = now
                    await self._beat()
                if now - last_prune >= PRUNE_EVERY_SECONDS:
                    last_prune = now
                    await self._prune()
            except ServiceError as err:
                log.warning("worker upkeep failed: %s", err.detail)

    async def _renew(self) -> None:
        for row_id, (claimed, task) in list(self._inflight.items()):
            if task.done():
                continue
            held = await self.ports.inbox.renew(row_id, self.owner, now=self.ports.clock.now(),
                                                lease_seconds=self.lease_seconds)
            if not held:
                # Either settled a moment ago (its settle committed, its task has not
                # resumed yet: under load, every round of renewals met a few) or taken by
                # another worker. Only the second is a lost lease: stop before another write.
                await asyncio.wait({task}, timeout=SETTLED_GRACE_SECONDS)
                if task.done():
                    continue
                log.warning("lost the lease of delivery %s", claimed.delivery_id)
                task.cancel()

    async def _beat(self) -> None:
        with contextlib.suppress(ServiceError):
            await self.upkeep.beat(self.owner, self.ports.clock.now())

    async def _prune(self) -> None:
        cutoff = self.ports.clock.now() - timedelta(days=self.settings.retention_days)
        gone = await self.upkeep.prune(cutoff)
        if gone:
            log.info("retention: pruned %d old journal entries and deliveries", gone)
