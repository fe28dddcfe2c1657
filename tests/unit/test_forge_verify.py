"""§8.2 Forge Invocation Token rules, the pure verifier: each rule refused alone.

The keys are real RSA keys and the tokens are minted as Atlassian documents them
(tests/support/forge.py); a test breaks exactly one claim or header and expects 401
(`Unauthorized`). Storage and egress are the routes' business: tests/http/test_forge_routes.py
shows every refusal there stores nothing and fetches nothing but the key set.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from tests.support.forge import (
    APP_ID,
    INSTALLATION_ID,
    ForgeSigner,
    mint_fit,
    mint_system_token,
    unsigned_segment,
)

from core.forge.endpoints import FORGE_ENDPOINT_KEYS, FORGE_MODULE_KEYS, FORGE_ROUTE_MODULE_KEYS
from core.forge.verify import read_fit, read_system_token, verify_fit
from core.model.errors import Unauthorized
from core.model.host_patterns import parse_host_patterns
from core.model.settings import AppSettings

NOW = datetime(2026, 12, 5, 3, 0, 0, tzinfo=UTC)
API = "https://api.atlassian.com/ex/jira/0f2c7e4a-0000-4000-8000-00000000c10d"
MODULE = FORGE_ENDPOINT_KEYS["issue-updated"]
ROUTE_KEYS = FORGE_ROUTE_MODULE_KEYS["issue-updated"]
SETTINGS = AppSettings(
    base_url="https://sentry-jira.example.com", app_key="app",
    forge_app_id=APP_ID, forge_environment="PRODUCTION",
    forge_api_hosts=parse_host_patterns("https://api.atlassian.com"), jwt_leeway_seconds=30)
SIGNER = ForgeSigner("forge-unit-key")


def token(**options: Any) -> str:
    options.setdefault("now", NOW.timestamp())
    return mint_fit(SIGNER, module_key=options.pop("module_key", MODULE),
                    api_base_url=options.pop("api_base_url", API), **options)


def verify(raw: str, *, key: Any = None, module_keys: frozenset[str] = ROUTE_KEYS,
           settings: AppSettings = SETTINGS, now: datetime = NOW) -> Any:
    parsed = read_fit([f"Bearer {raw}"])
    return verify_fit(parsed, key=key or SIGNER.key.public_key(), module_keys=module_keys,
                      settings=settings, now=now)


def test_8_2_a_documented_fit_is_accepted_and_names_the_site() -> None:
    call = verify(token())
    assert call.installation_id == INSTALLATION_ID
    assert call.api_base_url == API
    assert call.module_key == MODULE
    assert call.expires_at == NOW + timedelta(seconds=60)
    assert call.jti


# -- header rules (before any key fetch) ---------------------------------------------------


@pytest.mark.parametrize("authorization", [
    [], ["JWT x.y.z"], ["Bearer"], ["Bearer a.b"], ["Bearer a.b.c", "Bearer a.b.c"],
    ["Bearer a.b.c d.e.f"], ["Basic dXNlcjpwYXNz"],
])
def test_8_2_only_one_bearer_compact_token_is_read(authorization: list[str]) -> None:
    with pytest.raises(Unauthorized):
        read_fit(authorization)


def test_8_2_wrong_alg_is_refused_before_any_key_is_needed() -> None:
    raw = jwt.encode({"iss": "forge/invocation-token"}, SIGNER.key, algorithm="RS384",
                     headers={"kid": SIGNER.kid})
    with pytest.raises(Unauthorized, match="RS256"):
        read_fit([f"Bearer {raw}"])


def test_8_2_hs256_signed_with_the_public_key_is_refused() -> None:
    """The classic confusion: an HS256 token whose HMAC key is the RS256 public key (PEM)."""
    claims = jwt.decode(token(), options={"verify_signature": False})
    head = unsigned_segment({"alg": "HS256", "typ": "JWT", "kid": SIGNER.kid})
    body = unsigned_segment(claims)
    mac = hmac.new(SIGNER.public_pem, f"{head}.{body}".encode(), hashlib.sha256).digest()
    forged = f"{head}.{body}." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    with pytest.raises(Unauthorized):
        verify(forged)


def test_8_2_alg_none_is_refused() -> None:
    claims = jwt.decode(token(), options={"verify_signature": False})
    forged = unsigned_segment({"alg": "none", "kid": SIGNER.kid}) + "." + \
        unsigned_segment(claims) + ".AAAA"
    with pytest.raises(Unauthorized):
        read_fit([f"Bearer {forged}"])


@pytest.mark.parametrize("kid", ["..", "a/b", "x" * 129, "", "é"])
def test_8_2_a_kid_not_shaped_as_4_3_is_refused(kid: str) -> None:
    raw = token(headers={"kid": kid})
    with pytest.raises(Unauthorized, match="key id"):
        read_fit([f"Bearer {raw}"])


def test_8_2_crit_header_is_refused() -> None:
    raw = token(headers={"crit": ["exp"]})
    with pytest.raises(Unauthorized, match="critical"):
        read_fit([f"Bearer {raw}"])


# -- signature -----------------------------------------------------------------------------


def test_8_2_a_token_signed_by_another_key_is_refused() -> None:
    other = ForgeSigner("forge-unit-key")  # same kid, another key
    other.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raw = mint_fit(other, module_key=MODULE, api_base_url=API, now=NOW.timestamp())
    with pytest.raises(Unauthorized, match="signature"):
        verify(raw)


def test_8_2_a_private_key_or_secret_is_never_a_verification_key() -> None:
    with pytest.raises(Unauthorized):
        verify(token(), key="shared-secret")


def test_8_2_a_tampered_claim_breaks_the_signature() -> None:
    head, body, signature = token().split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    claims["app"]["installationId"] = INSTALLATION_ID[:-1] + "0"
    tampered = f"{head}.{unsigned_segment(claims)}.{signature}"
    with pytest.raises(Unauthorized, match="signature"):
        verify(tampered)


# -- claims, each broken alone --------------------------------------------------------------

OTHER_APP = "ari:cloud:ecosystem::app/00000000-0000-4000-8000-000000000000"


@pytest.mark.parametrize(("overrides", "drop", "reason"), [
    ({"iss": "forge/other-token"}, (), "iss"),
    ({}, ("iss",), "iss"),
    ({"aud": OTHER_APP}, (), "aud"),
    ({"aud": [APP_ID, OTHER_APP]}, (), "aud"),
    ({"app.id": OTHER_APP}, (), "app.id"),
    ({}, ("app.id",), "app.id"),
    ({"app.module.key": FORGE_ENDPOINT_KEYS["lifecycle"]}, (), "module"),
    ({}, ("app.module",), ""),
    ({"app.environment.type": "DEVELOPMENT"}, (), "environment"),
    ({"app.installationId": "ari:cloud:ecosystem::installation/not-a-uuid"}, (), "installation"),
    ({"app.installationId": "ari:cloud:jira::site/2f4e6a8c-1b3d-4f5a-8c7e-9d0b1a2c3e4f"}, (),
     "installation"),
    ({"app.installationId": INSTALLATION_ID.upper()}, (), "installation"),
    ({"app.apiBaseUrl": "https://evil.example.com/ex/jira/x"}, (), "apiBaseUrl"),
    ({"app.apiBaseUrl": "http://api.atlassian.com/ex/jira/x"}, (), "apiBaseUrl"),
    ({"app.apiBaseUrl": "https://user@api.atlassian.com/ex/jira/x"}, (), "apiBaseUrl"),
    ({"app.apiBaseUrl": "https://api.atlassian.com/ex/jira/x?q=1"}, (), "apiBaseUrl"),
    ({"app.apiBaseUrl": "https://api.atlassian.com/ex/../admin"}, (), "apiBaseUrl"),
    ({"app.apiBaseUrl": "https://127.0.0.1/ex/jira/x"}, (), "apiBaseUrl"),
    ({"app.apiBaseUrl": 42}, (), ""),
    ({}, ("app.apiBaseUrl",), ""),
    ({}, ("jti",), ""),
    ({"jti": ""}, (), ""),
    ({"jti": 7}, (), ""),
    ({}, ("app",), ""),
    ({"app": "not-an-object"}, (), ""),
])
def test_8_2_each_claim_rule_refuses_alone(overrides: dict[str, Any], drop: tuple[str, ...],
                                           reason: str) -> None:
    with pytest.raises(Unauthorized, match=reason.replace(".", r"\.") or None):
        verify(token(overrides=overrides, drop=drop))


def test_8_2_expired_is_refused_past_the_leeway_only() -> None:
    raw = token(now=NOW.timestamp() - 90, lifetime=60)  # expired 30 s ago = the leeway
    with pytest.raises(Unauthorized, match="expired"):
        verify(raw)
    verify(token(now=NOW.timestamp() - 89, lifetime=60))  # 29 s past exp: within the leeway


def test_8_2_a_token_living_longer_than_300_seconds_is_refused() -> None:
    with pytest.raises(Unauthorized, match="too long"):
        verify(token(lifetime=301))
    verify(token(lifetime=300))


def test_8_2_issued_in_the_future_or_not_yet_valid_is_refused() -> None:
    with pytest.raises(Unauthorized, match="future"):
        verify(token(now=NOW.timestamp() + 31))
    with pytest.raises(Unauthorized, match="not valid yet"):
        verify(token(overrides={"nbf": int(NOW.timestamp()) + 31}))


@pytest.mark.parametrize("claim", ["iat", "exp"])
def test_8_2_missing_or_non_numeric_time_claims_are_refused(claim: str) -> None:
    with pytest.raises(Unauthorized):
        verify(token(drop=(claim,)))
    with pytest.raises(Unauthorized):
        verify(token(overrides={claim: "soon"}))


@pytest.mark.parametrize("route", sorted(FORGE_ROUTE_MODULE_KEYS))
def test_8_2_a_route_accepts_its_endpoint_key_and_its_trigger_key(route: str) -> None:
    """§8.2 app.module.key: Forge may name the endpoint or the invoking module; a route
    accepts exactly its set FORGE_ROUTE_MODULE_KEYS[route] = {endpoint key, trigger key}."""
    accepted = FORGE_ROUTE_MODULE_KEYS[route]
    assert accepted == {FORGE_ENDPOINT_KEYS[route], FORGE_MODULE_KEYS[route]}
    for key in accepted:
        call = verify(token(module_key=key), module_keys=accepted)
        assert call.module_key == key  # the key the token carried, not a guess


@pytest.mark.parametrize("route", sorted(FORGE_ROUTE_MODULE_KEYS))
def test_8_2_a_route_refuses_every_key_of_another_route(route: str) -> None:
    """§8.2: a FIT minted for one route (either of its keys) is no key to another route."""
    accepted = FORGE_ROUTE_MODULE_KEYS[route]
    others = set().union(*FORGE_ROUTE_MODULE_KEYS.values()) - accepted
    assert len(others) == 2 * (len(FORGE_ROUTE_MODULE_KEYS) - 1)  # disjoint sets
    for other in others:
        with pytest.raises(Unauthorized, match="module"):
            verify(token(module_key=other), module_keys=accepted)


@pytest.mark.parametrize("key", [
    "unknown-endpoint", "", "issue-updated", "ISSUE-UPDATED-ENDPOINT", "issue-updated-endpoint ",
    "connect-lifecycle",
])
def test_8_2_an_unknown_module_key_is_refused(key: str) -> None:
    with pytest.raises(Unauthorized, match="module"):
        verify(token(module_key=key))


@pytest.mark.parametrize("value", [None, 7, ["issue-updated-endpoint"],
                                   {"key": "issue-updated-endpoint"}])
def test_8_2_a_module_key_that_is_no_string_is_refused(value: Any) -> None:
    with pytest.raises(Unauthorized):
        verify(token(overrides={"app.module.key": value}))


def test_8_2_no_route_accepts_anything_with_an_empty_key_set() -> None:
    with pytest.raises(Unauthorized, match="module"):
        verify(token(), module_keys=frozenset())


def test_8_2_no_app_id_configured_accepts_nothing() -> None:
    from attrs import evolve
    with pytest.raises(Unauthorized):
        verify(token(), settings=evolve(SETTINGS, forge_app_id=None))


def test_8_2_api_base_url_may_use_a_scheme_a_pattern_names() -> None:
    from attrs import evolve
    loopback = evolve(SETTINGS, forge_api_hosts=parse_host_patterns("http://127.0.0.1:*"))
    raw = token(api_base_url="http://127.0.0.1:8443/ex/jira/abc/")
    assert verify(raw, settings=loopback).api_base_url == "http://127.0.0.1:8443/ex/jira/abc"


# -- the app system token (x-forge-oauth-system) -------------------------------------------


def test_8_2_a_system_token_is_read_by_its_exp_only() -> None:
    raw = mint_system_token(3600, now=NOW.timestamp())
    offered = read_system_token([raw], now=NOW, leeway=30)
    assert offered is not None and offered.token == raw
    assert offered.expires_at == NOW + timedelta(hours=1)


@pytest.mark.parametrize("values", [
    [], ["not-a-jwt"], ["a.b.c"],
    [mint_system_token(-1, now=NOW.timestamp())],                 # expired
    [mint_system_token(4 * 3600 + 31, now=NOW.timestamp())],      # claims more than 4 h
    [mint_system_token(60, now=NOW.timestamp())] * 2,             # two headers
])
def test_8_2_a_system_token_that_is_odd_or_claims_too_much_is_ignored(values: list[str]) -> None:
    assert read_system_token(values, now=NOW, leeway=30) is None


def test_8_2_a_system_token_of_exactly_four_hours_plus_leeway_is_kept() -> None:
    raw = mint_system_token(4 * 3600 + 30, now=NOW.timestamp())
    assert read_system_token([raw], now=NOW, leeway=30) is not None
