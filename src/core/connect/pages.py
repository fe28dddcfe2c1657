"""§10 page authentication (pure): page loads, page POSTs and the action token.

- A page load carries `?jwt=`: HS256 with the site's shared secret, every §4.2 rule except the
  source, and the real qsh of the page request (the `jwt` parameter left out of it, §4.1).
- A page POST carries a context token (`Authorization: JWT`, qsh `context-qsh`, `sub` = the
  user's accountId) **and** the action token the server embedded in the configure page it
  rendered for that user. Any user of a site can get a context token from any page of the app
  (the glance too), so a context token alone never changes anything: the action token proves
  that this user was shown the configure page (which Jira only frames for admins) in the last
  15 minutes.

The action token is `<tenant id>.<expiry>.<b64url(accountId)>.<b64url(mac)>`: an HMAC-SHA256
under a key derived from the site's shared secret (one label, so it is never the key a Connect
token is signed with). A secret rotation (L4) or an uninstall (L5) voids every action token.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from datetime import datetime
from typing import Final, cast
from urllib.parse import unquote_plus

import attrs

from core.connect.tokens import (
    ConnectRequest,
    ParsedToken,
    check_claims,
    extract_token,
    parse_token,
    read_token,
    verify_signature,
)
from core.model.errors import Forbidden, Unauthorized
from core.model.settings import AppSettings
from core.model.tenant import CONNECT, Tenant
from ports.clock import Clock
from ports.tenants import TenantLookup

ACTION_TOKEN_SECONDS: Final = 15 * 60
MAX_ACTION_TOKEN_CHARS: Final = 512
MAX_ACCOUNT_ID_CHARS: Final = 128
_ACTION_KEY_LABEL: Final = b"sentry-jira/page-action-token/v1"
_PAGE_TOKEN_PARAM: Final = "jwt"


@attrs.frozen
class PageUser:
    """A verified page request: the site, and the user (`sub`) when the token names one."""

    tenant: Tenant
    account_id: str | None


# -- page loads (`?jwt=`) ------------------------------------------------------------------


def page_token(raw_query: str) -> str:
    """The one `jwt` query parameter of a page load (none, or two → 401)."""
    found: list[str] = []
    for piece in raw_query.split("&"):
        name, _, value = piece.partition("=")
        if name == _PAGE_TOKEN_PARAM or (
            ("%" in name or "+" in name) and unquote_plus(name) == _PAGE_TOKEN_PARAM
        ):
            found.append(unquote_plus(value))
    if not found:
        raise Unauthorized("the page was not opened from Jira (no jwt parameter)")
    if len(found) > 1:
        raise Unauthorized("exactly one JWT is expected")
    # The same shape checks as a header token (size, compact form, one token).
    return extract_token("JWT " + found[0], "")


async def verify_page_load(
    request: ConnectRequest, *, tenants: TenantLookup, settings: AppSettings, clock: Clock
) -> PageUser:
    """§10: a page load's `?jwt=` token, verified as §4.2 with the real qsh of the request."""
    if request.authorization is not None:
        raise Unauthorized("exactly one JWT is expected")  # a header token and a query token
    token = parse_token(page_token(request.raw_query), "HS256")
    tenant = await _signed_by_site(token, tenants)
    claims = check_claims(token, request, now=clock.now(), settings=settings)
    return PageUser(tenant=tenant, account_id=_account_id(claims.raw.get("sub")))


# -- page POSTs (context token + action token) ----------------------------------------------


async def verify_page_action(
    request: ConnectRequest,
    action_token: str | None,
    *,
    tenants: TenantLookup,
    settings: AppSettings,
    clock: Clock,
) -> PageUser:
    """§10: a page POST. The context token (401 when it fails) and then the action token the
    configure page carried, for this site, this user, not expired (403 when it fails)."""
    token = read_token(request, "HS256")  # the header only: `?jwt=` is refused here
    tenant = await _signed_by_site(token, tenants)
    now = clock.now()
    claims = check_claims(token, request, now=now, settings=settings, context_qsh=True)
    account_id = _account_id(claims.raw.get("sub"))
    if account_id is None:
        raise Unauthorized("the context token names no user (sub)")
    check_action_token(action_token, tenant=tenant, account_id=account_id, now=now)
    return PageUser(tenant=tenant, account_id=account_id)


def mint_action_token(tenant: Tenant, account_id: str, now: datetime) -> str:
    """The action token the configure page carries for this user (15 minutes)."""
    expires = int(now.timestamp()) + ACTION_TOKEN_SECONDS
    body = f"{tenant.id}.{expires}.{_b64(account_id.encode('utf-8'))}"
    return f"{body}.{_b64(_mac(tenant, body))}"


def check_action_token(
    action_token: str | None, *, tenant: Tenant, account_id: str, now: datetime
) -> None:
    """Forbidden unless the token is one this server minted for this site and user, unexpired."""
    if not action_token:
        raise Forbidden("this change needs the configure page's action token; reload the page")
    if not tenant.shared_secret:  # an erased secret (L5) keys no action token: none is valid
        raise Forbidden("the action token is not valid for this site; reload the page")
    parts = action_token.split(".")
    if len(action_token) > MAX_ACTION_TOKEN_CHARS or len(parts) != 4:
        raise Forbidden("the action token is not valid; reload the page")
    site, expires, account, mac = parts
    try:
        presented = _unb64(mac)
        named = _unb64(account).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        raise Forbidden("the action token is not valid; reload the page") from None
    if not hmac.compare_digest(presented, _mac(tenant, f"{site}.{expires}.{account}")):
        raise Forbidden("the action token is not valid for this site; reload the page")
    if site != str(tenant.id) or not hmac.compare_digest(named.encode(), account_id.encode()):
        raise Forbidden("the action token was issued to another user; reload the page")
    if not expires.isdigit() or int(expires) <= now.timestamp():
        raise Forbidden("the action token has expired; reload the page")


# -- helpers ---------------------------------------------------------------------------------


async def _signed_by_site(token: ParsedToken, tenants: TenantLookup) -> Tenant:
    """The installed Connect site named by `iss`, whose secret signed the token (else 401)."""
    tenant = await tenants.by_client_key(token.unverified_issuer)
    if tenant is None or tenant.transport != CONNECT or not tenant.is_installed:
        raise Unauthorized("the token's issuer is not an installed site")
    verify_signature(token, "HS256", cast(str, tenant.shared_secret))  # installed: it has one
    return tenant


def _account_id(sub: object) -> str | None:
    if (
        isinstance(sub, str)
        and 0 < len(sub) <= MAX_ACCOUNT_ID_CHARS
        and sub.isprintable()
        and not any(c.isspace() for c in sub)
    ):
        return sub
    return None


def _mac(tenant: Tenant, body: str) -> bytes:
    if not tenant.shared_secret:  # never a key anyone can compute (callers check it first)
        raise Forbidden("the site has no secret; reload the page")
    secret = tenant.shared_secret.encode("utf-8")
    key = hmac.digest(secret, _ACTION_KEY_LABEL, "sha256")
    return hmac.digest(key, body.encode("utf-8"), "sha256")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not text or not all(c.isalnum() or c in "-_" for c in text) or not text.isascii():
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error:
        raise ValueError("not base64url") from None


__all__ = [
    "ACTION_TOKEN_SECONDS",
    "PageUser",
    "check_action_token",
    "mint_action_token",
    "page_token",
    "verify_page_action",
    "verify_page_load",
]
