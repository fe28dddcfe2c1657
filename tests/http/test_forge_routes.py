"""`POST /extensions/jira/forge/{lifecycle,issue-updated,uninstall,keepalive}/` in process on
real SQLite, with the real JWKS adapter against a key server on loopback (SPEC §8.0, §8.2,
§5 order, W2–W4): every refusal is 401 `{"detail"}` with nothing stored and no egress but the
key-set fetch; a verified call creates the site, keeps its system token, acknowledges the
mapped event once (a retry with a new token is a duplicate)."""

from __future__ import annotations

import base64
import copy
import json
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import psycopg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from prometheus_client.parser import text_string_to_metric_families

from adapters.http.app import create_app
from adapters.postgres.database import PgDatabase
from adapters.postgres.tenants import PgTenantStore
from adapters.wiring import Container, bootstrap
from core.forge.endpoints import FORGE_ENDPOINT_KEYS, FORGE_ROUTE_MODULE_KEYS, FORGE_ROUTE_PATHS
from core.forge_manifest import forge_manifest
from core.model.tenant import Installation
from ports.tenants import TenantStore
from tests.support.builders import ADMIN_TOKEN, a_settings
from tests.support.forge import (
    APP_ID,
    INSTALLATION_ID,
    ForgeSigner,
    JwksServer,
    fit_claims,
    mint_fit,
    mint_system_token,
)
from tests.support.paths import fixture_json

API = "http://127.0.0.1:9/ex/jira/0f2c7e4a-0000-4000-8000-00000000c10d"  # never called here
JSON = {"content-type": "application/json"}
METRICS_TOKEN = "metrics-token-for-forge-tests-0123456789"


def path(route: str) -> str:
    return f"/extensions/jira/forge/{route}/"


@attrs.define
class World:
    container: Container
    client: AsyncTestClient[Litestar]
    jwks: JwksServer
    # The tenant store a test reads directly: the container's on SQLite; on PostgreSQL one on
    # its own pool (a pool belongs to the loop it opened on; the app runs on another).
    tenants: TenantStore

    def fit(self, route: str, **options: Any) -> str:
        return mint_fit(self.jwks.signer, module_key=options.pop(
            "module_key", FORGE_ENDPOINT_KEYS[route]), api_base_url=options.pop("api", API),
            **options)

    async def call(self, route: str, body: Any = None, *, token: str | None = None,
                   system_token: str | None = None, **options: Any) -> Any:
        headers = {**JSON, "authorization": f"Bearer {token or self.fit(route, **options)}"}
        if system_token is not None:
            headers["x-forge-oauth-system"] = system_token
        return await self.client.post(path(route), content=json.dumps(body or {}),
                                      headers=headers)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        if self.container.pg_database is not None:  # §9: the same rows on PostgreSQL
            with psycopg.connect(self.container.pg_database.conninfo) as conn:
                return list(conn.execute(sql.encode()).fetchall())
        assert self.container.database is not None
        return self.container.database.read_sync(lambda db: db.execute(sql).fetchall())

    def execute(self, sql: str, params: list[Any]) -> None:
        """One write from outside the service (`?` placeholders), on either engine."""
        if self.container.pg_database is not None:
            with psycopg.connect(self.container.pg_database.conninfo) as conn:
                conn.execute(sql.replace("?", "%s").encode(), params)
            return
        assert self.container.database is not None
        self.container.database.write_sync(lambda db: db.execute(sql, params))

    def nothing_stored(self) -> None:
        assert self.rows("SELECT id FROM tenants") == []
        assert self.rows("SELECT id FROM deliveries") == []
        assert self.rows("SELECT jti_hash FROM used_forge_tokens") == []


@pytest.fixture
def jwks() -> Iterator[JwksServer]:
    with JwksServer(ForgeSigner("route-key")) as server:
        yield server


