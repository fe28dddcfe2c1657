"""Search tokens (S1, §A): random bearer tokens of one org, stored only as SHA-256 hashes.

A token is `secrets.token_urlsafe(32)` (256 random bits) behind a recognisable prefix. With
that much entropy a plain SHA-256 is an adequate hash: no dictionary or brute force can
reach a preimage, so a slow password hash would only cost every search request time.
Stores compare hashes with `hmac.compare_digest`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

TOKEN_PREFIX = "sjst_"  # makes a leaked token recognisable to secret scanners
TOKEN_BYTES = 32


def new_search_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def hash_search_token(token: str) -> str:
    """Hex SHA-256 of the token's UTF-8 bytes (surrogates replaced: never raises)."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def matches_any(token: str, hashes: list[str]) -> bool:
    """Constant-time: every stored hash is compared, whichever matches."""
    candidate = hash_search_token(token).encode("ascii")
    found = False
    for stored in hashes:
        found |= hmac.compare_digest(candidate, stored.encode("ascii"))
    return found
