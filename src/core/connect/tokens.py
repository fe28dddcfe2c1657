"""Inbound Atlassian Connect token checks (SPEC §4.2, §4.3): pure, no I/O.

The route decides the algorithm; the token header is only compared with it. A token is
parsed once (`parse_token`): strict base64url segments, JSON objects, and the header
checks that must pass before anything is fetched. The signature is then checked by
PyJWT's algorithm object *of the route's one algorithm* (`jwt.algorithms`), never one
picked from the header, and the claims against the injected clock (PyJWT's own claim
checks read the system time).

Every failure is `Unauthorized` with a fixed detail: no token, secret or header value is
ever echoed back.
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import hmac
import math
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Literal, cast
from urllib.parse import unquote_plus

import attrs
from jwt.algorithms import RSAAlgorithm
from jwt.exceptions import InvalidKeyError

from core.connect.qsh import query_string_hash
from core.json_body import decode_json_body
from core.model.errors import BadRequest, Unauthorized
from core.model.settings import AppSettings
from core.model.tenant import CONNECT, Tenant
from ports.clock import Clock
from ports.tenants import TenantLookup

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

Algorithm = Literal["RS256", "HS256"]

# §4.3: checked before any key fetch; "." and ".." would be path segments.
KID_PATTERN: Final = re.compile(r"(?!\.\.?\Z)[A-Za-z0-9._-]{1,128}")
# A compact JWS: three base64url segments. The signature segment may not be empty.
_COMPACT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_WHITESPACE = re.compile(r"\s")
# Far above a real Connect token (~600 bytes RS256); bounds work before any check.
MAX_TOKEN_CHARS: Final = 8192
REQUIRED_CLAIMS: Final = ("iss", "iat", "exp", "qsh")
# §4.2: a token living longer than this (`exp - iat`) is refused on every route.
MAX_TOKEN_LIFETIME_SECONDS: Final = 3600
# §4.2: an `exp` past 9999-12-31T23:59:59Z cannot be a date (and would overflow `datetime`).
LATEST_EXPIRY: Final = 253402300799
CONTEXT_QSH: Final = "context-qsh"

# Jira sends a handful of distinct header segments (`{"alg":"HS256","typ":"JWT"}`): decoding
# each once saves work on the hot path. Headers are not secret; the cache is bounded.
_HEADERS: dict[str, dict[str, Any]] = {}
_HEADER_CACHE_SIZE: Final = 64

_FROM_URLSAFE: Final = bytes.maketrans(b"-_", b"+/")
# A base64url character's 6-bit value, and the low bits a segment's last character leaves
# unused, by the segment's length mod 4 (2 characters → 1 byte: 4 bits; 3 → 2 bytes: 2 bits).
_VALUE: Final = {c: i for i, c in enumerate(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")}
_UNUSED_BITS: Final = (0, 0, 0b1111, 0b11)

# The verifiers of the two route algorithms; chosen by the route, never by the token.
_RS256: Final = RSAAlgorithm(RSAAlgorithm.SHA256)


@attrs.frozen
class ConnectRequest:
    """What the Connect routes need of an HTTP request, as it came over the wire.

    `raw_path` / `raw_query` are the still percent-encoded path and query (no `?`),
    decoded from bytes with UTF-8 `surrogateescape` (`from_wire` does it). `authorization`
    is every `Authorization` header joined with ", " (None when there is none), so two
    headers read as two tokens.
    """

    method: str
    raw_path: str
    raw_query: str
    authorization: str | None = attrs.field(repr=False)
    body: bytes = attrs.field(default=b"", repr=False)

    @classmethod
    def from_wire(
        cls,
        method: str,
        raw_path: bytes,
        raw_query: bytes,
        authorization: list[str] | tuple[str, ...],
        body: bytes = b"",
    ) -> ConnectRequest:
        # Some ASGI clients (httpx's ASGITransport) put the query in `raw_path` too.
        raw_path = raw_path.split(b"?", 1)[0]
        return cls(
            method=method,
            raw_path=raw_path.decode("utf-8", "surrogateescape"),
            raw_query=raw_query.decode("utf-8", "surrogateescape"),
            authorization=", ".join(authorization) if authorization else None,
            body=body,
        )


@attrs.frozen
class ParsedToken:
    """A token split and decoded once; nothing in it is trusted until `verify_signature`."""

    token: str = attrs.field(repr=False)
    header: Mapping[str, Any]
    claims: Mapping[str, Any]
    signing_input: bytes = attrs.field(repr=False)
    signature: bytes = attrs.field(repr=False)

    @property
    def token_hash(self) -> str:
        """sha256 hex of the whole token: its identity for single use (§4.3).

        Computed on demand: only the lifecycle routes need it, not the webhook hot path.
        """
        return hashlib.sha256(self.token.encode("ascii")).hexdigest()

    @property
    def kid(self) -> str:
        return str(self.header.get("kid", ""))

    @property
    def unverified_issuer(self) -> str:
        issuer = self.claims.get("iss")
        if not isinstance(issuer, str) or not issuer:
            raise Unauthorized("the token has no issuer")
        if not issuer.isprintable():  # no clientKey holds a control character (NUL above all)
            raise Unauthorized("the token's issuer is not an installed site")
        return issuer


@attrs.frozen
class Claims:
    """The checked claims of a verified token."""

    issuer: str
    issued_at: int
    expires_at: int
    raw: Mapping[str, Any] = attrs.field(repr=False)


@attrs.frozen
class VerifiedTenantToken:
    """What `verify_tenant_token` answers: the tenant the token is from, and its claims."""

    tenant: Tenant
    claims: Claims


# -- token source (§4.2) -----------------------------------------------------------------


def extract_token(authorization: str | None, raw_query: str) -> str:
    """The one JWT of `Authorization: JWT <token>`; every other shape is refused (401)."""
    if raw_query and _has_jwt_parameter(raw_query):
        raise Unauthorized("a token in the query string is not accepted")
    if authorization is None or not authorization.strip():
        raise Unauthorized("missing Authorization header with a JWT")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "jwt":
        raise Unauthorized("the Authorization scheme must be JWT")
    token = token.strip()
    if len(token) <= MAX_TOKEN_CHARS and _COMPACT.fullmatch(token):
        return token  # the common case, decided by one C-level match
    if "," in token or _WHITESPACE.search(token):
        raise Unauthorized("exactly one JWT is expected")
    if not token:
        raise Unauthorized("missing Authorization header with a JWT")
    if len(token) > MAX_TOKEN_CHARS:
        raise Unauthorized("the token is too large")
    if not _COMPACT.fullmatch(token):
        raise Unauthorized("the token is malformed")
    return token


def _has_jwt_parameter(raw_query: str) -> bool:
    for piece in raw_query.split("&"):
        name = piece.partition("=")[0]
        # Same decoding as the qsh: `jw%74` is `jwt` too.
        if name == "jwt" or (("%" in name or "+" in name) and unquote_plus(name) == "jwt"):
            return True
    return False


# -- parsing and header checks (before any fetch) ----------------------------------------


def _segment(text: str) -> bytes:
    """A base64url segment (no padding) → bytes; only its canonical spelling is accepted,
    else 401. The checks, each in C: ASCII; none of `+`, `/`, `=` (the standard alphabet's
    and the padding, which the translation or the padding below would let through); a strict
    decode (any other character outside the alphabet, or a length of 4n + 1, is an error);
    then the unused low bits of the last character must be zero — otherwise one signature
    would have many spellings and a replay could pass as a new token (§4.3). Exactly what
    the former round trip (decode, encode, compare) accepted, without encoding again
    (tests/unit/test_token_segments.py compares the two on many strings)."""
    try:
        encoded = text.encode("ascii")
        if b"+" in encoded or b"/" in encoded or b"=" in encoded:
            raise ValueError
        raw = binascii.a2b_base64(
            (encoded + b"=" * (-len(encoded) % 4)).translate(_FROM_URLSAFE), strict_mode=True)
    except (binascii.Error, ValueError):
        raise Unauthorized("the token is malformed") from None
    unused = _UNUSED_BITS[len(encoded) % 4]
    if unused and _VALUE[encoded[-1]] & unused:
        raise Unauthorized("the token is malformed")
    return raw


def _json_object(raw: bytes, decode: Callable[[bytes], Any] = decode_json_body) -> dict[str, Any]:
    try:
        value = decode(raw)
    except BadRequest:
        raise Unauthorized("the token is malformed") from None
    if not isinstance(value, dict):
        raise Unauthorized("the token is malformed")
    return value


def parse_token(token: str, algorithm: Algorithm, *,
                decode: Callable[[bytes], Any] = decode_json_body) -> ParsedToken:
    """Decode a token and apply the header rules of a route that takes `algorithm`.

    `alg` must be exactly the route's algorithm, `crit` is refused, `jku`/`x5u`/`jwk`/`x5c`
    are ignored, and for RS256 `kid` must have the §4.3 shape. `decode` reads the claims: an
    adapter may inject a faster JSON decoder that raises `BadRequest` as `decode_json_body`
    does (any failure is then the same 401).
    """
    head, payload, signature = token.split(".")
    header = _HEADERS.get(head)
    if header is None:
        header = _json_object(_segment(head))
        if len(_HEADERS) < _HEADER_CACHE_SIZE:
            _HEADERS[head] = header
    if header.get("alg") != algorithm:
        raise Unauthorized(f"the token must be signed with {algorithm}")
    if "crit" in header:
        raise Unauthorized("critical token header extensions are not supported")
    if algorithm == "RS256":
        kid = header.get("kid")
        if not isinstance(kid, str) or not KID_PATTERN.fullmatch(kid):
            raise Unauthorized("the token has no valid key id")
    claims = _json_object(_segment(payload), decode)
    return ParsedToken(
        token=token,
        header=header,
        claims=claims,
        signing_input=token[: len(head) + 1 + len(payload)].encode("ascii"),
        signature=_segment(signature),
    )


def read_token(request: ConnectRequest, algorithm: Algorithm) -> ParsedToken:
    """Extract and parse the request's token for a route of `algorithm` (the 401 stage)."""
    return parse_token(extract_token(request.authorization, request.raw_query), algorithm)


