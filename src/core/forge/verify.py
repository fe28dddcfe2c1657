"""The Forge Invocation Token (FIT) rules of SPEC §8.2: pure, no I/O.

`read_fit` takes the `Authorization` headers and applies every rule that needs no key
(`Bearer`, one compact token, `alg` RS256 exactly, no `crit`, the §4.3 `kid` shape); the
adapter then finds the key by `kid` (the one egress a refused call may cause) and
`verify_fit` checks the signature with that RSA key (PyJWT's RS256 algorithm object, the only
algorithm ever used: an HS256 token "signed" with the public key never gets here) and every
claim. Single use of the `jti` is the store's, in the same step that records the call.

Every failure is `Unauthorized` with a fixed detail: no token or claim value is echoed.
"""

from __future__ import annotations

import base64
import binascii
import functools
import math
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from jwt.algorithms import RSAAlgorithm

from core.connect.tokens import MAX_TOKEN_CHARS, ParsedToken, parse_token
from core.json_body import decode_json_body
from core.model.errors import BadRequest, Unauthorized
from core.model.forge import (
    INSTALLATION_ID,
    SYSTEM_TOKEN_MAX_SECONDS,
    SystemToken,
    VerifiedForgeCall,
)
from core.model.host_patterns import HostPattern, HostRefused, check_origin
from core.model.settings import AppSettings

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

ISSUER: Final = "forge/invocation-token"
# §8.2: a FIT lives at most this long (`exp - iat`).
MAX_FIT_LIFETIME_SECONDS: Final = 300
MAX_JTI_CHARS: Final = 256
MAX_API_BASE_URL_CHARS: Final = 512
_COMPACT: Final = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
# The path of an `apiBaseUrl` (`/ex/jira/<cloudId>`): plain segments, no dot segments.
_SAFE_PATH: Final = re.compile(r"(/(?!\.\.?(?:/|$))[A-Za-z0-9._~-]+)*/?")
_RS256: Final = RSAAlgorithm(RSAAlgorithm.SHA256)
REFUSED: Final = "the Forge invocation token is not valid for this route"


def read_fit(authorization: Sequence[str], *,
             decode: Callable[[bytes], Any] = decode_json_body) -> ParsedToken:
    """§8.2: exactly one `Authorization: Bearer <FIT>`, a compact JWS whose header says
    RS256 and a §4.3-shaped `kid`. Checked before any key is fetched. `decode`: the claims'
    JSON decoder (the adapter injects its faster one; a failure is the same 401)."""
    if len(authorization) != 1:
        raise Unauthorized("exactly one Authorization header with a Forge token is expected")
    scheme, _, token = authorization[0].strip().partition(" ")
    if scheme.lower() != "bearer":
        raise Unauthorized("the Authorization scheme must be Bearer")
    token = token.strip()
    if not token or len(token) > MAX_TOKEN_CHARS or not _COMPACT.fullmatch(token):
        raise Unauthorized("the token is malformed")
    return parse_token(token, "RS256", decode=decode)


