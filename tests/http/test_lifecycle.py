"""L1–L6 over HTTP: real SQLite container, real RS256 tokens, keys from a loopback server.

Every refusal asserts the end state: the status, nothing stored, and — where SPEC §4.3 /
§5 say so — that no key was fetched.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
from litestar.testing import AsyncTestClient

from adapters.http.app import create_app
from adapters.sqlite.database import Database
from adapters.sqlite.tenants import SqliteTenantStore
from adapters.wiring import Container, bootstrap, open_database
from core.connect.qsh import query_string_hash
from core.connect.tokens import ConnectRequest, verify_tenant_token
from core.model.errors import Unauthorized
from tests.support.builders import a_settings
from tests.support.connect_tokens import (
    INSTALLED,
    UNINSTALLED,
    hs256_token,
    lifecycle_claims,
    raw_hs256,
    rs256_token,
    signing_key,
    tenant_claims,
    unsigned_token,
)
from tests.support.key_server import KeyServer, running_key_server
from tests.support.paths import fixture_json

BASE = "https://sentry-jira.example.com"
CLIENT_KEY = "f7f4c0a0-5c4e-3b8b-9d55-0f2c0a1e7a11"
FIXTURE_SECRET = fixture_json("connect-installed-body.json")["sharedSecret"]
WEBHOOK = "/extensions/jira/issue-updated/"


def now() -> datetime:
    return datetime.now(UTC)


def install_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = fixture_json("connect-installed-body.json")
    body["key"] = "sentry-jira.example.com.jira"
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def uninstall_body(**changes: Any) -> dict[str, Any]:
    return install_body(**{"eventType": "uninstalled", **changes})


def encode(body: Any) -> bytes:
    return json.dumps(body).encode()


def a_lifecycle_token(
    path: str = INSTALLED, *, kid: str | None = "kid-1", headers: Any = None, **claims: Any
) -> str:
    values = lifecycle_claims(iss=CLIENT_KEY, aud=BASE, now=now(), path=path)
    values.update(claims)
    return rs256_token({k: v for k, v in values.items() if v is not None}, kid=kid, headers=headers)


@attrs.define
class Site:
    """The app on a real SQLite database, and the key server it fetches from."""

    client: AsyncTestClient[Any]
    container: Container
    keys: KeyServer

    @property
    def database(self) -> Database:
        assert self.container.database is not None
        return self.container.database

    async def post(
        self,
        path: str,
        body: Any,
        token: str | None,
        *,
        query: str = "",
        authorization: str | None = None,
    ) -> httpx.Response:
        headers = {"content-type": "application/json"}
        if authorization is not None:
            headers["authorization"] = authorization
        elif token is not None:
            headers["authorization"] = f"JWT {token}"
        content = body if isinstance(body, bytes) else encode(body)
        url = path + (f"?{query}" if query else "")
        return await self.client.post(url, content=content, headers=headers)

    async def install(
        self, token: str | None = None, body: Any = None, **kw: Any
    ) -> httpx.Response:
        return await self.post(
            INSTALLED, install_body() if body is None else body, token or a_lifecycle_token(), **kw
        )

    async def uninstall(
        self, token: str | None = None, body: Any = None, **kw: Any
    ) -> httpx.Response:
        return await self.post(
            UNINSTALLED,
            uninstall_body() if body is None else body,
            token or a_lifecycle_token(UNINSTALLED),
            **kw,
        )

    async def rows(self, table: str = "tenants") -> list[dict[str, Any]]:
        return await self.database.read(lambda db: list(db.query(f"SELECT * FROM {table}")))

    async def verify_webhook(self, secret: str, database: Database | None = None) -> Any:
        claims = tenant_claims(iss=CLIENT_KEY, now=now(), method="POST", path=WEBHOOK)
        request = ConnectRequest(
            method="POST",
            raw_path=WEBHOOK,
            raw_query="",
            authorization=f"JWT {hs256_token(claims, secret)}",
        )
        return await verify_tenant_token(
            request,
            tenants=SqliteTenantStore(database or self.database),
            settings=self.container.settings.app,
            clock=self.container.clock,
        )


@pytest.fixture
def key_server() -> Iterator[KeyServer]:
    with running_key_server() as server:
        server.serve("kid-1", signing_key().public_pem)
        yield server


def site_settings(tmp_path: Path, server: KeyServer, **env: str) -> Any:
    return a_settings(tmp_path, install_keys_url=server.url, http_timeout_seconds="0.5", **env)


@pytest.fixture
async def site(tmp_path: Path, key_server: KeyServer) -> AsyncIterator[Site]:
    container = bootstrap(site_settings(tmp_path, key_server))
    try:
        async with AsyncTestClient(app=create_app(container)) as client:
            yield Site(client, container, key_server)
    finally:
        container.close()


# -- accepted -------------------------------------------------------------------------------


async def test_L3_a_signed_install_of_the_shared_fixture_creates_the_tenant(site: Site) -> None:
    response = await site.install()
    assert response.status_code == 204, response.text
    [row] = await site.rows()
    assert row["client_key"] == CLIENT_KEY
    assert row["base_url"] == "https://acme.atlassian.net"
    assert row["display_url"] == "https://jira.acme.example"
    assert row["status"] == "installed"
    assert row["shared_secret"] != FIXTURE_SECRET  # encrypted at rest
    assert site.keys.fetches("kid-1") == 1
    assert (await site.verify_webhook(FIXTURE_SECRET)).tenant.id == row["id"]


async def test_L4_reinstall_rotates_and_the_old_secret_is_refused_at_once(site: Site) -> None:
    assert (await site.install()).status_code == 204
    [before] = await site.rows()
    await site.verify_webhook(FIXTURE_SECRET)
    new_secret = "rotated-" + "s" * 56
    response = await site.install(
        a_lifecycle_token(jti="second"),
        install_body(
            sharedSecret=new_secret,
            baseUrl="https://acme-new.atlassian.net/",
            displayUrl="https://jira-new.acme.example",
        ),
    )
    assert response.status_code == 204, response.text
    [after] = await site.rows()
    assert after["id"] == before["id"]
    assert after["secret_version"] > before["secret_version"]
    assert after["base_url"] == "https://acme-new.atlassian.net"
    assert after["display_url"] == "https://jira-new.acme.example"
    with pytest.raises(Unauthorized):
        await site.verify_webhook(FIXTURE_SECRET)
    assert (await site.verify_webhook(new_secret)).tenant.secret_version == after["secret_version"]


async def test_L5_uninstall_disables_the_tenant_and_erases_its_secret(site: Site) -> None:
    assert (await site.install()).status_code == 204
    response = await site.uninstall()
    assert response.status_code == 204, response.text
    [row] = await site.rows()
    assert row["status"] == "uninstalled"
    assert row["shared_secret"] is None
    with pytest.raises(Unauthorized):
        await site.verify_webhook(FIXTURE_SECRET)


async def test_L5_signed_uninstall_of_an_unknown_site_is_204_and_stores_nothing(
    site: Site,
) -> None:
    response = await site.uninstall()
    assert response.status_code == 204, response.text
    assert await site.rows() == []
    assert await site.rows("used_lifecycle_tokens") == []


async def test_L4_reinstall_after_uninstall_reinstates(site: Site) -> None:
    assert (await site.install()).status_code == 204
    assert (await site.uninstall()).status_code == 204
    assert (await site.install(a_lifecycle_token(jti="again"))).status_code == 204
    [row] = await site.rows()
    assert row["status"] == "installed"
    await site.verify_webhook(FIXTURE_SECRET)


async def test_single_use_the_same_token_and_body_again_is_204_with_no_change(
    site: Site,
) -> None:
    token = a_lifecycle_token()
    body = encode(install_body())
    assert (await site.install(token, body)).status_code == 204
    before = await site.rows()
    again = await site.install(token, body)
    assert again.status_code == 204
    assert await site.rows() == before
    assert len(await site.rows("used_lifecycle_tokens")) == 1


async def test_single_use_the_same_token_with_another_body_is_401_with_no_change(
    site: Site,
) -> None:
    token = a_lifecycle_token()
    assert (await site.install(token)).status_code == 204
    before = await site.rows()
    stolen = await site.install(token, install_body(sharedSecret="attacker-" + "a" * 40))
    assert stolen.status_code == 401
    assert await site.rows() == before
    # Whitespace is "another body" too: the comparison is byte for byte.
    spaced = await site.install(token, json.dumps(install_body(), indent=1).encode())
    assert spaced.status_code == 401
    await site.verify_webhook(FIXTURE_SECRET)


async def test_the_content_type_may_carry_a_charset(site: Site) -> None:
    response = await site.client.post(
        INSTALLED,
        content=encode(install_body()),
        headers={
            "content-type": "application/json; charset=utf-8",
            "authorization": f"jwt {a_lifecycle_token()}",
        },
    )
    assert response.status_code == 204


async def test_unknown_fields_are_ignored_and_optional_ones_may_be_absent(site: Site) -> None:
    body = install_body(
        displayUrl=None, productType=None, description=None, oauthClientId=None, novel={"x": 1}
    )
    assert (await site.install(body=body)).status_code == 204
    [row] = await site.rows()
    assert row["display_url"] is None


# -- refused: nothing stored ------------------------------------------------------------------


def forged_confusion_token() -> str:
    claims = lifecycle_claims(iss=CLIENT_KEY, aud=BASE, now=now())
    return raw_hs256(claims, signing_key().public_pem.encode(), {"kid": "kid-1"})


def junk_signature(header: dict[str, Any]) -> str:
    return unsigned_token(lifecycle_claims(iss=CLIENT_KEY, aud=BASE, now=now()), header) + "AAAA"


# (name, how to call: Site -> response coroutine) — refused before any key fetch.
BEFORE_FETCH: list[tuple[str, Callable[[Site], Any]]] = [
    ("no token", lambda s: s.post(INSTALLED, install_body(), None)),
    ("bearer", lambda s: s.install(authorization=f"Bearer {a_lifecycle_token()}")),
    ("malformed", lambda s: s.install(authorization="JWT not-a-token")),
    ("two tokens", lambda s: s.install(authorization=f"JWT {a_lifecycle_token()}, JWT a.b.c")),
    ("alg none", lambda s: s.install(authorization="JWT " + unsigned_token({}, {"alg": "none"}))),
    ("alg none junk sig", lambda s: s.install(junk_signature({"alg": "none", "kid": "kid-1"}))),
    (
        "hs256 on install",
        lambda s: s.install(
            hs256_token(lifecycle_claims(iss=CLIENT_KEY, aud=BASE, now=now()), FIXTURE_SECRET)
        ),
    ),
    (
        "hs256 on uninstall",
        lambda s: s.uninstall(
            hs256_token(
                lifecycle_claims(iss=CLIENT_KEY, aud=BASE, now=now(), path=UNINSTALLED),
                FIXTURE_SECRET,
            )
        ),
    ),
    ("algorithm confusion", lambda s: s.install(forged_confusion_token())),
    ("missing kid", lambda s: s.install(a_lifecycle_token(kid=None))),
    ("kid ..", lambda s: s.install(junk_signature({"alg": "RS256", "kid": ".."}))),
    ("kid ../x", lambda s: s.install(junk_signature({"alg": "RS256", "kid": "../x"}))),
    ("kid @host", lambda s: s.install(junk_signature({"alg": "RS256", "kid": "@evil.example/k"}))),
    ("kid CRLF", lambda s: s.install(junk_signature({"alg": "RS256", "kid": "k\r\nHost: x"}))),
    ("kid 10 KB", lambda s: s.install(junk_signature({"alg": "RS256", "kid": "k" * 10_240}))),
    ("crit", lambda s: s.install(a_lifecycle_token(headers={"crit": ["exp"]}))),
    ("jwt query parameter", lambda s: s.install(query=f"jwt={a_lifecycle_token()}")),
]


@pytest.mark.parametrize(("name", "call"), BEFORE_FETCH, ids=[n for n, _ in BEFORE_FETCH])
async def test_401_before_any_key_fetch_and_nothing_stored(
    site: Site, name: str, call: Callable[[Site], Any]
) -> None:
    response = await call(site)
    assert response.status_code == 401, (name, response.text)
    assert set(response.json()) == {"detail"}
    assert FIXTURE_SECRET not in response.text and "eyJ" not in response.text
    assert site.keys.total_requests == 0
    assert await site.rows() == []
    assert await site.rows("used_lifecycle_tokens") == []


async def test_the_401_token_checks_come_before_the_400_body_checks(site: Site) -> None:
    response = await site.post(INSTALLED, b"not json", None)
    assert response.status_code == 401


AFTER_FETCH: list[tuple[str, Callable[[Site], Any]]] = [
    ("wrong aud", lambda s: s.install(a_lifecycle_token(aud="https://evil.example"))),
    ("no aud", lambda s: s.install(a_lifecycle_token(aud=None))),
    ("iss is another site", lambda s: s.install(a_lifecycle_token(iss="another-client"))),
    (
        "expired",
        lambda s: s.install(
            a_lifecycle_token(iat=int(now().timestamp()) - 600, exp=int(now().timestamp()) - 300)
        ),
    ),
    ("future iat", lambda s: s.install(a_lifecycle_token(iat=int(now().timestamp()) + 300))),
    ("missing exp", lambda s: s.install(a_lifecycle_token(exp=None))),
    ("missing qsh", lambda s: s.install(a_lifecycle_token(qsh=None))),
    ("qsh of another path", lambda s: s.install(a_lifecycle_token(UNINSTALLED))),
    (
        "qsh of another method",
        lambda s: s.install(a_lifecycle_token(qsh=query_string_hash("PUT", INSTALLED, ""))),
    ),
    ("context-qsh", lambda s: s.install(a_lifecycle_token(qsh="context-qsh"))),
    ("query added after signing", lambda s: s.install(query="extra=1")),
    (
        "signed by another key",
        lambda s: s.install(
            rs256_token(
                lifecycle_claims(iss=CLIENT_KEY, aud=BASE, now=now()), key=signing_key("evil")
            )
        ),
    ),
    (
        "uninstall token on install",
        lambda s: s.install(a_lifecycle_token(UNINSTALLED), install_body()),
    ),
]


@pytest.mark.parametrize(("name", "call"), AFTER_FETCH, ids=[n for n, _ in AFTER_FETCH])
async def test_401_after_the_key_fetch_and_nothing_stored(
    site: Site, name: str, call: Callable[[Site], Any]
) -> None:
    response = await call(site)
    assert response.status_code == 401, (name, response.text)
    assert FIXTURE_SECRET not in response.text and "eyJ" not in response.text
    assert await site.rows() == []
    assert await site.rows("used_lifecycle_tokens") == []


async def test_a_refused_install_leaves_an_existing_tenant_untouched(site: Site) -> None:
    assert (await site.install()).status_code == 204
    before = await site.rows()
    for call in [c for _, c in BEFORE_FETCH + AFTER_FETCH]:
        assert (await call(site)).status_code == 401
    forged_uninstall = await site.uninstall(a_lifecycle_token(UNINSTALLED, aud="https://x.example"))
    assert forged_uninstall.status_code == 401
    assert await site.rows() == before


@pytest.mark.parametrize(
    ("behaviour", "status"), [("404", 401), ("html", 401), ("500", 503), ("hang", 503)]
)
async def test_key_server_failures(site: Site, behaviour: str, status: int) -> None:
    site.keys.behave("kid-1", behaviour)  # type: ignore[arg-type]
    response = await site.install()
    assert response.status_code == status, response.text
    if status == 503:
        assert int(response.headers["retry-after"]) > 0
    assert await site.rows() == []
    assert await site.rows("used_lifecycle_tokens") == []


async def test_an_unknown_kid_flood_fetches_once(site: Site) -> None:
    token = a_lifecycle_token(kid="unknown-kid")
    responses = [await site.install(token) for _ in range(5)]
    assert {r.status_code for r in responses} == {401}
    assert site.keys.fetches("unknown-kid") == 1


# -- 400: body and L2, before any key fetch ---------------------------------------------------

BAD_BODIES: list[tuple[str, Any]] = [
    ("not json", b"{not json"),
    ("not utf-8", b'{"key": "\xff"}'),
    ("not an object", b"[]"),
    ("wrong app key", install_body(key="another.app")),
    ("missing key", install_body(key=None)),
    ("missing clientKey", install_body(clientKey=None)),
    ("clientKey not a string", install_body(clientKey=42)),
    ("missing sharedSecret", install_body(sharedSecret=None)),
    ("sharedSecret not a string", install_body(sharedSecret=["s" * 40])),
    ("sharedSecret too short", install_body(sharedSecret="short")),
    ("missing baseUrl", install_body(baseUrl=None)),
    ("baseUrl not a string", install_body(baseUrl={"url": "https://acme.atlassian.net"})),
    ("missing eventType", install_body(eventType=None)),
    ("wrong eventType", install_body(eventType="uninstalled")),
    ("displayUrl not a string", install_body(displayUrl=5)),
    ("displayUrl javascript", install_body(displayUrl="javascript:alert(1)")),
    ("productType not a string", install_body(productType=["jira"])),
]


@pytest.mark.parametrize(("name", "body"), BAD_BODIES, ids=[n for n, _ in BAD_BODIES])
async def test_L1_bad_install_bodies_are_400_before_any_key_fetch(
    site: Site, name: str, body: Any
) -> None:
    response = await site.install(body=body)
    assert response.status_code == 400, (name, response.text)
    assert FIXTURE_SECRET not in response.text
    assert site.keys.total_requests == 0
    assert await site.rows() == []


@pytest.mark.parametrize(
    "base_url",
    [
        "http://acme.atlassian.net",
        "https://127.0.0.1",
        "https://[::1]",
        "https://169.254.169.254",
        "https://evil.example",
        "https://x.atlassian.net.evil.example",
        "https://evil.example/.atlassian.net",
        "https://user:pw@acme.atlassian.net",
        "https://acme.atlassian.net@evil.example",
        "https://acme.atlassian.net/#frag",
        "https://acme.atlassian.net:8443",
        "https://acme.xn--atlassan-xyz.net",
        "https://xn--acm-xla.atlassian.net",
        "https://acmé.atlassian.net",
        "https://acme.atlassian.net.",
        "https://acme.atlassian.net/jira",
        "https://acme.atlassian.net?x=1",
    ],
)
async def test_L2_refused_base_urls_are_400_and_nothing_stored(site: Site, base_url: str) -> None:
    response = await site.install(body=install_body(baseUrl=base_url))
    assert response.status_code == 400, response.text
    assert site.keys.total_requests == 0
    assert await site.rows() == []


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("wrong eventType", uninstall_body(eventType="installed")),
        ("missing clientKey", uninstall_body(clientKey=None)),
        ("wrong app key", uninstall_body(key="x")),
    ],
)
async def test_L5_bad_uninstall_bodies_are_400(site: Site, name: str, body: Any) -> None:
    assert (await site.install()).status_code == 204
    before = await site.rows()
    response = await site.uninstall(body=body)
    assert response.status_code == 400, name
    assert await site.rows() == before


async def test_415_comes_before_401(site: Site) -> None:
    response = await site.client.post(
        INSTALLED, content=b"{}", headers={"content-type": "text/plain"}
    )
    assert response.status_code == 415


# -- L6 and two processes ---------------------------------------------------------------------


async def test_L6_ten_concurrent_installs_through_the_app_leave_one_row(site: Site) -> None:
    responses = await asyncio.gather(
        *(
            site.install(
                a_lifecycle_token(jti=f"n{n}"),
                install_body(sharedSecret=f"secret-{n:02d}-" + "x" * 40),
            )
            for n in range(10)
        )
    )
    assert [r.status_code for r in responses] == [204] * 10
    assert len(await site.rows()) == 1


async def test_L6_concurrent_installs_through_two_apps_on_one_database(
    tmp_path: Path, key_server: KeyServer
) -> None:
    settings = site_settings(tmp_path, key_server)
    first, second = bootstrap(settings), bootstrap(settings)
    try:
        async with (
            AsyncTestClient(app=create_app(first)) as one,
            AsyncTestClient(app=create_app(second)) as two,
        ):
            sites = [Site(one, first, key_server), Site(two, second, key_server)]
            responses = await asyncio.gather(
                *(
                    sites[n % 2].install(
                        a_lifecycle_token(jti=f"n{n}"),
                        install_body(sharedSecret=f"secret-{n:02d}-" + "x" * 40),
                    )
                    for n in range(10)
                )
            )
            assert [r.status_code for r in responses] == [204] * 10
            assert len(await sites[1].rows()) == 1
    finally:
        first.close()
        second.close()


async def test_L4_two_processes_agree_at_once_on_a_rotated_secret(
    tmp_path: Path, site: Site
) -> None:
    # Another `serve` process: its own connection to the same file.
    other = open_database(site.container.settings)
    try:
        assert (await site.install()).status_code == 204
        await site.verify_webhook(FIXTURE_SECRET, database=other)  # warm, if anything cached
        new_secret = "rotated-" + "r" * 56
        rotated = await site.install(
            a_lifecycle_token(jti="rotation"), install_body(sharedSecret=new_secret)
        )
        assert rotated.status_code == 204
        with pytest.raises(Unauthorized):
            await site.verify_webhook(FIXTURE_SECRET, database=other)
        verified = await site.verify_webhook(new_secret, database=other)
        assert verified.tenant.shared_secret == new_secret
        assert (await site.uninstall()).status_code == 204
        with pytest.raises(Unauthorized):
            await site.verify_webhook(new_secret, database=other)
    finally:
        other.close()


# -- a base URL with a path ------------------------------------------------------------------


async def test_qsh_is_relative_to_a_base_url_with_a_path(
    tmp_path: Path, key_server: KeyServer
) -> None:
    base = "https://app.example.com/jira"
    container = bootstrap(site_settings(tmp_path, key_server, base_url=base))
    try:
        async with AsyncTestClient(app=create_app(container)) as client:
            site = Site(client, container, key_server)
            body = install_body(key="app.example.com.jira")
            token = rs256_token(lifecycle_claims(iss=CLIENT_KEY, aud=base + "/", now=now()))
            # Not served outside the base path.
            assert (await site.post(INSTALLED, body, token)).status_code == 404
            full_path = rs256_token(
                {
                    **lifecycle_claims(iss=CLIENT_KEY, aud=base, now=now()),
                    "qsh": query_string_hash("POST", "/jira" + INSTALLED, ""),
                }
            )
            refused = await site.post("/jira" + INSTALLED, body, full_path)
            assert refused.status_code == 401
            accepted = await site.post("/jira" + INSTALLED, body, token)
            assert accepted.status_code == 204, accepted.text
            assert len(await site.rows()) == 1
    finally:
        container.close()


async def test_the_routes_answer_503_without_lifecycle_ports(tmp_path: Path) -> None:
    from tests.support.builders import a_fake_container

    container = a_fake_container(lifecycle=None, install_keys=None)
    async with AsyncTestClient(app=create_app(container)) as client:
        response = await client.post(
            INSTALLED,
            content=encode(install_body()),
            headers={
                "content-type": "application/json",
                "authorization": f"JWT {a_lifecycle_token()}",
            },
        )
    assert response.status_code == 503


async def test_no_token_or_secret_reaches_the_logs_or_responses(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    token = a_lifecycle_token()
    responses = [
        await site.install(token),
        await site.install(token, install_body(sharedSecret="other-" + "o" * 40)),
        await site.install(a_lifecycle_token(aud="https://evil.example")),
        await site.install(body=install_body(baseUrl="https://evil.example")),
        await site.uninstall(),
    ]
    assert [r.status_code for r in responses] == [204, 401, 401, 400, 204]
    for text in [caplog.text, *(r.text for r in responses)]:
        assert token not in text
        assert token.split(".")[2] not in text
        assert FIXTURE_SECRET not in text
