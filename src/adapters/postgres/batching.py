"""Group commit for the acknowledgement path on PostgreSQL (§7, §9).

Concurrent requests each need one statement (a tenant lookup, a delivery insert); sent one
by one they cost one round trip, one pool checkout and — for an insert — one WAL flush each.
A `Batcher` sends what is waiting as ONE statement: while a statement is in flight, new
requests queue, and the next statement carries all of them. Under no load a request goes
out at once (a batch of one: no added latency); under load the batch grows by itself.

A statement that fails fails every request it carried alike (W10: 503 for each, nothing
written — the statement is atomic).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from core.model.errors import Unavailable

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    def __init__(self, flush: Callable[[Sequence[T]], Awaitable[Sequence[R]]],
                 *, max_batch: int = 512, in_flight: int = 2) -> None:
        self._flush = flush
        self._max_batch = max_batch
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._in_flight = in_flight  # statements at once (on connections of their own)
        self._draining = 0

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._draining < self._in_flight:
            self._draining += 1
            asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch = self._pending[:self._max_batch]
                del self._pending[:self._max_batch]
                try:
                    results = await self._flush([item for item, _ in batch])
                except Exception as err:  # every request of the statement fails alike
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(_copy(err))
                    continue
                except BaseException:  # cancelled (shutdown): nobody waits for ever
                    for _, future in batch + self._pending:
                        future.cancel()
                    self._pending.clear()
                    raise
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._draining -= 1


def _copy(err: Exception) -> Exception:
    # One exception object raised in many tasks would collect all their tracebacks.
    if isinstance(err, Unavailable):
        return Unavailable(err.detail, retry_after=err.retry_after)
    return err
