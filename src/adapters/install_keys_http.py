"""Atlassian install keys over HTTP (SPEC §4.3): `GET <INSTALL_KEYS_URL>/<kid>`.

- No redirects (a 3xx is a refusal), the whole fetch bounded by the timeout (≤ 3 s),
  bodies read up to `MAX_BODY_BYTES` only.
- 200 must be a PEM RSA public key: it is loaded with `cryptography` before it is trusted.
- Known keys: a bounded LRU cache per kid. Unknown kids (404, other 4xx, non-PEM, 3xx):
  remembered for `negative_ttl` seconds (also bounded), so a flood of one unknown kid
  makes one fetch. Concurrent misses of one kid share one fetch.
- Timeout, connection failure, 5xx, 429: `Unavailable` with `Retry-After`, not remembered.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable

import httpx
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)

from core.connect_auth import KID_PATTERN
from core.errors import Unauthorized, Unavailable

MAX_BODY_BYTES = 16 * 1024  # an RSA-4096 PEM is about 800 bytes
RETRY_AFTER_SECONDS = 5
UNKNOWN_KEY = "the token's signing key is unknown"


class _UnknownKey(Exception):
    """The key server answered, definitively, that there is no usable key for this kid."""


class HttpInstallKeys:
    def __init__(
        self,
        client: httpx.AsyncClient,
        base_url: str,
        *,
        timeout_seconds: float,
        cache_size: int = 256,
        positive_ttl: float = 3600.0,
        negative_size: int = 4096,
        negative_ttl: float = 300.0,
        max_concurrent_fetches: int = 4,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout_seconds
        self._cache_size = cache_size
        self._positive_ttl = positive_ttl
        self._negative_size = negative_size
        self._negative_ttl = negative_ttl
        self._monotonic = monotonic
        self._known: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._unknown: OrderedDict[str, float] = OrderedDict()
        self._in_flight: dict[str, asyncio.Future[str]] = {}
        self._fetch_slots = asyncio.Semaphore(max_concurrent_fetches)

    async def public_key(self, kid: str) -> str:
        if not KID_PATTERN.fullmatch(kid):  # the core checked it; never build a URL without
            raise Unauthorized("the token has no valid key id")
        now = self._monotonic()
        cached = self._known.get(kid)
        if cached is not None and cached[0] > now:
            self._known.move_to_end(kid)
            return cached[1]
        until = self._unknown.get(kid)
        if until is not None and until > now:
            raise Unauthorized(UNKNOWN_KEY)
        pending = self._in_flight.get(kid)
        if pending is None:
            pending = asyncio.ensure_future(self._fetch_and_remember(kid))
            self._in_flight[kid] = pending
            pending.add_done_callback(lambda done: self._settled(kid, done))
        # shield: one caller going away must not cancel the fetch the others wait on.
        return await asyncio.shield(pending)

    def _settled(self, kid: str, done: asyncio.Future[str]) -> None:
        self._in_flight.pop(kid, None)
        if not done.cancelled():
            done.exception()  # retrieved: every waiter may have gone away

    async def _fetch_and_remember(self, kid: str) -> str:
        try:
            async with self._fetch_slots:
                pem = await self._fetch(kid)
        except _UnknownKey:
            self._remember_unknown(kid)
            raise Unauthorized(UNKNOWN_KEY) from None
        self._known[kid] = (self._monotonic() + self._positive_ttl, pem)
        self._known.move_to_end(kid)
        while len(self._known) > self._cache_size:
            self._known.popitem(last=False)
        return pem

    def _remember_unknown(self, kid: str) -> None:
        self._unknown[kid] = self._monotonic() + self._negative_ttl
        self._unknown.move_to_end(kid)
        while len(self._unknown) > self._negative_size:
            self._unknown.popitem(last=False)

    async def _fetch(self, kid: str) -> str:
        url = f"{self._base_url}/{kid}"
        try:
            async with asyncio.timeout(self._timeout):
                async with self._client.stream("GET", url, follow_redirects=False) as response:
                    status = response.status_code
                    if status != 200:
                        body = b""
                    else:
                        body = await _read_limited(response)
        except (TimeoutError, httpx.TimeoutException):
            raise Unavailable(
                "the install key service did not answer in time", retry_after=RETRY_AFTER_SECONDS
            ) from None
        except httpx.HTTPError:
            raise Unavailable(
                "the install key service cannot be reached", retry_after=RETRY_AFTER_SECONDS
            ) from None
        if status >= 500 or status == 429:
            raise Unavailable(
                "the install key service is unavailable", retry_after=RETRY_AFTER_SECONDS
            )
        if status != 200:
            raise _UnknownKey()  # 404, other 4xx, and redirects (never followed)
        return _rsa_public_pem(body)


async def _read_limited(response: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _UnknownKey()
        chunks.append(chunk)
    return b"".join(chunks)


def _rsa_public_pem(body: bytes) -> str:
    try:
        key = load_pem_public_key(body)
    except (ValueError, TypeError):
        raise _UnknownKey() from None
    if not isinstance(key, RSAPublicKey):
        raise _UnknownKey()
    # Re-serialised: only the key itself is kept, never text around it.
    return key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode("ascii")
