"""Mint real Connect tokens for tests: RS256 lifecycle tokens and HS256 tenant tokens."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from functools import lru_cache
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from core.connect.qsh import query_string_hash

INSTALLED = "/extensions/jira/installed/"
UNINSTALLED = "/extensions/jira/uninstalled/"


class SigningKey:
    """An RSA key pair made in the tests; `public_pem` is what the key server serves."""

    def __init__(self) -> None:
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.private_pem = self.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        self.public_pem = (
            self.private.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )


@lru_cache(maxsize=4)
def signing_key(name: str = "default") -> SigningKey:
    """One key pair per name per test session (RSA generation is slow-ish)."""
    return SigningKey()


def lifecycle_claims(
    *,
    iss: str,
    aud: Any,
    now: datetime,
    method: str = "POST",
    path: str = INSTALLED,
    query: str = "",
    base_path: str = "",
    lifetime: int = 180,
) -> dict[str, Any]:
    iat = int(now.timestamp())
    return {
        "iss": iss,
        "aud": aud,
        "iat": iat,
        "exp": iat + lifetime,
        "qsh": query_string_hash(method, path, query, base_path),
        "sub": "557058:f00dfeed",
    }


def rs256_token(
    claims: dict[str, Any],
    *,
    kid: str | None = "kid-1",
    key: SigningKey | None = None,
    headers: dict[str, Any] | None = None,
) -> str:
    extra = {} if kid is None else {"kid": kid}
    extra.update(headers or {})
    return jwt.encode(claims, (key or signing_key()).private_pem, algorithm="RS256", headers=extra)


def hs256_token(
    claims: dict[str, Any], secret: str | bytes, *, headers: dict[str, Any] | None = None
) -> str:
    return raw_hs256(claims, secret if isinstance(secret, bytes) else secret.encode(), headers)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_hs256(claims: dict[str, Any], secret: bytes, headers: dict[str, Any] | None = None) -> str:
    """HS256 signed by hand: PyJWT refuses PEM-looking HMAC keys, an attacker does not."""
    import hashlib
    import hmac

    header = {"alg": "HS256", "typ": "JWT", **(headers or {})}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def unsigned_token(claims: dict[str, Any], header: dict[str, Any]) -> str:
    """A token with any header and an empty or junk signature (alg: none and friends)."""
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}."


def tenant_claims(
    *, iss: str, now: datetime, method: str, path: str, query: str = "", base_path: str = ""
) -> dict[str, Any]:
    iat = int(now.timestamp())
    return {
        "iss": iss,
        "iat": iat,
        "exp": iat + 180,
        "qsh": query_string_hash(method, path, query, base_path),
    }
