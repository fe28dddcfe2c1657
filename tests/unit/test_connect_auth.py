"""§4.2 / §4.3 token rules, pure: token source, header checks, claims, qsh, audience, W1."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
from tests.support.builders import a_settings
from tests.support.connect_tokens import (
    INSTALLED,
    hs256_token,
    lifecycle_claims,
    raw_hs256,
    rs256_token,
    signing_key,
    tenant_claims,
    unsigned_token,
)

from adapters.memory.clock import FixedClock
from adapters.memory.tenants import MemoryTenantStore
from core.connect.qsh import query_string_hash
from core.connect.tokens import (
    ConnectRequest,
    check_audience,
    check_claims,
    extract_token,
    parse_token,
    read_token,
    verify_signature,
    verify_tenant_token,
)
from core.model.errors import Unauthorized
from core.model.tenant import Installation

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SETTINGS = a_settings().app
BASE = SETTINGS.base_url
SECRET = "tenant-shared-secret-0123456789-abcdefghijklmnop"
WEBHOOK = "/extensions/jira/issue-updated/"


def a_request(token: str | None, *, path: str = INSTALLED, query: str = "") -> ConnectRequest:
    return ConnectRequest(
        method="POST",
        raw_path=path,
        raw_query=query,
        authorization=None if token is None else f"JWT {token}",
    )


def good_lifecycle_token(**overrides: Any) -> str:
    claims = lifecycle_claims(iss="client-1", aud=BASE, now=NOW)
    claims.update(overrides)
    return rs256_token({k: v for k, v in claims.items() if v is not None})


# -- token source -----------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["JWT", "jwt", "Jwt"])
def test_token_comes_from_the_authorization_header_scheme_case_insensitive(scheme: str) -> None:
    assert extract_token(f"{scheme} aaa.bbb.ccc", "") == "aaa.bbb.ccc"


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "JWT",
        "JWT   ",
        "Bearer aaa.bbb.ccc",
        "Basic dXNlcjpwYXNz",
        "aaa.bbb.ccc",
        "JWT aaa.bbb.ccc, JWT ddd.eee.fff",
        "JWT aaa.bbb.ccc,ddd.eee.fff",
        "JWT aaa.bbb.ccc ddd.eee.fff",
        "JWT aaa.bbb",
        "JWT aaa.bbb.ccc.ddd",
        "JWT aaa.bbb.",
        "JWT aa+a.bbb.ccc",
        "JWT aaa.bbb.ccc=",
        "JWT " + "a" * 9000 + ".b.c",
    ],
)
def test_token_shapes_other_than_one_jwt_are_refused(authorization: str | None) -> None:
    with pytest.raises(Unauthorized):
        extract_token(authorization, "")


@pytest.mark.parametrize("query", ["jwt=aaa.bbb.ccc", "a=1&jwt=", "jwt", "jw%74=x", "b=2&jw%74"])
def test_a_jwt_query_parameter_is_refused_even_with_a_header(query: str) -> None:
    with pytest.raises(Unauthorized, match="query string"):
        extract_token("JWT aaa.bbb.ccc", query)


def test_other_query_parameters_are_fine() -> None:
    assert extract_token("JWT aaa.bbb.ccc", "JWT=x&jwtx=1&a=jwt") == "aaa.bbb.ccc"


# -- header checks (before any fetch) ------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "none", "kid": "kid-1"},
        {"alg": "None", "kid": "kid-1"},
        {"alg": "HS256", "kid": "kid-1"},
        {"alg": "RS512", "kid": "kid-1"},
        {"alg": "PS256", "kid": "kid-1"},
        {"alg": ["RS256"], "kid": "kid-1"},
        {"kid": "kid-1"},
    ],
)
def test_an_rs256_route_refuses_every_other_alg(header: dict[str, Any]) -> None:
    token = unsigned_token(lifecycle_claims(iss="c", aud=BASE, now=NOW), header) + "AAAA"
    with pytest.raises(Unauthorized, match="RS256"):
        parse_token(token, "RS256")


def test_an_hs256_route_refuses_rs256() -> None:
    with pytest.raises(Unauthorized, match="HS256"):
        parse_token(good_lifecycle_token(), "HS256")


@pytest.mark.parametrize("crit", [["exp"], ["b64"], [], "x"])
def test_a_crit_header_is_refused(crit: Any) -> None:
    token = rs256_token(lifecycle_claims(iss="c", aud=BASE, now=NOW), headers={"crit": crit})
    with pytest.raises(Unauthorized, match="critical"):
        parse_token(token, "RS256")


@pytest.mark.parametrize(
    "kid",
    [
        None,
        "",
        ".",
        "..",
        "../x",
        "a/b",
        "@evil.example/k",
        "kid\r\nX-Evil: 1",
        "k" * 129,
        "k" * 10_000,
        "kid 1",
        "kid%2f..",
        "ключ",
        7,
        ["kid-1"],
    ],
)
def test_kid_must_have_the_connect_shape(kid: Any) -> None:
    claims = lifecycle_claims(iss="c", aud=BASE, now=NOW)
    header = {"alg": "RS256"} if kid is None else {"alg": "RS256", "kid": kid}
    token = unsigned_token(claims, header) + "AAAA"  # refused before any signature check
    with pytest.raises(Unauthorized, match="key id"):
        parse_token(token, "RS256")


@pytest.mark.parametrize("kid", ["kid-1", "...", "a.b_c-D9", "k" * 128])
def test_well_formed_kids_pass(kid: str) -> None:
    token = rs256_token(lifecycle_claims(iss="c", aud=BASE, now=NOW), kid=kid)
    assert parse_token(token, "RS256").kid == kid


def test_jku_x5u_jwk_and_x5c_are_ignored() -> None:
    headers = {
        "jku": "https://evil.example/jwks",
        "x5u": "https://evil.example/cert",
        "jwk": {"kty": "oct", "k": "AAAA"},
        "x5c": ["MIIB"],
    }
    token = rs256_token(lifecycle_claims(iss="c", aud=BASE, now=NOW), headers=headers)
    parsed = parse_token(token, "RS256")
    verify_signature(parsed, "RS256", signing_key().public_pem)  # the route's key only


def test_a_non_canonical_signature_encoding_is_refused() -> None:
    token = good_lifecycle_token()
    head, payload, signature = token.split(".")
    raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    # 256 bytes → the last base64 character carries 4 unused bits; set one of them.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(signature[-1])
    twin = signature[:-1] + alphabet[last | 1 if last % 2 == 0 else last & ~1]
    assert base64.urlsafe_b64decode(twin + "=" * (-len(twin) % 4)) == raw
    with pytest.raises(Unauthorized, match="malformed"):
        parse_token(f"{head}.{payload}.{twin}", "RS256")


@pytest.mark.parametrize("payload", [b"[]", b"not json", b'"x"', b"\xff\xfe"])
def test_payloads_that_are_not_json_objects_are_malformed(payload: bytes) -> None:
    head = base64.urlsafe_b64encode(json.dumps({"alg": "RS256", "kid": "k"}).encode())
    body = base64.urlsafe_b64encode(payload)
    token = f"{head.decode().rstrip('=')}.{body.decode().rstrip('=')}.AAAA"
    with pytest.raises(Unauthorized, match="malformed"):
        parse_token(token, "RS256")


# -- signature ------------------------------------------------------------------------------


def test_rs256_signature_by_another_key_is_refused() -> None:
    token = rs256_token(lifecycle_claims(iss="c", aud=BASE, now=NOW), key=signing_key("attacker"))
    with pytest.raises(Unauthorized, match="signature"):
        verify_signature(parse_token(token, "RS256"), "RS256", signing_key().public_pem)


def test_algorithm_confusion_hs256_signed_with_the_public_pem_is_refused_on_both_routes() -> None:
    claims = lifecycle_claims(iss="c", aud=BASE, now=NOW)
    forged = raw_hs256(claims, signing_key().public_pem.encode(), {"kid": "kid-1"})
    with pytest.raises(Unauthorized):
        parse_token(forged, "RS256")  # the install route: wrong alg
    parsed = parse_token(forged, "HS256")
    with pytest.raises(Unauthorized):  # a tenant "secret" that is a PEM is never an HMAC key
        verify_signature(parsed, "HS256", signing_key().public_pem)


# -- claims ---------------------------------------------------------------------------------


def claims_of(token: str, request: ConnectRequest, now: datetime = NOW) -> Any:
    return check_claims(parse_token(token, "RS256"), request, now=now, settings=SETTINGS)


@pytest.mark.parametrize("missing", ["iss", "iat", "exp", "qsh"])
def test_required_claims(missing: str) -> None:
    token = good_lifecycle_token(**{missing: None})
    with pytest.raises(Unauthorized, match="required claim"):
        claims_of(token, a_request(token))


@pytest.mark.parametrize(
    ("claim", "value"), [("exp", "soon"), ("iat", True), ("nbf", "x"), ("exp", None)]
)
def test_time_claims_must_be_numbers(claim: str, value: Any) -> None:
    claims = lifecycle_claims(iss="c", aud=BASE, now=NOW)
    claims[claim] = value
    token = rs256_token(claims)
    with pytest.raises(Unauthorized):
        claims_of(token, a_request(token))


def test_expiry_is_checked_with_the_leeway() -> None:
    token = good_lifecycle_token(exp=int(NOW.timestamp()) - 10)
    assert claims_of(token, a_request(token)).issuer == "client-1"  # within 30 s
    late = NOW + timedelta(seconds=20)
    with pytest.raises(Unauthorized, match="expired"):
        claims_of(token, a_request(token), late)


def test_a_future_iat_beyond_the_leeway_is_refused() -> None:
    soon = good_lifecycle_token(iat=int(NOW.timestamp()) + 29)
    assert claims_of(soon, a_request(soon))
    future = good_lifecycle_token(iat=int(NOW.timestamp()) + 31)
    with pytest.raises(Unauthorized, match="future"):
        claims_of(future, a_request(future))


def test_nbf_beyond_the_leeway_is_refused() -> None:
    token = good_lifecycle_token(nbf=int(NOW.timestamp()) + 120)
    with pytest.raises(Unauthorized, match="not valid yet"):
        claims_of(token, a_request(token))


def test_context_qsh_is_refused() -> None:
    token = good_lifecycle_token(qsh="context-qsh")
    with pytest.raises(Unauthorized, match="context-qsh"):
        claims_of(token, a_request(token))


@pytest.mark.parametrize(
    ("method", "path", "query"),
    [
        ("POST", "/extensions/jira/uninstalled/", ""),
        ("GET", INSTALLED, ""),
        ("POST", INSTALLED, "extra=1"),
        ("POST", "/extensions/jira/installed/x", ""),
    ],
)
def test_qsh_binds_method_path_and_query(method: str, path: str, query: str) -> None:
    token = good_lifecycle_token()
    request = attrs.evolve(a_request(token, path=path, query=query), method=method)
    with pytest.raises(Unauthorized, match="qsh"):
        claims_of(token, request)


def test_qsh_ignores_one_trailing_slash_and_is_relative_to_the_base_path() -> None:
    settings = a_settings(base_url="https://app.example.com/jira").app
    claims = lifecycle_claims(iss="c", aud="https://app.example.com/jira", now=NOW)
    token = rs256_token(claims)
    request = a_request(token, path="/jira/extensions/jira/installed")
    parsed = parse_token(token, "RS256")
    assert check_claims(parsed, request, now=NOW, settings=settings).issuer == "c"
    # A token hashed over the full path (base path included) is not for this request.
    full = rs256_token({**claims, "qsh": query_string_hash("POST", request.raw_path, "")})
    with pytest.raises(Unauthorized, match="qsh"):
        check_claims(parse_token(full, "RS256"), request, now=NOW, settings=settings)


@pytest.mark.parametrize("aud", [BASE, BASE + "/", [BASE], [BASE + "/"]])
def test_lifecycle_audience_is_the_base_url(aud: Any) -> None:
    check_audience(parse_token(good_lifecycle_token(aud=aud), "RS256"), SETTINGS)


@pytest.mark.parametrize(
    "aud",
    [
        None,
        "",
        BASE + "//",
        BASE.upper(),
        "https://evil.example",
        [BASE, "https://other.example"],
        [],
        1,
        BASE + "/jira",
    ],
)
def test_lifecycle_audience_other_than_the_base_url_is_refused(aud: Any) -> None:
    with pytest.raises(Unauthorized, match="aud"):
        check_audience(parse_token(good_lifecycle_token(aud=aud), "RS256"), SETTINGS)


# -- W1: verify_tenant_token ---------------------------------------------------------------


async def installed_store(secret: str = SECRET) -> MemoryTenantStore:
    store = MemoryTenantStore()
    await store.upsert_installed(
        Installation(
            client_key="client-1",
            shared_secret=secret,
            base_url="https://acme.atlassian.net",
            display_url=None,
            installed_at=NOW,
        )
    )
    return store


def webhook_request(secret: str, *, iss: str = "client-1", **overrides: Any) -> ConnectRequest:
    claims = tenant_claims(iss=iss, now=NOW, method="POST", path=WEBHOOK)
    claims.update(overrides)
    return a_request(hs256_token(claims, secret), path=WEBHOOK)


async def test_W1_a_tenant_token_verifies_with_the_stored_secret() -> None:
    tenants = await installed_store()
    verified = await verify_tenant_token(
        webhook_request(SECRET, aud="https://anything.example"),  # HS256 aud is ignored
        tenants=tenants,
        settings=SETTINGS,
        clock=FixedClock(NOW),
    )
    assert verified.tenant.client_key == "client-1"
    assert verified.claims.issuer == "client-1"
    assert verified.claims.expires_at == int(NOW.timestamp()) + 180


@pytest.mark.parametrize(
    "request_",
    [
        webhook_request("another-secret-0123456789-abcdefghijklmnopqrstuv"),
        webhook_request(SECRET, iss="unknown-client"),
        webhook_request(SECRET, qsh="context-qsh"),
        webhook_request(SECRET, qsh=query_string_hash("POST", "/other", "")),
        webhook_request(SECRET, exp=int(NOW.timestamp()) - 60),
        a_request(
            rs256_token(tenant_claims(iss="client-1", now=NOW, method="POST", path=WEBHOOK)),
            path=WEBHOOK,
        ),
        a_request(None, path=WEBHOOK),
    ],
    ids=["wrong-secret", "unknown-iss", "context-qsh", "qsh", "expired", "rs256", "no-token"],
)
async def test_W1_tenant_tokens_that_are_not_right_are_refused(request_: ConnectRequest) -> None:
    tenants = await installed_store()
    with pytest.raises(Unauthorized):
        await verify_tenant_token(
            request_, tenants=tenants, settings=SETTINGS, clock=FixedClock(NOW)
        )


async def test_L4_L5_tenant_tokens_follow_rotation_and_uninstall_at_once() -> None:
    tenants = await installed_store()
    rotated = "rotated-shared-secret-0123456789-abcdefghijklmn"
    await tenants.upsert_installed(
        Installation("client-1", rotated, "https://acme.atlassian.net", None, NOW)
    )
    clock = FixedClock(NOW)
    with pytest.raises(Unauthorized):
        await verify_tenant_token(
            webhook_request(SECRET), tenants=tenants, settings=SETTINGS, clock=clock
        )
    await verify_tenant_token(
        webhook_request(rotated), tenants=tenants, settings=SETTINGS, clock=clock
    )
    await tenants.mark_uninstalled("client-1")
    with pytest.raises(Unauthorized, match="installed"):
        await verify_tenant_token(
            webhook_request(rotated), tenants=tenants, settings=SETTINGS, clock=clock
        )


def test_read_token_is_the_whole_401_stage() -> None:
    token = good_lifecycle_token()
    parsed = read_token(a_request(token), "RS256")
    assert parsed.kid == "kid-1"
    assert parsed.unverified_issuer == "client-1"
    assert token not in repr(parsed)
