"""Atlassian install keys over HTTP (SPEC §4.3): `GET <INSTALL_KEYS_URL>/<kid>`.

- No redirects (a 3xx is a refusal), the whole fetch bounded by the timeout (≤ 3 s),
  bodies read up to `MAX_BODY_BYTES` only.
- 200 must be a PEM RSA public key: it is loaded with `cryptography` before it is trusted.
- Known keys: a bounded LRU cache per kid. Unknown kids (404, other 4xx, non-PEM, 3xx):
  remembered for `negative_ttl` seconds (also bounded), so a flood of one unknown kid
  makes one fetch. Concurrent misses of one kid share one fetch.
- Timeout, connection failure, 5xx, 429: `Unavailable` with `Retry-After`, not remembered.
- At most `max_concurrent_fetches` fetches run at once and at most `max_waiting_fetches`
  wait for a slot; the wait is inside the same deadline as the fetch (≤ 3 s). A full queue
  or a deadline passed while waiting answers `Unavailable` (503 with `Retry-After`) at once:
  a flood of junk kids cannot delay a real install past the deadline.
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

from adapters.outbound.calls import (
    AnswerTooLarge,
    OutboundError,
    OutboundTimeout,
    exchange,
)
from core.connect.tokens import KID_PATTERN
from core.model.errors import Unauthorized, Unavailable

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
        max_waiting_fetches: int = 16,
        monotonic: Callable[[], float] = time.monotonic,
        observe: Callable[[str], None] | None = None,
    ) -> None:
        self._client = client
        self._observe = observe  # §3 metrics: each fetch's status class or failure
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
        self._max_waiting = max_waiting_fetches
        self._waiting = 0
        self.fetches_started = 0  # fetches that reached the key server (for tests and metrics)

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
        if self._fetch_slots.locked() and self._waiting >= self._max_waiting:
            raise Unavailable(
                "too many install key fetches are waiting", retry_after=RETRY_AFTER_SECONDS
            )
        try:
            # One deadline for waiting for a slot and for the fetch itself (§4.3: ≤ 3 s).
            async with asyncio.timeout(self._timeout):
                await self._take_slot()
                try:
                    pem = await self._fetch(kid)
                finally:
                    self._fetch_slots.release()
        except _UnknownKey:
            self._remember_unknown(kid)
            raise Unauthorized(UNKNOWN_KEY) from None
        except TimeoutError:
            raise Unavailable(
                "the install key service did not answer in time", retry_after=RETRY_AFTER_SECONDS
            ) from None
        self._known[kid] = (self._monotonic() + self._positive_ttl, pem)
        self._known.move_to_end(kid)
        while len(self._known) > self._cache_size:
            self._known.popitem(last=False)
        return pem

    async def _take_slot(self) -> None:
        self._waiting += 1
        try:
            await self._fetch_slots.acquire()
        finally:
            self._waiting -= 1

    def _remember_unknown(self, kid: str) -> None:
        self._unknown[kid] = self._monotonic() + self._negative_ttl
        self._unknown.move_to_end(kid)
        while len(self._unknown) > self._negative_size:
            self._unknown.popitem(last=False)

    async def _fetch(self, kid: str) -> str:
        self.fetches_started += 1
        request = self._client.build_request("GET", f"{self._base_url}/{kid}")
        try:
            answer = await exchange(
                self._client,
                request,
                deadline_seconds=self._timeout,
                max_bytes=MAX_BODY_BYTES,
                read_body=lambda status: status == 200,
                observe=self._observe,
            )
        except AnswerTooLarge:
            raise _UnknownKey() from None
        except OutboundTimeout:
            raise Unavailable(
                "the install key service did not answer in time", retry_after=RETRY_AFTER_SECONDS
            ) from None
        except OutboundError:
            raise Unavailable(
                "the install key service cannot be reached", retry_after=RETRY_AFTER_SECONDS
            ) from None
        status = answer.status
        if status >= 500 or status == 429:
            raise Unavailable(
                "the install key service is unavailable", retry_after=RETRY_AFTER_SECONDS
            )
        if status != 200:
            raise _UnknownKey()  # 404, other 4xx, and redirects (never followed)
        return _rsa_public_pem(answer.body)


def _rsa_public_pem(body: bytes) -> str:
    try:
        key = load_pem_public_key(body)
    except (ValueError, TypeError):
        raise _UnknownKey() from None
    if not isinstance(key, RSAPublicKey):
        raise _UnknownKey()
    # Re-serialised: only the key itself is kept, never text around it.
    return key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode("ascii")
