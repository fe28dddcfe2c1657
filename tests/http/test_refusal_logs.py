"""§3 logs (#18): a refused unauthenticated request on the webhook, admin, search and Forge
(§8.2, #14) routes is one rate-limited warning line — event, route template, method, client
address and the core's reason; never the token, the JWT, a header or the body — in the JSON
and the text format. Lifecycle and /metrics refusals keep their own events and are not
logged twice."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from adapters.http import errors
from adapters.http.app import create_app
from adapters.logs import RefusalLog
from adapters.wiring import bootstrap
from core.forge.endpoints import FORGE_ENDPOINT_KEYS
from tests.support.builders import ADMIN_TOKEN, a_fake_container, a_settings
from tests.support.forge import APP_ID, ForgeSigner, JwksServer, mint_fit
from tests.support.hub_signature import hub_signed_delivery
from tests.support.log_capture import captured_log, fresh_refusal_log
from tests.support.webhooks import issue_updated_body, signed_delivery

FORGED_SECRET = "forged-shared-secret-0123456789-abcdefghijklmnop"
WRONG_TOKEN = "wrong-admin-token-never-logged-0123456789"
FORGE_API = "http://127.0.0.1:9/ex/jira/0f2c7e4a-0000-4000-8000-00000000c10d"  # never called


@pytest.fixture
def limiter(monkeypatch: pytest.MonkeyPatch) -> RefusalLog:
    """A fresh limiter (burst 20, 1 line a second) on a clock moving 1 ms a reading."""
    fresh = fresh_refusal_log()
    monkeypatch.setattr(errors, "refusals", fresh)
    return fresh


@pytest.fixture
async def client(limiter: RefusalLog) -> AsyncIterator[AsyncTestClient[Litestar]]:
    container = a_fake_container(a_settings(admin_token=ADMIN_TOKEN))
    async with AsyncTestClient(app=create_app(container)) as test_client:
        yield test_client


async def forged_connect(client: AsyncTestClient[Litestar]) -> tuple[int, str]:
    headers, raw = signed_delivery("unknown-client-key", FORGED_SECRET, issue_updated_body())
    response = await client.post("/extensions/jira/issue-updated/", content=raw,
                                 headers=headers)
    return response.status_code, headers["Authorization"]


async def test_3_a_forged_connect_delivery_is_one_line_without_the_jwt(
    client: AsyncTestClient[Litestar],
) -> None:
    with captured_log() as log:
        status, authorization = await forged_connect(client)
    assert status == 401
    [line] = log.named("webhook_refused")
    assert line["level"] == "warning"
    assert line["route"] == "/extensions/jira/issue-updated"
    assert line["method"] == "POST" and line["reason"]
    assert line["client"]
    text = "\n".join(log.lines)
    assert authorization.split(" ", 1)[1] not in text
    assert authorization.split(".")[1] not in text  # not even the claims segment


async def test_3_a_forged_plain_webhook_is_one_line(client: AsyncTestClient[Litestar]) -> None:
    headers, raw = hub_signed_delivery(FORGED_SECRET, issue_updated_body())
    with captured_log() as log:
        response = await client.post("/extensions/jira/webhook/7/", content=raw,
                                     headers=headers)
    assert response.status_code == 401
    [line] = log.named("webhook_refused")
    assert line["route"] == "/extensions/jira/webhook/{…}"  # the mount, not the id sent
    assert headers["X-Hub-Signature"][7:] not in "\n".join(log.lines)


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/api/tenants"),
    ("OPTIONS", "/api/tenants"),
    ("GET", "/schema"),
    ("GET", "/schema/openapi.json"),
])
async def test_3_a_refused_admin_request_is_one_line_without_the_token(
    client: AsyncTestClient[Litestar], method: str, path: str,
) -> None:
    with captured_log() as log:
        response = await client.request(method, path,
                                        headers={"Authorization": f"Bearer {WRONG_TOKEN}"})
    assert response.status_code == 401
    [line] = log.named("admin_refused")
    assert line["method"] == method
    assert line["route"].startswith(path.split("/openapi")[0])
    assert WRONG_TOKEN not in "\n".join(log.lines)


async def test_3_a_refused_search_is_one_line_without_the_token(
    client: AsyncTestClient[Litestar],
) -> None:
    with captured_log() as log:
        response = await client.get("/extensions/jira/search/acme/1/?field=issue&query=x",
                                    headers={"Authorization": f"Bearer {WRONG_TOKEN}"})
    assert response.status_code == 401
    [line] = log.named("search_refused")
    assert line["route"].startswith("/extensions/jira/search/{org")
    assert "acme" not in line["route"]  # the template, not the path as sent
    assert WRONG_TOKEN not in "\n".join(log.lines)


async def test_3_a_flood_of_forgeries_writes_a_bounded_number_of_lines(
    client: AsyncTestClient[Litestar], limiter: RefusalLog,
) -> None:
    with captured_log() as log:
        for _ in range(300):
            assert (await forged_connect(client))[0] == 401
        flood = len(log.named("webhook_refused"))
        limiter.clock.now += 5.0  # type: ignore[attr-defined]  # quiet for a while, then one
        assert (await forged_connect(client))[0] == 401
    lines = log.named("webhook_refused")
    assert flood == 20  # the burst; the clock moved 0.3 s in the flood: no token refilled
    assert lines[-1]["suppressed"] == 280  # the next line counts the lines left out


async def test_3_refusal_lines_in_the_text_format(client: AsyncTestClient[Litestar]) -> None:
    with captured_log(fmt="text") as log:
        status, authorization = await forged_connect(client)
        await client.get("/api/tenants", headers={"Authorization": f"Bearer {WRONG_TOKEN}"})
    assert status == 401
    [webhook] = [line for line in log.lines if " webhook_refused " in line]
    [admin] = [line for line in log.lines if " admin_refused " in line]
    assert webhook.split(" ")[1] == "WARNING"
    assert "route=/extensions/jira/issue-updated " in webhook and "method=POST" in webhook
    assert "route=/api/tenants" in admin
    for line in log.lines:
        assert WRONG_TOKEN not in line and authorization.split(" ", 1)[1] not in line


async def test_3_a_refused_install_is_not_logged_twice(client: AsyncTestClient[Litestar]) -> None:
    with captured_log() as log:
        response = await client.post("/extensions/jira/installed/", content=json.dumps({}),
                                     headers={"Content-Type": "application/json",
                                              "Authorization": "JWT not-a-token"})
    assert response.status_code == 401
    names = [line["event"] for line in log.events()]
    assert "webhook_refused" not in names and "admin_refused" not in names


async def test_3_an_authorised_request_writes_no_refusal(client: AsyncTestClient[Litestar]) -> None:
    with captured_log() as log:
        response = await client.get("/api/tenants",
                                    headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status_code == 200
    assert not [line for line in log.events() if line["event"].endswith("_refused")]


# -- §8.2 Forge Remote routes (#14): `forge_refused` ----------------------------------------


@pytest.fixture
async def forge_client(limiter: RefusalLog, tmp_path: Path
                       ) -> AsyncIterator[tuple[AsyncTestClient[Litestar], ForgeSigner]]:
    with JwksServer(ForgeSigner("refusal-log-key")) as jwks:
        container = bootstrap(a_settings(
            tmp_path, worker="false", forge_app_id=APP_ID, forge_jwks_url=jwks.url,
            forge_api_hosts="http://127.0.0.1:*"))
        try:
            async with AsyncTestClient(app=create_app(container)) as test_client:
                yield test_client, jwks.signer
        finally:
            container.close()


async def test_3_8_2_a_refused_forge_call_is_one_forge_refused_line_without_the_token(
    forge_client: tuple[AsyncTestClient[Litestar], ForgeSigner],
) -> None:
    """A FIT signed by the published key but minted for another route's module: 401, one
    warning line naming the route template, method, client and reason — never the token."""
    client, signer = forge_client
    token = mint_fit(signer, module_key=FORGE_ENDPOINT_KEYS["issue-updated"],
                     api_base_url=FORGE_API)
    with captured_log() as log:
        response = await client.post("/extensions/jira/forge/lifecycle/", content=b"{}",
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    [line] = log.named("forge_refused")
    assert line["level"] == "warning"
    assert line["route"] == "/extensions/jira/forge/lifecycle"
    assert line["method"] == "POST" and line["client"]
    assert "app.module.key" in line["reason"]
    text = "\n".join(log.lines)
    assert token not in text and token.split(".")[1] not in text and token.split(".")[2] not in text
    names = [entry["event"] for entry in log.events()]
    assert "webhook_refused" not in names and names.count("forge_refused") == 1


@pytest.mark.parametrize("authorization", ["", "Bearer not-a-token", "JWT a.b.c"])
async def test_3_8_2_a_forge_call_refused_before_any_key_fetch_is_logged_too(
    forge_client: tuple[AsyncTestClient[Litestar], ForgeSigner], authorization: str,
) -> None:
    client, _ = forge_client
    headers = {"Content-Type": "application/json"}
    if authorization:
        headers["Authorization"] = authorization
    with captured_log() as log:
        response = await client.post("/extensions/jira/forge/issue-updated/", content=b"{}",
                                     headers=headers)
    assert response.status_code == 401
    [line] = log.named("forge_refused")
    assert line["route"] == "/extensions/jira/forge/issue-updated"
    if authorization:
        assert authorization.split(" ", 1)[1] not in "\n".join(log.lines)


async def test_3_8_2_a_flood_of_forged_forge_calls_is_rate_limited(
    forge_client: tuple[AsyncTestClient[Litestar], ForgeSigner],
) -> None:
    client, _ = forge_client
    with captured_log() as log:
        for _ in range(60):
            response = await client.post("/extensions/jira/forge/keepalive/", content=b"{}",
                                         headers={"Content-Type": "application/json",
                                                  "Authorization": "Bearer forged"})
            assert response.status_code == 401
    assert len(log.named("forge_refused")) == 20  # the burst
