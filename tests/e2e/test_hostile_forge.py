"""Hostile callers of the Forge routes (SPEC §8.2, §4.3 fetch rules, §3 logs) against a real
`sentry-jira serve`: forged, crossed, replayed and oversized tokens are 401 with nothing
stored; the key set is never taken from the token (`jku`/`jwk` ignored) and a flood of
unknown kids makes at most one fetch a minute; no system token → search 503 Retry-After.
Everything on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.builders import ADMIN_TOKEN
from tests.support.engines import Storage
from tests.support.fake_jira import FakeJira, FakeJiraSite
from tests.support.forge import (
    APP_ID,
    ForgeSigner,
    JwksServer,
    mint_fit,
    mint_system_token,
    unsigned_segment,
)
from tests.support.process import running_server
from tests.support.sync_e2e import admin, sync_env

pytestmark = pytest.mark.e2e

LIFECYCLE = "lifecycle-endpoint"


@attrs.define(repr=False)
class World:
    url: str
    log: Path
    jwks: JwksServer
    jira: FakeJira
    site: FakeJiraSite
    fits: list[str] = attrs.Factory(list)

    def post(self, token: str, route: str = "lifecycle", **headers: str) -> httpx.Response:
        self.fits.append(token)
        return httpx.post(f"{self.url}/extensions/jira/forge/{route}/", content=b"{}",
                          headers={"content-type": "application/json",
                                   "authorization": f"Bearer {token}", **headers}, timeout=15)

    def fit(self, signer: ForgeSigner | None = None, **options: Any) -> str:
        return mint_fit(signer or self.jwks.signer, module_key=options.pop("module_key", LIFECYCLE),
                        api_base_url=options.pop("api", self.site.base_url), **options)

    def sites(self) -> list[dict[str, Any]]:
        listed = admin(self.url, "GET", "/api/tenants")
        assert listed.status_code == 200
        return list(listed.json())


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, module_storage: Storage) -> Iterator[World]:
    """The module's server on SQLite, then on a fresh PostgreSQL database (§9): the spent FIT
    ids and the sites a refused FIT must not create live in either."""
    tmp = tmp_path_factory.mktemp("forge-hostile")
    with JwksServer(ForgeSigner("hostile-key")) as jwks, FakeJira("sentry-jira.forge") as jira:
        site = jira.add_forge_site("forge-site")
        env = sync_env(tmp, forge_app_id=APP_ID, forge_jwks_url=jwks.url,
                       forge_api_hosts="http://127.0.0.1:*", jira_hosts="https://*.atlassian.net")
        env.update(module_storage.env(tmp, "db.sqlite"))
        log = tmp / "serve.log"
        with running_server(env, log=log) as (url, _):
            yield World(url, log, jwks, jira, site)


def refused(answer: httpx.Response) -> None:
    assert answer.status_code == 401, answer.text
    assert set(answer.json()) == {"detail"}


def test_8_2_tokens_for_another_app_or_environment_store_nothing(world: World) -> None:
    other = "ari:cloud:ecosystem::app/11111111-2222-4333-8444-555555555555"
    refused(world.post(world.fit(overrides={"aud": other, "app.id": other})))
    refused(world.post(world.fit(environment="DEVELOPMENT")))
    refused(world.post(world.fit(environment="STAGING")))
    assert world.sites() == []


def test_8_2_the_key_is_never_taken_from_the_token(world: World) -> None:
    """JWKS poisoning through the token: `jku`, `x5u` and an embedded `jwk` are ignored."""
    attacker = ForgeSigner("attacker-key")
    embedded = world.fit(attacker, headers={"jwk": attacker.jwk(),
                                            "jku": "http://127.0.0.1:9/jwks.json"})
    refused(world.post(embedded))
    same_kid = ForgeSigner(world.jwks.signer.kid)
    same_kid.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    refused(world.post(world.fit(same_kid)))
    assert world.sites() == []


def test_8_2_hs256_signed_with_the_published_public_key_is_refused(world: World) -> None:
    claims = jwt.decode(world.fit(), options={"verify_signature": False})
    head = unsigned_segment({"alg": "HS256", "typ": "JWT", "kid": world.jwks.signer.kid})
    body = unsigned_segment(claims)
    mac = hmac.new(world.jwks.signer.public_pem, f"{head}.{body}".encode(),
                   hashlib.sha256).digest()
    refused(world.post(f"{head}.{body}." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()))
    assert world.sites() == []


def test_8_2_a_flood_of_unknown_kids_makes_at_most_one_fetch(world: World) -> None:
    before = world.jwks.requests
    for _ in range(30):
        refused(world.post(world.fit(ForgeSigner(f"unknown-{uuid.uuid4().hex[:8]}"))))
    assert world.jwks.requests - before <= 1
    assert world.sites() == []


def test_8_2_a_captured_token_replayed_on_its_route_or_another_is_refused(world: World) -> None:
    token = world.fit(module_key="keepalive-endpoint")
    assert world.post(token, "keepalive").status_code == 204
    refused(world.post(token, "keepalive"))
    refused(world.post(token, "lifecycle"))
    refused(world.post(token, "uninstall"))
    [site] = world.sites()
    assert site["status"] == "installed"  # the replay on `uninstall` changed nothing


def test_8_2_odd_authorization_headers_are_refused(world: World) -> None:
    token = world.fit()
    for value in (f"JWT {token}", f"bearer  {token} {token}", "Bearer " + "a" * 9000,
                  f"Bearer {token}x"):
        answer = httpx.post(f"{world.url}/extensions/jira/forge/lifecycle/", content=b"{}",
                            headers={"content-type": "application/json",
                                     "authorization": value}, timeout=15)
        assert answer.status_code in (401, 431)
    assert len(world.sites()) <= 1


def test_8_2_no_system_token_yet_search_is_503_with_retry_after(world: World) -> None:
    second = "ari:cloud:ecosystem::installation/99999999-8888-4777-8666-555555555555"
    assert world.post(world.fit(overrides={"app.installationId": second})).status_code == 204
    site = next(s for s in world.sites() if s["installation_id"] == second)
    bound = admin(world.url, "PUT", f"/api/tenants/{site['id']}/orgs/acme-hostile",
                  {"sentry_url": "http://127.0.0.1:9", "sentry_token": "sntrys_x" * 3})
    assert bound.status_code == 200, bound.text
    before = len(world.jira.requests)
    answer = httpx.get(f"{world.url}/extensions/jira/search/acme-hostile/{site['id']}/",
                       params={"field": "project", "query": "app"}, timeout=15,
                       headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert answer.status_code == 503 and int(answer.headers["retry-after"]) > 0
    assert len(world.jira.requests) == before  # nothing sent without a token
    # An ignored system token (claims more than 4 hours) does not help either.
    assert world.post(world.fit(overrides={"app.installationId": second}),
                      **{"x-forge-oauth-system": mint_system_token(5 * 3600)}).status_code == 204
    again = httpx.get(f"{world.url}/extensions/jira/search/acme-hostile/{site['id']}/",
                      params={"field": "project", "query": "app"}, timeout=15,
                      headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert again.status_code == 503


def test_3_no_token_reaches_the_log(world: World) -> None:
    text = world.log.read_text(encoding="utf-8", errors="replace")
    assert "forge_refused" in text or "refused" in text
    for token in world.fits:
        assert token not in text
        assert token.split(".")[2] not in text
    assert json.dumps(world.jwks.signer.jwk()["n"])[1:-1] not in text


def test_3_8_2_a_crossed_fit_is_one_forge_refused_line_naming_the_route(world: World) -> None:
    """#14: a FIT minted for the keep-alive trigger, sent to `uninstall` (a key of another
    route): 401, and the server writes a `forge_refused` line — route template, method,
    client, the reason — that holds no part of the token. (Refusal lines are rate-limited:
    after the floods of this module's other tests, a line may wait for the next second.)"""
    lines: list[str] = []
    for _ in range(6):
        token = world.fit(module_key="keepalive-trigger")
        refused(world.post(token, route="uninstall"))
        time.sleep(1.1)
        text = world.log.read_text(encoding="utf-8", errors="replace")
        lines = [line for line in text.splitlines() if "forge_refused" in line
                 and "/extensions/jira/forge/uninstall" in line]
        if lines:
            break
    assert lines, "no forge_refused line for the crossed token"
    assert "POST" in lines[-1] and "app.module.key" in lines[-1]
    for token in world.fits:
        assert token.split(".")[1] not in lines[-1] and token.split(".")[2] not in lines[-1]
    assert world.sites() == [] or all(s["status"] != "uninstalled" for s in world.sites())
