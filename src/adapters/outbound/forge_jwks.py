"""The Forge Invocation Token keys over HTTP (SPEC §8.2, fetch rules of §4.3):
`GET <SENTRY_JIRA_FORGE_JWKS_URL>`, a JSON Web Key Set.

- Fetched on first use; kept as long as its `Cache-Control: max-age` says, clamped to
  5 minutes – 24 hours (no header, `no-cache`, `no-store`: 5 minutes).
- A `kid` the fresh set lacks triggers at most one refetch per 60 s (Atlassian rotates
  keys: the new one appears in the set before tokens use it); otherwise 401, no egress.
- No redirects, one deadline of at most 3 s, the body read up to `MAX_BODY_BYTES`.
- Timeout, connection failure, 5xx, 429, a redirect or any other non-200, and a set that
  holds no usable key: `Unavailable` (503 with `Retry-After`); the keys held stay as they
  were (a broken or hostile answer never replaces them), and for `RETRY_AFTER_SECONDS` no
  new fetch is made (a flood of calls during an outage is no flood of fetches).
- Only RSA public keys of at least 2048 bits, `use` absent or `sig`, `alg` absent or
  `RS256`, a §4.3-shaped `kid`, no private parts. Concurrent misses share one fetch.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from typing import Any, Final

import httpx
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt.algorithms import RSAAlgorithm
from jwt.exceptions import InvalidKeyError

from adapters.outbound.calls import AnswerTooLarge, OutboundError, OutboundTimeout, exchange
from core.connect.tokens import KID_PATTERN
from core.model.errors import Unauthorized, Unavailable

MAX_BODY_BYTES: Final = 64 * 1024
MAX_KEYS: Final = 64
MIN_RSA_BITS: Final = 2048
MIN_TTL_SECONDS: Final = 300.0
MAX_TTL_SECONDS: Final = 86_400.0
UNKNOWN_KID_REFETCH_SECONDS: Final = 60.0
RETRY_AFTER_SECONDS: Final = 5
UNKNOWN_KEY: Final = "the token's signing key is unknown"
_MAX_AGE: Final = re.compile(r"(?:^|[,\s])max-age\s*=\s*\"?(\d{1,10})\"?", re.IGNORECASE)


def cache_seconds(cache_control: str | None) -> float:
    """How long a set is kept: its `max-age`, clamped to 5 min – 24 h."""
    if not cache_control:
        return MIN_TTL_SECONDS
    lowered = cache_control.lower()
    if "no-store" in lowered or "no-cache" in lowered:
        return MIN_TTL_SECONDS
    match = _MAX_AGE.search(cache_control)
    if match is None:
        return MIN_TTL_SECONDS
    return min(MAX_TTL_SECONDS, max(MIN_TTL_SECONDS, float(match.group(1))))


class _Unusable(Exception):
    """The answer is no key set we may use (its keys are not taken)."""


def parse_jwks(body: bytes) -> dict[str, RSAPublicKey]:
    """The usable RSA signing keys of a JWKS, by kid; `_Unusable` when there are none."""
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _Unusable() from None
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list) or len(entries) > MAX_KEYS:
        raise _Unusable()
    keys: dict[str, RSAPublicKey] = {}
    for entry in entries:
        key = _signing_key(entry)
        if key is not None:
            keys[entry["kid"]] = key
    if not keys:
        raise _Unusable()
    return keys


def _signing_key(entry: Any) -> RSAPublicKey | None:
    if not isinstance(entry, dict) or entry.get("kty") != "RSA" or "d" in entry:
        return None
    kid = entry.get("kid")
    if not isinstance(kid, str) or not KID_PATTERN.fullmatch(kid):
        return None
    if entry.get("use", "sig") != "sig" or entry.get("alg", "RS256") != "RS256":
        return None
    try:
        key = RSAAlgorithm.from_jwk(json.dumps(entry))
    except (InvalidKeyError, ValueError, TypeError, KeyError):
        return None
    if not isinstance(key, RSAPublicKey) or key.key_size < MIN_RSA_BITS:
        return None
    return key


class HttpForgeJwks:
    """`ports.forge.ForgeKeys` over an httpx client built by `forge_jwks_client`."""

    def __init__(self, client: httpx.AsyncClient, url: str, *, timeout_seconds: float,
                 monotonic: Callable[[], float] = time.monotonic,
                 observe: Callable[[str], None] | None = None) -> None:
        self._client = client
        self._observe = observe  # §3 metrics: each fetch's status class or failure
        self._url = url
        self._timeout = timeout_seconds
        self._monotonic = monotonic
        self._keys: dict[str, RSAPublicKey] = {}
        self._fresh_until = float("-inf")
        self._last_fetch = float("-inf")
        self._failed_until = float("-inf")
        self._in_flight: asyncio.Future[None] | None = None
        self.fetches_started = 0  # fetches that reached the key server (tests, metrics)

    async def signing_key(self, kid: str) -> RSAPublicKey:
        if not KID_PATTERN.fullmatch(kid):  # the core checked it; never trust a caller
            raise Unauthorized("the token has no valid key id")
        now = self._monotonic()
        if now < self._fresh_until:
            key = self._keys.get(kid)
            if key is not None:
                return key  # the hot path: one dict lookup
            if now - self._last_fetch < UNKNOWN_KID_REFETCH_SECONDS:
                raise Unauthorized(UNKNOWN_KEY)
        if now < self._failed_until:
            raise Unavailable("the Forge key set cannot be fetched now",
                              retry_after=RETRY_AFTER_SECONDS)
        await self._refresh()
        key = self._keys.get(kid)
        if key is None:
            raise Unauthorized(UNKNOWN_KEY)
        return key

    async def _refresh(self) -> None:
        pending = self._in_flight
        if pending is None:
            pending = asyncio.ensure_future(self._fetch())
            self._in_flight = pending
            pending.add_done_callback(self._settled)
        # shield: one caller going away must not cancel the fetch the others wait on.
        await asyncio.shield(pending)

    def _settled(self, done: asyncio.Future[None]) -> None:
        self._in_flight = None
        if not done.cancelled():
            done.exception()  # retrieved: every waiter may have gone away

    async def _fetch(self) -> None:
        self.fetches_started += 1
        self._last_fetch = self._monotonic()
        try:
            keys, ttl = await self._download()
        except Unavailable:
            self._failed_until = self._monotonic() + RETRY_AFTER_SECONDS
            raise
        self._keys = keys
        self._fresh_until = self._monotonic() + ttl

    async def _download(self) -> tuple[dict[str, RSAPublicKey], float]:
        request = self._client.build_request("GET", self._url)
        unavailable = Unavailable("the Forge key set cannot be fetched now",
                                  retry_after=RETRY_AFTER_SECONDS)
        try:
            async with asyncio.timeout(self._timeout):
                answer = await exchange(self._client, request, deadline_seconds=self._timeout,
                                        max_bytes=MAX_BODY_BYTES,
                                        read_body=lambda status: status == 200,
                                        observe=self._observe)
        except (AnswerTooLarge, OutboundTimeout, OutboundError, TimeoutError):
            raise unavailable from None
        if answer.status != 200:
            raise unavailable  # 5xx, 429, a redirect (never followed), 404: no key set
        try:
            keys = parse_jwks(answer.body)
        except _Unusable:
            raise unavailable from None
        return keys, cache_seconds(answer.headers.get("Cache-Control"))


def forge_jwks_client(timeout_seconds: float) -> httpx.AsyncClient:
    """§8.2/§4.3: no redirects, no proxy from the environment, a small pool."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_seconds),
        follow_redirects=False,
        trust_env=False,
        limits=httpx.Limits(max_connections=2, max_keepalive_connections=1),
        headers={"accept": "application/json"},
    )