# -- signature and claims ----------------------------------------------------------------


def verify_signature(token: ParsedToken, algorithm: Algorithm, key: str) -> None:
    """Check the signature with the route's algorithm and `key` (PEM for RS256)."""
    try:
        if algorithm == "HS256":
            # HMAC-SHA256 directly: what PyJWT's HMACAlgorithm does, at a fifth of the cost
            # on the hot path. Like its key preparation, a PEM is never an HMAC key.
            if key.lstrip().startswith("-----BEGIN") or "ssh-rsa" in key[:16]:
                raise Unauthorized("the token cannot be verified")
            expected = hmac.digest(key.encode("utf-8"), token.signing_input, "sha256")
            valid = hmac.compare_digest(expected, token.signature)
        else:
            public = _RS256.prepare_key(key)
            if not hasattr(public, "verify"):  # a private key is never an install key
                raise Unauthorized("the token cannot be verified")
            valid = _RS256.verify(
                token.signing_input, cast("RSAPublicKey", public), token.signature
            )
    except (InvalidKeyError, ValueError, TypeError):
        raise Unauthorized("the token cannot be verified") from None
    if not valid:
        raise Unauthorized("the token signature is invalid")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_claims(
    token: ParsedToken,
    request: ConnectRequest,
    *,
    now: datetime,
    settings: AppSettings,
    context_qsh: bool = False,
) -> Claims:
    """§4.2: required claims, time claims with the leeway, and the qsh of this request.

    `context_qsh`: the §10 page POSTs, whose token is a context token (qsh `context-qsh`,
    and nothing else); every other route refuses `context-qsh`."""
    claims = token.claims
    if any(name not in claims for name in REQUIRED_CLAIMS):
        raise Unauthorized("the token lacks a required claim (iss, iat, exp, qsh)")
    issuer = token.unverified_issuer
    issued_at, expires_at = claims["iat"], claims["exp"]
    not_before = claims.get("nbf")
    if not (_number(issued_at) and _number(expires_at)) or (
        not_before is not None and not _number(not_before)
    ):
        raise Unauthorized("the token's time claims are not numbers")
    if expires_at > LATEST_EXPIRY or expires_at - issued_at > MAX_TOKEN_LIFETIME_SECONDS:
        raise Unauthorized("the token lives too long")
    moment = now.timestamp()
    leeway = settings.jwt_leeway_seconds
    if expires_at + leeway <= moment:
        raise Unauthorized("the token has expired")
    if issued_at > moment + leeway:
        raise Unauthorized("the token is issued in the future")
    if not_before is not None and not_before > moment + leeway:
        raise Unauthorized("the token is not valid yet")
    qsh = claims["qsh"]
    if context_qsh:
        if qsh != CONTEXT_QSH:
            raise Unauthorized("a context token (qsh context-qsh) is expected here")
        return Claims(issuer=issuer, issued_at=int(issued_at), expires_at=int(expires_at),
                      raw=claims)
    if qsh == CONTEXT_QSH:
        raise Unauthorized("a context-qsh token is not accepted here")
    expected = _request_hash(request.method, request.raw_path, request.raw_query,
                             settings.base_path)
    if not isinstance(qsh, str) or not hmac.compare_digest(qsh.encode(), expected.encode()):
        raise Unauthorized("the token was not issued for this request (qsh)")
    return Claims(issuer=issuer, issued_at=int(issued_at), expires_at=int(expires_at), raw=claims)


