"""The webhook transport's verifier (§8.0, §8.1): a site id and a signed raw body in, a
`VerifiedSite` or the one `Unauthorized` out.

Unknown, removed, non-integer or other-transport site ids and every signature failure end in
the same `Unauthorized` with the same detail, after the same HMAC work: a caller learns
nothing about which ids exist. Nothing here parses the body.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from typing import Final

from core.jira_webhooks.verify import REFUSED, verify_hub_signature
from core.model.errors import Unauthorized
from core.model.tenant import WEBHOOK, Tenant, VerifiedSite
from ports.clock import Clock
from ports.tenants import TenantLookup

# A site id as a path segment: digits, no sign, no leading zero, within SQLite's integers.
_SITE_ID: Final = re.compile(r"0|[1-9][0-9]{0,18}", re.ASCII)
_MAX_SITE_ID: Final = 2**63 - 1
# Stand-ins that no signature can match (random, never stored, never sent): every request
# costs two HMACs over the body, whether the site is unknown, has one secret or two (§8.1).
_DECOYS: Final = (secrets.token_urlsafe(32), secrets.token_urlsafe(32))


def parse_site_id(segment: str) -> int | None:
    """The integer a path segment names, or None (which the route answers 401, not 400)."""
    if not _SITE_ID.fullmatch(segment):
        return None
    value = int(segment)
    return value if value <= _MAX_SITE_ID else None


def _webhook_site(tenant: Tenant | None) -> Tenant | None:
    if tenant is None or tenant.transport != WEBHOOK or not tenant.is_installed:
        return None
    return tenant


async def verify_webhook_site(
    site_id: str,
    raw_body: bytes,
    signatures: Sequence[str],
    *,
    tenants: TenantLookup,
    clock: Clock,
) -> VerifiedSite:
    """§8.1: `signatures` (every `X-Hub-Signature` header received) must carry the
    HMAC-SHA256 of `raw_body` under a secret of the installed webhook site `site_id` valid
    now (both during a rotation's hour); anything else is `Unauthorized` (401)."""
    number = parse_site_id(site_id)
    site = None if number is None else _webhook_site(await tenants.by_id(number))
    valid = () if site is None or site.webhook_secrets is None \
        else site.webhook_secrets.valid_at(clock.now())
    # Always two secrets: the response time of a 401 does not tell a known site from an
    # unknown one, nor a site in its rotation hour from one out of it.
    padded = (*valid, *_DECOYS)[:2]
    verify_hub_signature(raw_body, signatures, padded)  # raises on every failure
    if site is None:  # unreachable: no secret verifies for a missing site
        raise Unauthorized(REFUSED)
    return VerifiedSite(site)
