"""One contract suite for every InstallKeys (SPEC §4.3): the fake and the httpx adapter
against a real key server on loopback; then the httpx adapter's own caching rules."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Protocol

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from adapters.memory.install_keys import MemoryInstallKeys
from adapters.outbound.install_keys import HttpInstallKeys
from core.model.errors import Unauthorized, Unavailable
from ports.install_keys import InstallKeys
from tests.support.connect_tokens import signing_key
from tests.support.key_server import KeyServer, running_key_server
from tests.support.process import free_port

# Long enough that a loaded CI machine (2 cores) answers in time; short of the key server's
# 5 s hang, so a hang is still cut at the deadline.
TIMEOUT = 2.0


class KeySource(Protocol):
    """What a contract test arranges: a key, an unknown kid, an outage."""

    keys: InstallKeys

    def serve(self, kid: str, pem: str) -> None: ...
    def make_unavailable(self, kid: str) -> None: ...


class MemorySource:
    def __init__(self) -> None:
        self.fake = MemoryInstallKeys()
        self.keys: InstallKeys = self.fake

    def serve(self, kid: str, pem: str) -> None:
        self.fake.add(kid, pem)

    def make_unavailable(self, kid: str) -> None:
        self.fake.unavailable.add(kid)


class HttpSource:
    def __init__(self, server: KeyServer, client: httpx.AsyncClient) -> None:
        self.server = server
        self.keys: InstallKeys = HttpInstallKeys(client, server.url, timeout_seconds=TIMEOUT)

    def serve(self, kid: str, pem: str) -> None:
        self.server.serve(kid, pem)

    def make_unavailable(self, kid: str) -> None:
        self.server.behave(kid, "500")


@pytest.fixture
def key_server() -> Iterator[KeyServer]:
    with running_key_server() as server:
        yield server


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False) as client:
        yield client


@pytest.fixture(params=["memory", "http"])
def source(
    request: pytest.FixtureRequest, key_server: KeyServer, client: httpx.AsyncClient
) -> KeySource:
    if request.param == "memory":
        return MemorySource()
    return HttpSource(key_server, client)


def same_key(pem_a: str, pem_b: str) -> bool:
    load = serialization.load_pem_public_key
    return load(pem_a.encode()).public_numbers() == load(pem_b.encode()).public_numbers()  # type: ignore[union-attr]


async def test_a_known_kid_gives_its_pem_public_key(source: KeySource) -> None:
    source.serve("kid-1", signing_key().public_pem)
    assert same_key(await source.keys.public_key("kid-1"), signing_key().public_pem)


async def test_an_unknown_kid_is_unauthorized(source: KeySource) -> None:
    with pytest.raises(Unauthorized):
        await source.keys.public_key("no-such-kid")


async def test_an_outage_is_unavailable_with_a_retry_after(source: KeySource) -> None:
    source.make_unavailable("kid-2")
    with pytest.raises(Unavailable) as caught:
        await source.keys.public_key("kid-2")
    assert caught.value.retry_after > 0


async def test_keys_are_told_apart_by_kid(source: KeySource) -> None:
    source.serve("kid-a", signing_key("a").public_pem)
    source.serve("kid-b", signing_key("b").public_pem)
    assert same_key(await source.keys.public_key("kid-b"), signing_key("b").public_pem)
    assert same_key(await source.keys.public_key("kid-a"), signing_key("a").public_pem)


# -- the httpx adapter's own rules (§4.3) ----------------------------------------------------


class Ticker:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def http_keys(server: KeyServer, client: httpx.AsyncClient, **options: object) -> HttpInstallKeys:
    return HttpInstallKeys(client, server.url, timeout_seconds=TIMEOUT, **options)  # type: ignore[arg-type]


async def test_a_key_is_fetched_once_and_cached(
    key_server: KeyServer, client: httpx.AsyncClient
) -> None:
    key_server.serve("kid-1", signing_key().public_pem)
    keys = http_keys(key_server, client)
    for _ in range(5):
        await keys.public_key("kid-1")
    assert key_server.fetches("kid-1") == 1


async def test_the_positive_cache_is_bounded_lru(
    key_server: KeyServer, client: httpx.AsyncClient
) -> None:
    for kid in ("k1", "k2", "k3"):
        key_server.serve(kid, signing_key().public_pem)
    keys = http_keys(key_server, client, cache_size=2)
    await keys.public_key("k1")
    await keys.public_key("k2")
    await keys.public_key("k1")  # k1 is now the most recent
    await keys.public_key("k3")  # evicts k2
    await keys.public_key("k1")
    await keys.public_key("k2")
    assert (key_server.fetches("k1"), key_server.fetches("k2")) == (1, 2)


@pytest.mark.parametrize("behaviour", ["404", "html", "redirect"])
async def test_definitive_refusals_are_401_and_remembered_for_a_while(
    key_server: KeyServer, client: httpx.AsyncClient, behaviour: str
) -> None:
    key_server.behave("kid-x", behaviour)  # type: ignore[arg-type]
    ticker = Ticker()
    keys = http_keys(key_server, client, negative_ttl=300.0, monotonic=ticker)
    for _ in range(10):
        with pytest.raises(Unauthorized):
            await keys.public_key("kid-x")
    assert key_server.fetches("kid-x") == 1
    assert key_server.total_requests == 1  # a redirect is never followed
    ticker.now += 301
    with pytest.raises(Unauthorized):
        await keys.public_key("kid-x")
    assert key_server.fetches("kid-x") == 2


async def test_a_flood_of_one_unknown_kid_makes_one_fetch(
    key_server: KeyServer, client: httpx.AsyncClient
) -> None:
    keys = http_keys(key_server, client)
    results = await asyncio.gather(
        *(keys.public_key("flood") for _ in range(30)), return_exceptions=True
    )
    assert all(isinstance(r, Unauthorized) for r in results)
    assert key_server.fetches("flood") == 1


@pytest.mark.parametrize("behaviour", ["500", "hang"])
async def test_outages_are_503_and_not_remembered(
    key_server: KeyServer, client: httpx.AsyncClient, behaviour: str
) -> None:
    key_server.behave("kid-o", behaviour)  # type: ignore[arg-type]
    keys = http_keys(key_server, client)
    for _ in range(2):
        with pytest.raises(Unavailable) as caught:
            await keys.public_key("kid-o")
        assert caught.value.retry_after > 0
    assert key_server.fetches("kid-o") == 2
    key_server.serve("kid-o", signing_key().public_pem)  # back again: served at once
    assert same_key(await keys.public_key("kid-o"), signing_key().public_pem)


async def test_a_connection_failure_is_503(client: httpx.AsyncClient) -> None:
    keys = HttpInstallKeys(client, f"http://127.0.0.1:{free_port()}/keys", timeout_seconds=TIMEOUT)
    with pytest.raises(Unavailable):
        await keys.public_key("kid-1")


async def test_a_hang_is_cut_at_the_timeout(
    key_server: KeyServer, client: httpx.AsyncClient
) -> None:
    key_server.behave("slow", "hang")
    keys = http_keys(key_server, client)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(Unavailable):
        await keys.public_key("slow")
    assert loop.time() - started < key_server.hang_seconds  # not waited out


async def test_a_public_key_that_is_not_rsa_is_refused(
    key_server: KeyServer, client: httpx.AsyncClient
) -> None:
    ec_pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    key_server.serve("ec", ec_pem)
    key_server.serve("private", signing_key().private_pem)
    key_server.serve("huge", signing_key().public_pem + "\n" * 20_000)
    keys = http_keys(key_server, client)
    for kid in ("ec", "private", "huge"):
        with pytest.raises(Unauthorized):
            await keys.public_key(kid)


async def test_a_malformed_kid_never_leaves_the_process(
    key_server: KeyServer, client: httpx.AsyncClient
) -> None:
    keys = http_keys(key_server, client)
    for kid in ("..", "../x", "@evil.example/k", "a\r\nb", "k" * 200):
        with pytest.raises(Unauthorized):
            await keys.public_key(kid)
    assert key_server.total_requests == 0
