"""Group commit (§7, §9; adapters/postgres/batching.py): requests waiting while a statement
runs go out together in the next one; a failed statement fails each of its requests alike."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

import pytest

from adapters.postgres.batching import Batcher
from core.model.errors import Unavailable


@contextlib.asynccontextmanager
async def _no_session() -> AsyncIterator[None]:
    yield None


async def test_requests_arriving_during_a_flush_share_the_next_one() -> None:
    batches: list[list[int]] = []
    gate = asyncio.Event()

    async def flush(_session: None, items: Sequence[int]) -> list[int]:
        batches.append(list(items))
        if len(batches) == 1:
            await gate.wait()  # the first statement is "in flight"
        return [item * 10 for item in items]

    batcher: Batcher[None, int, int] = Batcher(flush, session=_no_session, in_flight=1)
    first = asyncio.create_task(batcher.submit(1))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    rest = [asyncio.create_task(batcher.submit(n)) for n in range(2, 7)]
    await asyncio.sleep(0)
    gate.set()
    assert await first == 10
    assert [await task for task in rest] == [20, 30, 40, 50, 60]
    assert batches == [[1], [2, 3, 4, 5, 6]]


async def test_two_statements_may_be_in_flight_at_once() -> None:
    running = 0
    most = 0
    gate = asyncio.Event()

    async def flush(_session: None, items: Sequence[int]) -> list[int]:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await gate.wait()
        running -= 1
        return list(items)

    batcher: Batcher[None, int, int] = Batcher(flush, session=_no_session, in_flight=2)
    tasks = [asyncio.create_task(batcher.submit(0))]
    for _ in range(3):
        await asyncio.sleep(0)  # the first statement is in flight
    tasks += [asyncio.create_task(batcher.submit(n)) for n in range(1, 5)]
    for _ in range(3):
        await asyncio.sleep(0)  # a second one carries the rest meanwhile
    gate.set()
    assert [await t for t in tasks] == list(range(5))
    assert most == 2


async def test_W10_a_failed_statement_fails_every_request_it_carried_then_recovers() -> None:
    calls = 0

    async def flush(_session: None, items: Sequence[str]) -> list[str]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise Unavailable("the database is unavailable", retry_after=1)
        return list(items)

    batcher: Batcher[None, str, str] = Batcher(flush, session=_no_session)
    results = await asyncio.gather(*(batcher.submit(s) for s in "abc"),
                                   return_exceptions=True)
    assert all(isinstance(r, Unavailable) and r.retry_after == 1 for r in results)
    assert len({id(r) for r in results}) == 3  # one exception each
    assert await batcher.submit("d") == "d"


async def test_a_batch_is_capped() -> None:
    sizes: list[int] = []

    async def flush(_session: None, items: Sequence[int]) -> list[int]:
        sizes.append(len(items))
        return list(items)

    batcher: Batcher[None, int, int] = Batcher(flush, session=_no_session, max_batch=4)
    assert await asyncio.gather(*(batcher.submit(n) for n in range(10))) == list(range(10))
    assert max(sizes) <= 4 and sum(sizes) == 10


@pytest.mark.parametrize("cancel_after", [0, 1])
async def test_cancelled_drain_leaves_no_request_waiting_for_ever(cancel_after: int) -> None:
    async def flush(_session: None, items: Sequence[int]) -> list[int]:
        await asyncio.Event().wait()  # never answers
        return list(items)

    batcher: Batcher[None, int, int] = Batcher(flush, session=_no_session)
    tasks = [asyncio.create_task(batcher.submit(n)) for n in range(3)]
    for _ in range(cancel_after + 2):
        await asyncio.sleep(0)
    drains = [t for t in asyncio.all_tasks() if t.get_coro().__qualname__.endswith("_drain")]
    for drain in drains:
        drain.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError) for r in results)
