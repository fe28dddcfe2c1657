"""Issue #11 item 5 (§4.3): waiting for a key-fetch slot is inside the 3 s deadline, and the
wait queue is bounded: a flood of junk kids cannot delay a real install, it gets a 503."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest

from adapters.install_keys_http import HttpInstallKeys
from core.errors import Unavailable
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
    keys = HttpInstallKeys(
        client,
        key_server.url,
        timeout_seconds=DEADLINE,
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
            await asyncio.wait_for(keys.public_key(kid), timeout=DEADLINE / 2)
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
    keys = HttpInstallKeys(
        client,
        key_server.url,
        timeout_seconds=DEADLINE,
        max_concurrent_fetches=SLOTS,
        max_waiting_fetches=1000,
    )
    key_server.serve("real", signing_key().public_pem)
    held = [asyncio.ensure_future(keys.public_key(k)) for k in junk(key_server, SLOTS)]
    await wait_until(lambda: key_server.total_requests == SLOTS, "the slots to fill")
    started = time.monotonic()
    with pytest.raises(Unavailable):
        await keys.public_key("real")
    waited = time.monotonic() - started
    # Bounded by the deadline (1 s), far from the 20 s the junk fetches hang; generous.
    assert waited < HANG / 4
    assert key_server.fetches("real") == 0  # it never got a slot: nothing was sent
    await asyncio.gather(*held, return_exceptions=True)
