"""§8.2 ForgeKeys: one contract for the fake and the httpx JWKS adapter (against a real JWKS
server on loopback), then the adapter's own rules: cache per Cache-Control within
5 min–24 h, at most one refetch per 60 s for an unknown kid, no redirects, ≤ 3 s, size cap,
failures → 503 without losing the keys held."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from adapters.memory.forge import MemoryForgeKeys
from adapters.outbound.forge_jwks import (
    MAX_TTL_SECONDS,
    MIN_TTL_SECONDS,
    HttpForgeJwks,
    cache_seconds,
    forge_jwks_client,
    parse_jwks,
)
from core.model.errors import Unauthorized, Unavailable
from tests.support.forge import ForgeSigner, JwksServer

TIMEOUT = 0.5


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def jwks() -> Iterator[JwksServer]:
    with JwksServer(ForgeSigner("k-one")) as server:
        yield server


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with forge_jwks_client(TIMEOUT) as http:
        yield http


def adapter(client: httpx.AsyncClient, server: JwksServer, clock: Clock | None = None,
            timeout: float = TIMEOUT) -> HttpForgeJwks:
    return HttpForgeJwks(client, server.url, timeout_seconds=timeout,
                         monotonic=clock or Clock())


@pytest.fixture(params=["memory", "http"])
def source(request: pytest.FixtureRequest, jwks: JwksServer,
           client: httpx.AsyncClient) -> tuple[Any, JwksServer]:
    if request.param == "memory":
        fake = MemoryForgeKeys({s.kid: s.key.public_key() for s in jwks.signers})
        return fake, jwks
    return adapter(client, jwks), jwks


# -- the contract ----------------------------------------------------------------------------


async def test_8_2_a_published_kid_gives_its_public_key(source: tuple[Any, JwksServer]) -> None:
    keys, server = source
    key = await keys.signing_key("k-one")
    assert key.public_numbers() == server.signer.key.public_key().public_numbers()


async def test_8_2_an_unknown_kid_is_401(source: tuple[Any, JwksServer]) -> None:
    keys, _ = source
    with pytest.raises(Unauthorized):
        await keys.signing_key("k-unknown")


# -- the adapter's rules ------------------------------------------------------------------------


async def test_8_2_fetched_once_then_served_from_the_cache(
        client: httpx.AsyncClient, jwks: JwksServer) -> None:
    keys = adapter(client, jwks)
    await asyncio.gather(*(keys.signing_key("k-one") for _ in range(20)))
    assert jwks.requests == 1


async def test_8_2_unknown_kid_refetches_at_most_once_per_60_seconds(
        client: httpx.AsyncClient, jwks: JwksServer) -> None:
    clock = Clock()
    keys = adapter(client, jwks, clock)
    await keys.signing_key("k-one")
    for _ in range(50):
        with pytest.raises(Unauthorized):
            await keys.signing_key("k-flood")
    assert jwks.requests == 1  # the first fetch happened just now: no refetch yet
    clock.now += 60
    with pytest.raises(Unauthorized):
        await keys.signing_key("k-flood")
    with pytest.raises(Unauthorized):
        await keys.signing_key("k-flood-2")
    assert jwks.requests == 2


async def test_8_2_a_rotated_key_is_found_by_the_refetch(
        client: httpx.AsyncClient, jwks: JwksServer) -> None:
    clock = Clock()
    keys = adapter(client, jwks, clock)
    await keys.signing_key("k-one")
    new = jwks.rotate()
    clock.now += 61
    assert (await keys.signing_key(new.kid)).public_numbers() == \
        new.key.public_key().public_numbers()
    jwks.retire(jwks.signers[0])
    clock.now += MAX_TTL_SECONDS  # the set expired: the retired key is gone after the refetch
    with pytest.raises(Unauthorized):
        await keys.signing_key("k-one")


@pytest.mark.parametrize(("header", "seconds"), [
    (None, MIN_TTL_SECONDS), ("no-store", MIN_TTL_SECONDS), ("max-age=10", MIN_TTL_SECONDS),
    ("public, max-age=3600", 3600.0), ("max-age=999999999", MAX_TTL_SECONDS),
    ("max-age=abc", MIN_TTL_SECONDS),
])
def test_8_2_cache_control_is_clamped_to_5_minutes_24_hours(header: str | None,
                                                             seconds: float) -> None:
    assert cache_seconds(header) == seconds


async def test_8_2_the_set_is_refreshed_when_its_max_age_ends(
        client: httpx.AsyncClient, jwks: JwksServer) -> None:
    clock = Clock()
    jwks.cache_control = "max-age=600"
    keys = adapter(client, jwks, clock)
    await keys.signing_key("k-one")
    clock.now += 599
    await keys.signing_key("k-one")
    assert jwks.requests == 1
    clock.now += 2
    await keys.signing_key("k-one")
    assert jwks.requests == 2


@pytest.mark.parametrize("behaviour", ["500", "404", "redirect", "html", "huge"])
async def test_8_2_a_failing_or_hostile_answer_is_503_and_keeps_the_keys_held(
        client: httpx.AsyncClient, jwks: JwksServer, behaviour: Any) -> None:
    clock = Clock()
    keys = adapter(client, jwks, clock)
    held = await keys.signing_key("k-one")
    jwks.behave(behaviour)
    clock.now += 61
    with pytest.raises(Unavailable) as refused:
        await keys.signing_key("k-new")
    assert refused.value.retry_after > 0
    assert await keys.signing_key("k-one") is held  # still fresh: never replaced
    # A flood during the outage makes no flood of fetches (5 s back-off).
    before = jwks.requests
    for _ in range(10):
        with pytest.raises((Unavailable, Unauthorized)):
            await keys.signing_key("k-new")
    assert jwks.requests == before


async def test_8_2_a_redirect_is_never_followed(client: httpx.AsyncClient,
                                                jwks: JwksServer) -> None:
    jwks.behave("redirect")
    with pytest.raises(Unavailable):
        await adapter(client, jwks).signing_key("k-one")
    assert jwks.requests == 1  # the Location (port 9) was never asked


async def test_8_2_a_hanging_key_server_is_503_within_the_deadline(
        client: httpx.AsyncClient, jwks: JwksServer) -> None:
    jwks.behave("hang")
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(Unavailable):
        await adapter(client, jwks, timeout=0.3).signing_key("k-one")
    assert loop.time() - started < 2.0


async def test_4_3_a_badly_shaped_kid_is_refused_without_a_fetch(
        client: httpx.AsyncClient, jwks: JwksServer) -> None:
    with pytest.raises(Unauthorized):
        await adapter(client, jwks).signing_key("../etc")
    assert jwks.requests == 0


def test_8_2_only_public_rsa_signing_keys_of_2048_bits_are_taken() -> None:
    good = ForgeSigner("good").jwk()
    private = {**good, "kid": "private", "d": "AQAB"}
    wrong_use = {**good, "kid": "enc", "use": "enc"}
    wrong_alg = {**good, "kid": "ps", "alg": "PS256"}
    bad_kid = {**good, "kid": "../x"}
    ec_key = {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA"}
    small = {**good, "kid": "small", "n": "AQAB"}
    body = {"keys": [good, private, wrong_use, wrong_alg, bad_kid, ec_key, small, "junk"]}
    import json
    assert list(parse_jwks(json.dumps(body).encode())) == ["good"]
