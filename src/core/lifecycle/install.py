"""install / uninstall: the signed lifecycle callbacks (L1–L6, SPEC §4.2–4.3, §5 order).

Order of checks (SPEC §5), the first failure answers:
401 token shape, `alg`, `crit`, `kid` → 400 body and L2 → key fetch (401 / 503) →
signature, claims, qsh, `aud`, `iss` = `clientKey` (401) → single use → store.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import attrs

from core.connect.tokens import (
    ConnectRequest,
    ParsedToken,
    check_audience,
    check_claims,
    read_token,
    verify_signature,
)
from core.json_body import json_object
from core.model.errors import BadRequest, Unauthorized
from core.model.forge import INSTALLATION_ID
from core.model.jira_hosts import check_jira_base_url
from core.model.settings import AppSettings
from core.model.tenant import Installation
from core.model.used_tokens import LifecycleResult, Replay, UsedToken
from ports.clock import Clock
from ports.install_keys import InstallKeys
from ports.lifecycle import LifecycleStore

# The HTTP adapter builds this from the raw request (method, raw path, raw query,
# Authorization, raw body bytes).
LifecycleRequest = ConnectRequest

# Atlassian's shared secrets are long random strings; a short one is no HS256 key
# (RFC 7518 §3.2: at least 256 bits), so it is refused rather than stored.
MIN_SECRET_CHARS = 32
MAX_SECRET_CHARS = 1024
MAX_CLIENT_KEY_CHARS = 255
MAX_TEXT_CHARS = 2048
OPTIONAL_TEXT_FIELDS = (
    "displayUrl",
    "productType",
    "description",
    "serverVersion",
    "pluginsVersion",
    "oauthClientId",
)


@attrs.frozen
class InstallBody:
    """L1: the fields of an `installed` body that are used; the rest is ignored."""

    client_key: str
    shared_secret: str = attrs.field(repr=False)
    base_url: str  # normalised by L2
    display_url: str | None
    # §8.2 Connect on Forge: the installation id a later move to Forge events keeps.
    installation_id: str | None = None

    @classmethod
    def parse(cls, raw: bytes, settings: AppSettings) -> InstallBody:
        body = json_object(raw)
        _common_fields(body, settings, event_type="installed")
        for name in OPTIONAL_TEXT_FIELDS:
            value = body.get(name)
            if value is not None and (not isinstance(value, str) or len(value) > MAX_TEXT_CHARS):
                raise BadRequest(f"{name} must be a string")
        secret = body.get("sharedSecret")
        if not isinstance(secret, str):
            raise BadRequest("sharedSecret is required")
        if not MIN_SECRET_CHARS <= len(secret) <= MAX_SECRET_CHARS or not _printable(secret):
            raise BadRequest(
                f"sharedSecret must be {MIN_SECRET_CHARS}-{MAX_SECRET_CHARS} printable "
                "ASCII characters"
            )
        base_url = body.get("baseUrl")
        if not isinstance(base_url, str):
            raise BadRequest("baseUrl is required")
        normalised = check_jira_base_url(base_url, settings.jira_hosts)
        display_url = body.get("displayUrl")
        if display_url is not None:
            _check_display_url(display_url)
        # §8.2: kept only in the documented shape; anything else is ignored like an unknown
        # field (a Connect install without Forge has none).
        installation_id = body.get("installationId")
        if not isinstance(installation_id, str) or not INSTALLATION_ID.fullmatch(installation_id):
            installation_id = None
        return cls(
            client_key=body["clientKey"],
            shared_secret=secret,
            base_url=normalised,
            display_url=display_url,
            installation_id=installation_id,
        )


@attrs.frozen
class UninstallBody:
    """L5: an `uninstalled` body needs `key`, `clientKey` and `eventType` only."""

    client_key: str

    @classmethod
    def parse(cls, raw: bytes, settings: AppSettings) -> UninstallBody:
        body = json_object(raw)
        _common_fields(body, settings, event_type="uninstalled")
        return cls(client_key=body["clientKey"])


def _printable(text: str) -> bool:
    return all("!" <= c <= "~" for c in text)


def _common_fields(body: dict[str, Any], settings: AppSettings, *, event_type: str) -> None:
    if body.get("key") != settings.app_key:
        raise BadRequest("key must be this app's key")
    client_key = body.get("clientKey")
    if not isinstance(client_key, str) or not client_key:
        raise BadRequest("clientKey is required")
    if len(client_key) > MAX_CLIENT_KEY_CHARS or not _printable(client_key):
        raise BadRequest("clientKey is not a valid client key")
    if body.get("eventType") != event_type:
        raise BadRequest(f"eventType must be {event_type}")


def _check_display_url(url: Any) -> None:
    # Stored for links only (L2), so only a plain absolute http(s) URL is kept.
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise BadRequest("displayUrl is not a valid URL") from None
    if (
        not url.isascii()
        # A control character (NUL above all: PostgreSQL text cannot hold it) is no URL
        # (docs/security.md, "Malformed identifiers").
        or not url.isprintable()
        or any(c.isspace() for c in url)
        or parts.scheme.lower() not in ("http", "https")
        or not parts.hostname
        or "@" in parts.netloc
    ):
        raise BadRequest("displayUrl is not a valid URL")


async def _verify_lifecycle_token(
    token: ParsedToken,
    request: LifecycleRequest,
    client_key: str,
    *,
    keys: InstallKeys,
    now: datetime,
    settings: AppSettings,
) -> UsedToken:
    public_key = await keys.public_key(token.kid)  # 401 / 503; kid shape checked already
    verify_signature(token, "RS256", public_key)
    claims = check_claims(token, request, now=now, settings=settings)
    check_audience(token, settings)
    if claims.issuer != client_key:
        raise Unauthorized("the token's issuer does not match clientKey")
    return UsedToken(
        token_hash=token.token_hash,
        body_hash=hashlib.sha256(request.body).hexdigest(),
        forget_after=datetime.fromtimestamp(claims.expires_at, now.tzinfo)
        + timedelta(seconds=settings.jwt_leeway_seconds),
    )


def _refuse_reuse(result: LifecycleResult) -> LifecycleResult:
    if result.replay is Replay.OTHER_BODY:
        raise Unauthorized("this token was already used")
    return result


async def install(
    request: LifecycleRequest,
    *,
    lifecycle: LifecycleStore,
    keys: InstallKeys,
    clock: Clock,
    settings: AppSettings,
) -> LifecycleResult:
    """L1–L4, L6: verify a signed `installed` callback; create or rotate the tenant."""
    token = read_token(request, "RS256")
    body = InstallBody.parse(request.body, settings)
    now = clock.now()
    used = await _verify_lifecycle_token(
        token, request, body.client_key, keys=keys, now=now, settings=settings
    )
    installation = Installation(
        client_key=body.client_key,
        shared_secret=body.shared_secret,
        base_url=body.base_url,
        display_url=body.display_url,
        installed_at=now,
        installation_id=body.installation_id,
    )
    return _refuse_reuse(await lifecycle.record_install(installation, used, now=now))


async def uninstall(
    request: LifecycleRequest,
    *,
    lifecycle: LifecycleStore,
    keys: InstallKeys,
    clock: Clock,
    settings: AppSettings,
) -> LifecycleResult:
    """L5: verify a signed `uninstalled` callback; disable the tenant and erase its secret.

    An unknown but correctly signed clientKey stores nothing (`tenant` None → still 204).
    """
    token = read_token(request, "RS256")
    body = UninstallBody.parse(request.body, settings)
    now = clock.now()
    used = await _verify_lifecycle_token(
        token, request, body.client_key, keys=keys, now=now, settings=settings
    )
    return _refuse_reuse(await lifecycle.record_uninstall(body.client_key, used, now=now))
