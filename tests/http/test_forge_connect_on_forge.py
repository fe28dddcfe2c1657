"""§8.2 Connect on Forge (issue #14): a signed Connect `installed` carrying the installation
id stores it; the first verified Forge call for that id switches the same site to `forge`
(id, clientKey, bindings and links kept, one site, not two), and from then on the site's
Connect calls are 401. Real SQLite and real PostgreSQL (§9: the Connect route's
one-round-trip path must see the switch too), real key servers on loopback."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import pytest
from litestar.testing import AsyncTestClient

from adapters.http.app import create_app
from adapters.wiring import Container, bootstrap
from tests.support.builders import ADMIN_TOKEN, a_settings
from tests.support.connect_tokens import INSTALLED, lifecycle_claims, rs256_token, signing_key
from tests.support.forge import APP_ID, INSTALLATION_ID, ForgeSigner, JwksServer, mint_fit
from tests.support.key_server import KeyServer, running_key_server
from tests.support.paths import fixture_json
from tests.support.webhooks import issue_updated_body, signed_delivery

BASE = "https://sentry-jira.example.com"
ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}
API = "http://127.0.0.1:9/ex/jira/0f2c7e4a-0000-4000-8000-00000000c10d"


@attrs.define
class World:
    container: Container
    client: AsyncTestClient[Any]
    jwks: JwksServer

    async def install(self, **changes: Any) -> Any:
        body = fixture_json("connect-installed-body.json")
        body.update(changes)
        claims = lifecycle_claims(iss=body["clientKey"], aud=BASE, now=datetime.now(UTC))
        token = rs256_token(claims, kid="kid-1")
        return await self.client.post(INSTALLED, content=json.dumps(body), headers={
            "content-type": "application/json", "authorization": f"JWT {token}"})

    async def forge(self, route: str = "keepalive") -> Any:
        token = mint_fit(self.jwks.signer, module_key=f"{route}-endpoint", api_base_url=API)
        return await self.client.post(f"/extensions/jira/forge/{route}/", content=b"{}", headers={
            "content-type": "application/json", "authorization": f"Bearer {token}"})

    async def tenants(self) -> list[dict[str, Any]]:
        return list((await self.client.get("/api/tenants", headers=ADMIN)).json())


@pytest.fixture
def key_server() -> Iterator[KeyServer]:
    with running_key_server() as server:
        server.serve("kid-1", signing_key().public_pem)
        yield server


@pytest.fixture(params=["sqlite", "postgres"])
async def world(request: pytest.FixtureRequest, tmp_path: Path,
                key_server: KeyServer) -> AsyncIterator[World]:
    engine: dict[str, Any] = {}
    if request.param == "postgres":
        engine["database"] = request.getfixturevalue("postgres_url")
    with JwksServer(ForgeSigner("switch-key")) as jwks:
        container = bootstrap(a_settings(
            tmp_path, **engine, install_keys_url=key_server.url, http_timeout_seconds="0.5",
            worker="false", admin_token=ADMIN_TOKEN, forge_app_id=APP_ID,
            forge_jwks_url=jwks.url, forge_api_hosts="http://127.0.0.1:*",
            sentry_hosts="https://sentry.example.com"))
        try:
            async with AsyncTestClient(app=create_app(container)) as client:
                yield World(container, client, jwks)
        finally:
            container.close()


async def test_8_2_connect_on_forge_keeps_one_site_and_then_refuses_connect(
        world: World) -> None:
    assert (await world.install(installationId=INSTALLATION_ID)).status_code == 204
    [connect] = await world.tenants()
    assert connect["transport"] == "connect"
    site_id, client_key = connect["id"], connect["client_key"]
    bound = await world.client.put(f"/api/tenants/{site_id}/orgs/acme", headers=ADMIN, json={
        "sentry_url": "https://sentry.example.com", "sentry_token": "sntrys_" + "x" * 40})
    assert bound.status_code == 200, bound.text
    linked = await world.client.put(f"/api/tenants/{site_id}/orgs/acme/links/APP-123",
                                    headers=ADMIN, json={"sentry_issue_ids": ["4711"]})
    assert linked.status_code == 200

    secret = fixture_json("connect-installed-body.json")["sharedSecret"]
    headers, raw = signed_delivery(client_key, secret, issue_updated_body())
    before = await world.client.post("/extensions/jira/issue-updated/", content=raw,
                                     headers=headers)
    assert before.status_code == 202

    assert (await world.forge()).status_code == 204
    [forge] = await world.tenants()
    assert (forge["id"], forge["transport"], forge["client_key"], forge["installation_id"]) == \
        (site_id, "forge", client_key, INSTALLATION_ID)
    assert forge["orgs"] == ["acme"] and forge["base_url"] == API
    link = await world.client.get(f"/api/tenants/{site_id}/orgs/acme/links/APP-123",
                                  headers=ADMIN)
    assert link.json()["sentry_issue_ids"] == ["4711"]

    headers, raw = signed_delivery(client_key, secret, issue_updated_body(),
                                   delivery_id="delivery-2")
    after = await world.client.post("/extensions/jira/issue-updated/", content=raw,
                                    headers=headers)
    assert after.status_code == 401
    # A Connect re-install does not take the site back (the Forge transport owns it now).
    await world.install(installationId=INSTALLATION_ID)
    [still] = await world.tenants()
    assert still["transport"] == "forge"


async def test_8_2_a_malformed_installation_id_is_ignored_like_an_unknown_field(
        world: World) -> None:
    assert (await world.install(installationId="not-an-ari")).status_code == 204
    assert (await world.forge()).status_code == 204
    sites = await world.tenants()
    assert sorted(s["transport"] for s in sites) == ["connect", "forge"]  # two sites


async def test_8_2_an_installation_id_another_site_holds_is_not_taken(world: World) -> None:
    assert (await world.forge()).status_code == 204  # Forge first: its own site
    assert (await world.install(installationId=INSTALLATION_ID)).status_code == 204
    sites = await world.tenants()
    assert sorted((s["transport"], s.get("installation_id")) for s in sites) == \
        [("connect", None), ("forge", INSTALLATION_ID)]
