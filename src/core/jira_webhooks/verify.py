"""§8.1 inbound: the `X-Hub-Signature` check, the secrets valid at an instant, the delivery id.

Jira signs a webhook with `X-Hub-Signature: sha256=<hex>`, the HMAC-SHA256 of the raw body
under the secret the admin pasted. The check runs on the raw bytes before anything parses
them. Every failure is the same `Unauthorized` with one fixed detail: a caller cannot learn
whether the header was missing, malformed or wrong, and no secret is ever named.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from typing import Final

from core.model.credentials import ROTATION_OVERLAP, WebhookSecrets
from core.model.errors import Unauthorized

# Re-exported: a site's secrets are a model value (core.model.credentials).
__all__ = ["ROTATION_OVERLAP", "WebhookSecrets"]

SIGNATURE_HEADER: Final = "X-Hub-Signature"
SECRET_BYTES: Final = 32  # §8.1: at least 32 random bytes, url-safe
REFUSED: Final = "the webhook signature is missing or does not match"

# One method, 64 hex digits in either case, nothing around them (no whitespace, no list).
_SIGNATURE: Final = re.compile(r"sha256=([0-9A-Fa-f]{64})")


def new_webhook_secret() -> str:
    """§8.1: a fresh secret, 32 random bytes as url-safe base64 (43 characters)."""
    return secrets.token_urlsafe(SECRET_BYTES)


def parse_hub_signature(values: Sequence[str] | str | None) -> bytes:
    """The 32-byte digest a delivery claims. `values` holds every `X-Hub-Signature` header
    received: none, two or more, another method, a wrong length or non-hex is malformed."""
    if isinstance(values, str):
        values = (values,)
    if values is None or len(values) != 1:
        raise Unauthorized(REFUSED)
    match = _SIGNATURE.fullmatch(values[0])
    if match is None:
        raise Unauthorized(REFUSED)
    return bytes.fromhex(match.group(1))


def verify_hub_signature(raw_body: bytes, values: Sequence[str] | str | None,
                         valid_secrets: Sequence[str]) -> None:
    """§8.1: `sha256=<hex>` HMAC-SHA256 of the raw body under any of `valid_secrets`
    (`WebhookSecrets.valid_at`; empty for an unknown site); anything else is `Unauthorized`.

    Every secret is compared, in constant time, whichever matches; an empty secret never
    verifies (anyone could compute that HMAC)."""
    claimed = parse_hub_signature(values)
    matched = False
    for secret in valid_secrets:
        if not secret:
            continue
        expected = hmac.digest(secret.encode("utf-8"), raw_body, hashlib.sha256)
        matched |= hmac.compare_digest(expected, claimed)
    if not matched:
        raise Unauthorized(REFUSED)


def webhook_delivery_id(raw_body: bytes) -> str:
    """§8.1 delivery id: a hash of the raw body, in the shape of W3's own hash. The identifier
    header is not signed, so it never decides: a replayed body stays a duplicate."""
    return "sha256:" + hashlib.sha256(raw_body).hexdigest()[:32]