def rsa_public_key(key: Any) -> RSAPublicKey:
    """The one key kind a FIT is verified with; anything else (a private key, an HMAC
    secret) is refused."""
    if not hasattr(key, "verify") or not hasattr(key, "public_numbers"):
        raise Unauthorized("the token cannot be verified")
    return key  # type: ignore[no-any-return]


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _object(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise Unauthorized(REFUSED)
    return value


def _text(value: Any, limit: int = 256) -> str:
    if not isinstance(value, str) or not value or len(value) > limit:
        raise Unauthorized(REFUSED)
    return value


def verify_fit(token: ParsedToken, *, key: Any, module_keys: frozenset[str],
               settings: AppSettings, now: datetime) -> VerifiedForgeCall:
    """§8.2: signature, then `iss`, `aud` = app id = `app.id`, time claims with the leeway
    and a life of at most 300 s, one of the route's module keys (`module_keys`: its endpoint's
    and its trigger's, FORGE_ROUTE_MODULE_KEYS), the environment, the installation
    id's shape, `apiBaseUrl` within SENTRY_JIRA_FORGE_API_HOSTS, and a `jti`."""
    app_id = settings.forge_app_id
    if app_id is None:  # the routes are not served then; a verifier never accepts
        raise Unauthorized(REFUSED)
    public = rsa_public_key(key)
    if not _RS256.verify(token.signing_input, public, token.signature):
        raise Unauthorized("the token signature is invalid")
    claims = token.claims
    if claims.get("iss") != ISSUER:
        raise Unauthorized("the token was not issued by Forge (iss)")
    audience = claims.get("aud")
    if isinstance(audience, list) and len(audience) == 1:
        audience = audience[0]
    if audience != app_id:
        raise Unauthorized("the token is not addressed to this app (aud)")
    _check_times(claims, now=now, leeway=settings.jwt_leeway_seconds)
    app = _object(claims.get("app"))
    if app.get("id") != audience:
        raise Unauthorized("the token's app.id is not its audience")
    module = _object(app.get("module"))
    module_key = module.get("key")
    if not isinstance(module_key, str) or module_key not in module_keys:
        raise Unauthorized("the token was minted for another endpoint (app.module.key)")
    environment = _object(app.get("environment"))
    if environment.get("type") != settings.forge_environment:
        raise Unauthorized("the token was minted for another environment")
    installation_id = app.get("installationId")
    if not isinstance(installation_id, str) or not INSTALLATION_ID.fullmatch(installation_id):
        raise Unauthorized("the token's installation id is malformed")
    api_base_url = _api_base_url(app.get("apiBaseUrl"), settings)
    jti = _text(claims.get("jti"), MAX_JTI_CHARS)
    return VerifiedForgeCall(
        installation_id=installation_id,
        api_base_url=api_base_url,
        module_key=module_key,
        environment=settings.forge_environment,
        jti=jti,
        expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
    )


def _check_times(claims: Mapping[str, Any], *, now: datetime, leeway: int) -> None:
    issued_at: Any = claims.get("iat")
    expires_at: Any = claims.get("exp")
    not_before: Any = claims.get("nbf")
    if not (_number(issued_at) and _number(expires_at)) or (
        not_before is not None and not _number(not_before)
    ):
        raise Unauthorized("the token's time claims are missing or not numbers")
    if expires_at - issued_at > MAX_FIT_LIFETIME_SECONDS or expires_at < issued_at:
        raise Unauthorized("the token lives too long")
    moment = now.timestamp()
    if expires_at + leeway <= moment:
        raise Unauthorized("the token has expired")
    if issued_at > moment + leeway:
        raise Unauthorized("the token is issued in the future")
    if not_before is not None and not_before > moment + leeway:
        raise Unauthorized("the token is not valid yet")


def _api_base_url(value: Any, settings: AppSettings) -> str:
    """§8.2: https (or a scheme a pattern names) on a host SENTRY_JIRA_FORGE_API_HOSTS
    allows; a plain path, no query, fragment or user info. Stored as the site's base URL."""
    url = _text(value, MAX_API_BASE_URL_CHARS)
    allowed = allowed_api_base_url(url, settings.forge_api_hosts)
    if allowed is None:
        raise Unauthorized("the token's apiBaseUrl is not an allowed host")
    return allowed


@functools.lru_cache(maxsize=256)
def allowed_api_base_url(url: str, patterns: tuple[HostPattern, ...]) -> str | None:
    """The normalised `apiBaseUrl`, or None when the patterns do not allow it. Pure, so
    remembered: a site's every call carries the same one (a bounded cache of answers)."""
    try:
        origin = check_origin(url, patterns)
    except HostRefused:
        return None
    if not _SAFE_PATH.fullmatch(origin.path):
        return None
    return f"{origin}{origin.path.rstrip('/')}"


# -- the app system token (`x-forge-oauth-system`) ---------------------------------------


def read_system_token(values: Sequence[str], *, now: datetime, leeway: int) -> SystemToken | None:
    """§8.2: the header's token with its `exp` (read, nothing else: Jira judges the rest);
    None — ignored, never an error — when absent, repeated, not a JWT, expired, or claiming
    to live longer than 4 hours (plus the leeway) from now."""
    if len(values) != 1:
        return None
    token = values[0].strip()
    expires = system_token_expiry(token)
    if expires is None:
        return None
    moment = now.timestamp()
    if expires <= moment or expires > moment + SYSTEM_TOKEN_MAX_SECONDS + leeway:
        return None
    return SystemToken(token=token, expires_at=datetime.fromtimestamp(int(expires), UTC))


@functools.lru_cache(maxsize=64)
def system_token_expiry(token: str) -> float | None:
    """The `exp` of a JWT-shaped token, unverified; None when it has none. Pure, so
    remembered: Forge sends a site's same token with every call for hours."""
    if not token or len(token) > MAX_TOKEN_CHARS or not _COMPACT.fullmatch(token):
        return None
    payload = token.split(".")[1]
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        claims = decode_json_body(raw)
    except (binascii.Error, ValueError, BadRequest):
        return None
    expires: Any = claims.get("exp") if isinstance(claims, dict) else None
    return float(expires) if _number(expires) else None