@functools.lru_cache(maxsize=256)
def _request_hash(method: str, raw_path: str, raw_query: str, base_path: str) -> str:
    """The qsh of a request line. Jira signs the same few routes over and over; the cache is
    reached only by tokens whose signature verified, and bounded."""
    return query_string_hash(method, raw_path, raw_query, base_path)


def check_audience(token: ParsedToken, settings: AppSettings) -> None:
    """§4.3: a lifecycle token's `aud` is this app's base URL (one trailing `/` allowed)."""
    audience = token.claims.get("aud")
    if isinstance(audience, list) and len(audience) == 1:
        audience = audience[0]  # one audience only: a token meant for others is not ours
    base = settings.base_url.rstrip("/")
    if not isinstance(audience, str) or audience not in (base, base + "/"):
        raise Unauthorized("the token is not addressed to this app (aud)")


# -- the HS256 route (issue-updated) -------------------------------------------------------


async def verify_tenant_token(
    request: ConnectRequest, *, tenants: TenantLookup, settings: AppSettings, clock: Clock
) -> VerifiedTenantToken:
    """W1: the HS256 token of a tenant's request, checked with the secret stored *now*.

    Looks the tenant up by the unverified `iss`; unknown or uninstalled → 401. The secret
    comes from the store on every call (no secret cache), so a rotation (L4) or an
    uninstall (L5) takes effect at once in every process sharing the database.
    """
    token = read_token(request, "HS256")
    tenant = await tenants.by_client_key(token.unverified_issuer)
    if tenant is None or tenant.transport != CONNECT or not tenant.is_installed:
        raise Unauthorized("the token's issuer is not an installed site")
    verify_signature(token, "HS256", cast(str, tenant.shared_secret))  # installed: it has one
    return VerifiedTenantToken(
        tenant=tenant, claims=check_claims(token, request, now=clock.now(), settings=settings)
    )
