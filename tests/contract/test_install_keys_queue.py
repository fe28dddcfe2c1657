"""Issue #11 item 5 (§4.3): waiting for a key-fetch slot is inside the 3 s deadline, and the
wait queue is bounded: a flood of junk kids cannot delay a real install, it gets a 503."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest

from adapters.outbound.install_keys import HttpInstallKeys
from core.model.errors import Unavailable
from tests.support.connect_tokens import signing_key
from tests.support.key_server import KeyServer, running_key_server

SLOTS = 4
QUEUE = 8
DEADLINE = 1.0
# The key server holds a junk fetch this long: the old code made a waiter sit it out.
HANG = 20.0


@pytest.fixture
def key_server() -> Iterator[KeyServer]:
    with running_key_server() as server:
        server.hang_seconds = HANG
        yield server


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=64)) as shared:
        yield shared


async def wait_until(check: Callable[[], bool], what: str, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def junk(key_server: KeyServer, count: int, start: int = 0) -> list[str]:
    kids = [f"junk-{n}" for n in range(start, start + count)]
    for kid in kids:
        key_server.behave(kid, "hang")
    return kids


async def test_issue11_a_full_wait_queue_answers_503_at_once_and_fetches_nothing(
    key_server: KeyServer, client: httpx.AsyncClient
) -> None:
    # §4.3's 3 s: room for a loaded machine to send the flood while the slots are held.
    keys = HttpInstallKeys(
        client,
        key_server.url,
        timeout_seconds=3.0,
        max_concurrent_fetches=SLOTS,
        max_waiting_fetches=QUEUE,
    )
    key_server.serve("real", signing_key().public_pem)
    held = [asyncio.ensure_future(keys.public_key(k)) for k in junk(key_server, SLOTS + QUEUE)]
    await wait_until(lambda: key_server.total_requests == SLOTS, "the slots to fill")
    await asyncio.sleep(0.05)  # the queued ones are waiting now

    refused = 0
    for kid in [*junk(key_server, 200, start=1000), "real"]:
        with pytest.raises(Unavailable) as full:
            await asyncio.wait_for(keys.public_key(kid), timeout=1.0)
        assert full.value.retry_after > 0
        refused += 1
    # 201 refusals, not one more fetch: the queue is bounded, nothing waits behind it.
    assert refused == 201 and key_server.total_requests == SLOTS

    results = await asyncio.gather(*held, return_exceptions=True)
    assert all(isinstance(r, Unavailable) for r in results)
    # Once the flood has timed out, the real install's key is fetched.
    assert "PUBLIC KEY" in await keys.public_key("real")


async def test_issue11_the_wait_for_a_slot_counts_in_the_deadline(
    key_server: KeyServer, client: httpx.AsyncClient
) -> None:
    # 40 junk kids ahead of a real one, the queue large enough to take them all. Before the
    # fix every queued junk fetch waited for a slot and then hung for its own deadline:
    # 10 rounds of 4, 10 s, before the real key was even asked for.
    keys = HttpInstallKeys(
        client,
        key_server.url,
        timeout_seconds=DEADLINE,
        max_concurrent_fetches=SLOTS,
        max_waiting_fetches=1000,
    )
    key_server.serve("real", signing_key().public_pem)
    held = [asyncio.ensure_future(keys.public_key(k)) for k in junk(key_server, 40)]
    await wait_until(lambda: key_server.total_requests == SLOTS, "the slots to fill")
    started = time.monotonic()
    try:  # a key, or a 503 with Retry-After: either way within the deadline
        await keys.public_key("real")
    except Unavailable as busy:
        assert busy.retry_after > 0
    waited = time.monotonic() - started
    results = await asyncio.gather(*held, return_exceptions=True)
    assert all(isinstance(r, Unavailable) for r in results)
    # Counted: the queued junk fetches ran out of their deadline while waiting. The slot
    # holders free their slots at the very instant the first waiters' deadlines end, so on a
    # loaded machine a waiter or two may still win a slot and send; the old code sent all 40.
    assert key_server.total_requests - key_server.fetches("real") <= 2 * SLOTS
    assert waited < 4 * DEADLINE  # generous; the old code took 10 deadlines