@pytest.fixture(params=["sqlite", "postgres"])
async def world(request: pytest.FixtureRequest, tmp_path: Path,
                jwks: JwksServer) -> AsyncIterator[World]:
    engine: dict[str, Any] = {}
    if request.param == "postgres":  # §9: the Forge routes on PostgreSQL too
        engine["database"] = request.getfixturevalue("postgres_url")
    container = bootstrap(a_settings(
        tmp_path, **engine, worker="false", admin_token=ADMIN_TOKEN, forge_app_id=APP_ID,
        metrics_token=METRICS_TOKEN,
        forge_jwks_url=jwks.url, forge_api_hosts="http://127.0.0.1:*"))
    own = None if container.pg_database is None else PgDatabase(
        container.pg_database.conninfo, container.pg_database.box)
    try:
        async with AsyncTestClient(app=create_app(container)) as client:
            yield World(container, client, jwks,
                        container.tenants if own is None else PgTenantStore(own))
    finally:
        if own is not None:
            await own.aclose()
        container.close()


def event(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(fixture_json("forge-issue-updated-event.json"))
    body.update(changes)
    return body


# -- served only with an app id ----------------------------------------------------------


async def test_8_2_forge_routes_are_404_while_no_app_id_is_set(tmp_path: Path) -> None:
    container = bootstrap(a_settings(tmp_path, worker="false"))
    try:
        async with AsyncTestClient(app=create_app(container)) as client:
            for route in FORGE_ENDPOINT_KEYS:
                answer = await client.post(path(route), content=b"{}", headers=JSON)
                assert answer.status_code == 404
    finally:
        container.close()


# -- §5 order: transport checks first, then the verifier --------------------------------


async def test_8_0_transport_checks_answer_before_the_token_is_read(world: World) -> None:
    answer = await world.client.get(path("lifecycle"))
    assert answer.status_code == 405
    answer = await world.client.post(path("lifecycle"), content=b"{}",
                                     headers={"content-type": "text/plain",
                                              "authorization": "Bearer x"})
    assert answer.status_code == 415
    answer = await world.client.post(path("lifecycle"), content=b"{}",
                                     headers={**JSON, "x-big": "a" * 17000})
    assert answer.status_code == 431
    assert world.jwks.requests == 0
    world.nothing_stored()


# -- refusals: 401, nothing stored, no egress but the key set --------------------------------

OTHER_APP = "ari:cloud:ecosystem::app/00000000-0000-4000-8000-000000000000"


@pytest.mark.parametrize(("route", "options"), [
    ("lifecycle", {"module_key": FORGE_ENDPOINT_KEYS["issue-updated"]}),
    ("issue-updated", {"module_key": FORGE_ENDPOINT_KEYS["uninstall"]}),
    ("lifecycle", {"overrides": {"aud": OTHER_APP, "app.id": OTHER_APP}}),
    ("lifecycle", {"overrides": {"app.id": OTHER_APP}}),
    ("lifecycle", {"environment": "DEVELOPMENT"}),
    ("lifecycle", {"overrides": {"iss": "someone"}}),
    ("lifecycle", {"now": time.time() - 600}),
    ("lifecycle", {"lifetime": 600}),
    ("lifecycle", {"overrides": {"app.installationId": "ari:cloud:ecosystem::installation/x"}}),
    ("lifecycle", {"api": "https://api.atlassian.com.evil.example/ex/jira/x"}),
    ("lifecycle", {"drop": ("jti",)}),
])
async def test_8_2_a_refused_token_is_401_with_nothing_stored(
        world: World, route: str, options: dict[str, Any]) -> None:
    answer = await world.call(route, event(), system_token=mint_system_token(), **options)
    assert answer.status_code == 401
    assert set(answer.json()) == {"detail"}
    world.nothing_stored()
    assert world.jwks.requests <= 1  # the key set, and nothing else


def signed_raw(signer: ForgeSigner, payload: bytes) -> str:
    """A FIT whose claims segment is `payload` as given (any bytes), correctly signed."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    head = b64(json.dumps({"alg": "RS256", "typ": "JWT", "kid": signer.kid}).encode())
    signing_input = f"{head}.{b64(payload)}"
    signature = signer.key.sign(signing_input.encode("ascii"), padding.PKCS1v15(),
                                hashes.SHA256())
    return f"{signing_input}.{b64(signature)}"


@pytest.mark.parametrize("claims", [
    b"[1]",                                  # not an object
    b'{"iss":"forge/invocation-token"',      # not JSON
    b"\xff\xfe",                             # not UTF-8
    b'{"iat":NaN,"exp":NaN}',                # not JSON (RFC 8259): refused as it is decoded
    b"GOOD-WITH-LONE-SURROGATE-JTI",          # full claims, `jti` a lone surrogate (I-JSON)
])
async def test_8_2_a_signed_fit_whose_claims_are_not_a_json_object_is_401(
        world: World, claims: bytes) -> None:
    """§8.2: the claims are read by the adapter's JSON decoder (forgeperf): a correctly
    signed token whose claims segment is not a strict JSON object is refused, nothing
    stored; a well-formed one through the same signer is accepted (the helper is sound)."""
    good = json.dumps(fit_claims(module_key=FORGE_ENDPOINT_KEYS["issue-updated"],
                                 api_base_url=API)).encode()
    if claims == b"GOOD-WITH-LONE-SURROGATE-JTI":
        claims = json.dumps({**json.loads(good), "jti": "\ud800"}).encode()
        assert b"\\ud800" in claims
    answer = await world.call("issue-updated", event(),
                              token=signed_raw(world.jwks.signer, claims))
    assert answer.status_code == 401
    assert set(answer.json()) == {"detail"}
    world.nothing_stored()
    answer = await world.call("issue-updated", event(),
                              token=signed_raw(world.jwks.signer, good))
    assert answer.status_code == 202


async def test_8_2_a_bad_kid_or_alg_is_refused_without_any_fetch(world: World) -> None:
    bad_kid = world.fit("lifecycle", headers={"kid": "../../x"})
    _, payload, signature = world.fit("lifecycle").split(".")
    hs256 = "eyJhbGciOiJIUzI1NiJ9." + payload + "." + signature
    for token in (bad_kid, hs256):
        answer = await world.call("lifecycle", token=token)
        assert answer.status_code == 401
    assert world.jwks.requests == 0
    world.nothing_stored()


async def test_8_2_an_unknown_kid_is_401_after_one_refetch(world: World) -> None:
    stranger = ForgeSigner("not-published")
    for _ in range(5):
        token = mint_fit(stranger, module_key=FORGE_ENDPOINT_KEYS["lifecycle"], api_base_url=API)
        assert (await world.call("lifecycle", token=token)).status_code == 401
    assert world.jwks.requests == 1
    world.nothing_stored()


async def test_8_2_a_key_set_outage_is_503_with_retry_after(world: World) -> None:
    world.jwks.behave("500")
    answer = await world.call("lifecycle")
    assert answer.status_code == 503 and int(answer.headers["retry-after"]) > 0
    world.nothing_stored()


async def test_8_2_a_fit_is_single_use_even_across_routes_of_one_key(world: World) -> None:
    token = world.fit("keepalive")
    assert (await world.call("keepalive", token=token)).status_code == 204
    again = await world.call("keepalive", token=token)
    assert again.status_code == 401 and "used before" in again.json()["detail"]


# -- verified calls ----------------------------------------------------------------------


async def test_8_2_lifecycle_creates_the_site_and_keeps_its_system_token(world: World) -> None:
    system = mint_system_token(3600)
    answer = await world.call("lifecycle", {"eventType": "avi:forge:installed:app"},
                              system_token=system)
    assert answer.status_code == 204
    tenants = await world.client.get("/api/tenants",
                                     headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
    [site] = tenants.json()
    assert site["transport"] == "forge" and site["installation_id"] == INSTALLATION_ID
    assert site["base_url"] == API and site["client_key"] is None
    assert system not in tenants.text
    [(stored,)] = world.rows("SELECT forge_system_token FROM tenants")
    assert stored and system not in stored  # encrypted
    stored_site = await world.tenants.get(site["id"])
    assert stored_site is not None and stored_site.system_token is not None
    assert stored_site.system_token.token == system


async def test_8_2_issue_updated_first_creates_the_site_and_a_retry_is_a_duplicate(
        world: World) -> None:
    first = await world.call("issue-updated", event())
    assert first.status_code == 202 and first.json()["status"] == "accepted"
    retry = await world.call("issue-updated", event())  # same event, a new FIT
    assert retry.status_code == 200 and retry.json() == {"status": "duplicate"}
    nested = await world.call("issue-updated", {"payload": event(), "context": {}})
    assert nested.json() == {"status": "duplicate"}
    assert len(world.rows("SELECT id FROM deliveries")) == 1
    assert len(world.rows("SELECT id FROM tenants")) == 1


async def test_8_2_self_generated_and_irrelevant_events_are_ignored(world: World) -> None:
    answer = await world.call("issue-updated", event(selfGenerated=True))
    assert answer.status_code == 200 and answer.json() == {"status": "ignored"}
    other = event()
    other["changelog"]["items"][0]["field"] = "summary"
    assert (await world.call("issue-updated", other)).json() == {"status": "ignored"}
    assert world.rows("SELECT id FROM deliveries") == []


async def test_8_2_w2_a_verified_call_with_a_bad_body_is_400(world: World) -> None:
    answer = await world.call("issue-updated", {"eventType": "avi:jira:updated:issue",
                                                "issue": {"id": 7}})
    assert answer.status_code == 400
    assert world.rows("SELECT id FROM deliveries") == []


async def test_8_2_pre_uninstall_marks_the_site_uninstalled_and_erases_the_token(
        world: World) -> None:
    await world.call("lifecycle", system_token=mint_system_token(3600))
    assert (await world.call("uninstall")).status_code == 204
    [(status, token)] = world.rows("SELECT status, forge_system_token FROM tenants")
    assert (status, token) == ("uninstalled", None)


async def test_8_2_a_site_moved_from_connect_refuses_connect_calls(world: World) -> None:
    from tests.support.webhooks import issue_updated_body, signed_delivery
    secret = "connect-shared-secret-0123456789-abcdefghijklmnop"
    tenant = await world.tenants.upsert_installed(Installation(
        client_key="acme-client", shared_secret=secret, base_url="https://acme.atlassian.net",
        display_url=None, installed_at=datetime.now(UTC)))
    world.execute("UPDATE tenants SET installation_id = ? WHERE id = ?",
                  [INSTALLATION_ID, tenant.id])
    headers, raw = signed_delivery("acme-client", secret, issue_updated_body())
    before = await world.client.post("/extensions/jira/issue-updated/", content=raw,
                                     headers=headers)
    assert before.status_code == 202
    assert (await world.call("keepalive")).status_code == 204
    [(site_id, transport)] = world.rows("SELECT id, transport FROM tenants")
    assert (site_id, transport) == (tenant.id, "forge")
    headers, raw = signed_delivery("acme-client", secret, issue_updated_body(),
                                   delivery_id="delivery-2")
    after = await world.client.post("/extensions/jira/issue-updated/", content=raw,
                                    headers=headers)
    assert after.status_code == 401


# -- one source for routes and keys: the manifest and the route table agree (#14) ----------


def manifest_endpoints(world: World) -> dict[str, tuple[str, set[str]]]:
    """The generated manifest's endpoints: key → (route path, keys of the modules invoking it)."""
    settings = attrs.evolve(world.container.settings.app, base_url="https://forge.example.com")
    modules = forge_manifest(settings, app_id=APP_ID)["modules"]
    invokers: dict[str, set[str]] = {}
    for kind in ("trigger", "preUninstall", "scheduledTrigger"):
        for module in modules[kind]:
            invokers.setdefault(module["endpoint"], set()).add(module["key"])
    return {entry["key"]: (entry["route"]["path"], invokers[entry["key"]])
            for entry in modules["endpoint"]}


def served_forge_paths(world: World) -> set[str]:
    app = world.client.app
    return {route.path for route in app.routes if route.path.startswith("/extensions/jira/forge")}


def route_of(path_served: str) -> str:
    [route] = [name for name, served in FORGE_ROUTE_PATHS.items() if served == path_served]
    return route


async def test_8_2_the_route_table_serves_exactly_the_manifest_endpoints(world: World) -> None:
    """Every endpoint of the generated manifest is a served route and every Forge route is a
    manifest endpoint; the route's accepted module keys are its endpoint's key and the keys of
    the modules invoking it."""
    endpoints = manifest_endpoints(world)
    # Litestar keeps route paths without their trailing slash (and serves both spellings).
    assert {route_path.rstrip("/") for route_path, _ in endpoints.values()} == \
        served_forge_paths(world)
    for key, (route_path, invokers) in endpoints.items():
        assert FORGE_ROUTE_MODULE_KEYS[route_of(route_path)] == {key, *invokers}


async def test_8_2_each_manifest_endpoint_takes_its_endpoint_and_trigger_key_over_http(
        world: World) -> None:
    """§8.2 app.module.key: a FIT naming the endpoint or the invoking module is accepted on the
    endpoint's path (either is what Forge may send)."""
    expected = {"lifecycle": 204, "keepalive": 204, "issue-updated": 202, "uninstall": 204}
    for key, (route_path, invokers) in manifest_endpoints(world).items():
        route = route_of(route_path)
        for number, module_key in enumerate(sorted({key, *invokers})):
            body = event()
            body["changelog"]["id"] = f"{route}-{number}"
            if route == "uninstall":  # last: it ends the site
                continue
            answer = await world.call(route, body, module_key=module_key)
            assert answer.status_code == expected[route], (route, module_key, answer.text)
    for module_key in sorted(FORGE_ROUTE_MODULE_KEYS["uninstall"]):
        await world.call("lifecycle")  # (re)installed, then uninstalled by either key
        assert (await world.call("uninstall", module_key=module_key)).status_code == 204
        [(status,)] = world.rows("SELECT status FROM tenants")
        assert status == "uninstalled"


@pytest.mark.parametrize("route", sorted(FORGE_ROUTE_PATHS))
async def test_8_2_no_module_key_is_accepted_by_two_routes(world: World, route: str) -> None:
    """A FIT minted for another route's endpoint or trigger is 401 here, nothing stored."""
    others = set().union(*FORGE_ROUTE_MODULE_KEYS.values()) - FORGE_ROUTE_MODULE_KEYS[route]
    assert others and not others & FORGE_ROUTE_MODULE_KEYS[route]
    for module_key in sorted(others):
        answer = await world.call(route, event(), module_key=module_key)
        assert answer.status_code == 401, module_key
        assert "app.module.key" in answer.json()["detail"]
    world.nothing_stored()


# -- §3 metrics: Forge deliveries count like the others (#14) -------------------------------


async def scrape(world: World) -> dict[Any, float]:
    answer = await world.client.get("/metrics",
                                    headers={"authorization": f"Bearer {METRICS_TOKEN}"})
    assert answer.status_code == 200
    found: dict[Any, float] = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def count(found: dict[Any, float], name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_3_forge_deliveries_are_counted_with_transport_forge(world: World) -> None:
    assert (await world.call("issue-updated", event())).status_code == 202
    assert (await world.call("issue-updated", event())).status_code == 200  # a duplicate
    assert (await world.call("issue-updated", event(selfGenerated=True))).status_code == 200
    refused = await world.call("issue-updated", event(),
                               module_key=FORGE_ENDPOINT_KEYS["lifecycle"])
    assert refused.status_code == 401
    assert (await world.call("keepalive")).status_code == 204  # not a delivery
    found = await scrape(world)
    deliveries = "sentry_jira_deliveries_total"
    assert count(found, deliveries, transport="forge", answer="accepted") == 1
    assert count(found, deliveries, transport="forge", answer="duplicate") == 1
    assert count(found, deliveries, transport="forge", answer="ignored") == 1
    assert count(found, deliveries, transport="forge", answer="401") == 1
    assert count(found, "sentry_jira_ack_seconds_count", transport="forge") == 4
    assert count(found, deliveries, transport="connect", answer="accepted") == 0
    # the one key-set fetch, counted as an outbound call of its own target
    assert count(found, "sentry_jira_outbound_calls_total", target="forge_keys",
                 status="2xx") == world.jwks.requests == 1


async def test_3_a_failed_key_set_fetch_is_counted_as_a_forge_keys_call(world: World) -> None:
    world.jwks.behave("500")
    assert (await world.call("issue-updated", event())).status_code == 503
    found = await scrape(world)
    assert count(found, "sentry_jira_outbound_calls_total", target="forge_keys",
                 status="5xx") == 1
    assert count(found, "sentry_jira_deliveries_total", transport="forge", answer="503") == 1
