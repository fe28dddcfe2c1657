"""Group commit for the acknowledgement path on PostgreSQL (§7, §9).

Concurrent requests each need one statement (a tenant lookup, a delivery insert); sent one
by one they cost one round trip, one pool checkout and — for an insert — one WAL flush each.
A `Batcher` sends what is waiting as ONE statement: while a statement is in flight, new
requests queue, and the next statement carries all of them. Under no load a request goes
out at once (a batch of one: no added latency); under load the batch grows by itself.

One statement in flight per batcher by default (docs/performance.md, "PostgreSQL ack"):
`serve` is bound by its own CPU under load, and every statement costs it about the same
whatever it carries (~70 µs: the pool, psycopg's parameter dumping, the socket waits), so
fewer, larger statements leave more of the core to requests. A second statement in flight
halved the batches and cost ~12 µs of CPU per request at 32 connections.

While requests keep coming, a drain keeps the connection it took (`session`) for the next
statement instead of returning it to the pool and taking one again; it gives it back as
soon as nothing waits.

A statement that fails fails every request it carried alike (W10: 503 for each, nothing
written — the statement is atomic); the connection goes back (the pool checks a broken one)
and the next statement takes a connection afresh.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Generic, TypeVar

from core.model.errors import Unavailable

S = TypeVar("S")
T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[S, T, R]):
    """`flush(session, items)` answers `items` in order, in one statement on `session` (a
    connection opened by `session()`)."""

    def __init__(self, flush: Callable[[S, Sequence[T]], Awaitable[Sequence[R]]],
                 *, session: Callable[[], AbstractAsyncContextManager[S]],
                 max_batch: int = 512, in_flight: int = 1) -> None:
        self._flush = flush
        self._session = session
        self._max_batch = max_batch
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._in_flight = in_flight  # statements at once (on connections of their own)
        self._draining = 0
        self._drains: set[asyncio.Task[None]] = set()  # referenced while they run

    async def submit(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, future))
        if self._draining < self._in_flight:
            self._draining += 1
            drain = loop.create_task(self._drain())
            self._drains.add(drain)
            drain.add_done_callback(self._drains.discard)
        return await future

    def _take(self) -> list[tuple[T, asyncio.Future[R]]]:
        batch = self._pending[:self._max_batch]
        del self._pending[:self._max_batch]
        return batch

    async def _drain(self) -> None:
        batch: list[tuple[T, asyncio.Future[R]]] = []
        try:
            while self._pending:
                batch = self._take()
                try:
                    async with self._session() as session:
                        while batch:
                            results = await self._flush(session, [item for item, _ in batch])
                            for (_, future), result in zip(batch, results, strict=True):
                                if not future.done():
                                    future.set_result(result)
                            batch = self._take()  # the connection serves what waits now
                except Exception as err:  # every request of the statement fails alike
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(_copy(err))
                    batch = []
        except BaseException:  # cancelled (shutdown): nobody waits for ever
            for _, future in batch + self._pending:
                future.cancel()
            self._pending.clear()
            raise
        finally:
            self._draining -= 1


def _copy(err: Exception) -> Exception:
    # One exception object raised in many tasks would collect all their tracebacks.
    if isinstance(err, Unavailable):
        return Unavailable(err.detail, retry_after=err.retry_after)
    return err
