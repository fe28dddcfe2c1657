"""`POST /extensions/jira/issue-updated/` in-process on real SQLite (W1–W4, W10, L7)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from adapters.http.app import create_app
from adapters.wiring import Container, bootstrap
from core.describe import ISSUE_UPDATED_PATH as PATH
from core.model.tenant import Installation
from tests.support.connect_tokens import rs256_token, unsigned_token
from tests.support.webhooks import issue_updated_body, signed_delivery, webhook_token

CLIENT = "f7f4c0a0-5c4e-3b8b-9d55-0f2c0a1e7a11"
SECRET = "webhook-shared-secret-for-tests-0123456789-abcdefghijklmnop"


async def install(container: Container, client_key: str = CLIENT, secret: str = SECRET) -> None:
    await container.tenants.upsert_installed(Installation(
        client_key=client_key, shared_secret=secret, base_url="https://acme.atlassian.net",
        display_url=None, installed_at=datetime.now(UTC)))


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[tuple[Container, AsyncTestClient[Litestar]]]:
    container = bootstrap(_settings(tmp_path))
    await install(container)
    try:
        async with AsyncTestClient(app=create_app(container)) as client:
            yield container, client
    finally:
        container.close()


def _settings(tmp_path: Path, **env: str) -> Any:
    from tests.support.builders import a_settings

    return a_settings(tmp_path, **env)


def deliveries(container: Container) -> list[dict[str, Any]]:
    assert container.database is not None
    return container.database.read_sync(
        lambda db: list(db.query("SELECT delivery_id, tenant_id, issue_key, body, state "
                                 "FROM deliveries ORDER BY id")))


async def post(client: AsyncTestClient[Litestar], headers: dict[str, str], body: bytes,
               path: str = PATH) -> Any:
    return await client.post(path, content=body, headers=headers)


# -- accepted, duplicate, ignored (W3, W4) --------------------------------------------------


async def test_W4_a_relevant_delivery_is_recorded_then_202(service: Any) -> None:
    container, client = service
    headers, body = signed_delivery(CLIENT, SECRET, delivery_id="d-1")
    response = await post(client, headers, body)
    assert response.status_code == 202
    assert response.json() == {"status": "accepted", "delivery": "d-1"}
    [row] = deliveries(container)
    assert row["delivery_id"] == "d-1" and row["issue_key"] == "APP-123"
    assert row["state"] == "pending"
    recorded = json.loads(bytes(row["body"]))
    assert recorded["changelog"]["items"][-1]["to"] == "10101"  # what the worker needs...
    assert "summary" not in json.dumps(recorded)  # ...and not the issue's text


async def test_W3_the_same_delivery_twice_is_a_duplicate(service: Any) -> None:
    container, client = service
    headers, body = signed_delivery(CLIENT, SECRET, delivery_id="d-1")
    assert (await post(client, headers, body)).status_code == 202
    again = await post(client, headers, body)
    assert again.status_code == 200
    assert again.json() == {"status": "duplicate"}
    assert len(deliveries(container)) == 1


async def test_W3_without_the_header_the_fallback_id_dedupes(service: Any) -> None:
    container, client = service
    headers, body = signed_delivery(CLIENT, SECRET, delivery_id=None)
    first = await post(client, headers, body)
    assert first.status_code == 202
    assert first.json()["delivery"].startswith("sha256:")
    assert (await post(client, headers, body)).json() == {"status": "duplicate"}
    other = json.dumps(issue_updated_body(timestamp=1764320400001)).encode()
    assert (await post(client, headers, other)).status_code == 202
    assert len(deliveries(container)) == 2


@pytest.mark.parametrize("kind", ["status", "assignee", "moved"])
async def test_W4_status_assignee_and_key_changes_are_relevant(service: Any, kind: str) -> None:
    _, client = service
    headers, body = signed_delivery(CLIENT, SECRET, issue_updated_body(kind))
    assert (await post(client, headers, body)).status_code == 202


async def test_W2_another_webhook_event_is_ignored_and_not_recorded(service: Any) -> None:
    container, client = service
    body = issue_updated_body(webhookEvent="jira:issue_created")
    headers, raw = signed_delivery(CLIENT, SECRET, body)
    response = await post(client, headers, raw)
    assert response.status_code == 200 and response.json() == {"status": "ignored"}
    assert deliveries(container) == []


async def test_W4_an_irrelevant_changelog_is_ignored_and_not_recorded(service: Any) -> None:
    container, client = service
    body = issue_updated_body(changelog={"id": "1", "items": [{"field": "summary"}]})
    headers, raw = signed_delivery(CLIENT, SECRET, body)
    response = await post(client, headers, raw)
    assert response.status_code == 200 and response.json() == {"status": "ignored"}
    assert deliveries(container) == []


# -- W1: every token refusal is 401 with nothing recorded ------------------------------------


def _refusals() -> list[tuple[str, Any]]:
    now = datetime.now(UTC).timestamp()
    rows: list[tuple[str, Any]] = [
        ("no token", lambda h: h.pop("Authorization")),
        ("Bearer", lambda h: h.update(Authorization=h["Authorization"].replace("JWT", "Bearer"))),
        ("malformed", lambda h: h.update(Authorization="JWT not.a.token")),
        ("two tokens", lambda h: h.update(Authorization=h["Authorization"] + ", "
                                          + h["Authorization"][4:])),
        ("unknown iss", lambda h: h.update(
            Authorization="JWT " + webhook_token("someone-else", SECRET))),
        ("wrong secret", lambda h: h.update(
            Authorization="JWT " + webhook_token(CLIENT, SECRET + "-wrong"))),
        ("RS256", lambda h: h.update(Authorization="JWT " + rs256_token(
            {"iss": CLIENT, "iat": int(now), "exp": int(now) + 60, "qsh": "x"}))),
        ("alg none", lambda h: h.update(Authorization="JWT " + unsigned_token(
            {"iss": CLIENT, "iat": int(now), "exp": int(now) + 60}, {"alg": "none"}) + "x")),
        ("HS512", lambda h: h.update(Authorization="JWT " + _hs512())),
        ("expired", lambda h: h.update(Authorization="JWT " + webhook_token(
            CLIENT, SECRET, now=now - 3600))),
        ("future iat", lambda h: h.update(Authorization="JWT " + webhook_token(
            CLIENT, SECRET, now=now + 3600))),
        ("missing qsh", lambda h: h.update(Authorization="JWT " + webhook_token(
            CLIENT, SECRET, qsh=None))),
        ("context-qsh", lambda h: h.update(Authorization="JWT " + webhook_token(
            CLIENT, SECRET, qsh="context-qsh"))),
        ("qsh of another path", lambda h: h.update(Authorization="JWT " + webhook_token(
            CLIENT, SECRET, path="/extensions/jira/installed/"))),
        ("qsh of another method", lambda h: h.update(Authorization="JWT " + webhook_token(
            CLIENT, SECRET, method="PUT"))),
        ("crit header", lambda h: h.update(Authorization="JWT " + _with_crit())),
    ]
    return rows


def _hs512() -> str:
    import jwt as pyjwt

    now = int(datetime.now(UTC).timestamp())
    return pyjwt.encode({"iss": CLIENT, "iat": now, "exp": now + 60, "qsh": "x"},
                        SECRET + "-padding-to-64-bytes-for-hs512-0123456789", algorithm="HS512")


def _with_crit() -> str:
    from tests.support.connect_tokens import hs256_token

    now = int(datetime.now(UTC).timestamp())
    from core.connect.qsh import query_string_hash

    return hs256_token({"iss": CLIENT, "iat": now, "exp": now + 60,
                        "qsh": query_string_hash("POST", PATH, "")}, SECRET,
                       headers={"crit": ["exp"]})


@pytest.mark.parametrize(("name", "mutate"), _refusals(), ids=[r[0] for r in _refusals()])
async def test_W1_refusals_are_401_and_nothing_is_recorded(service: Any, name: str,
                                                           mutate: Any) -> None:
    container, client = service
    headers, body = signed_delivery(CLIENT, SECRET)
    mutate(headers)
    response = await post(client, headers, body)
    assert response.status_code == 401, name
    assert set(response.json()) == {"detail"}
    assert SECRET not in response.text
    assert deliveries(container) == []


async def test_W1_a_jwt_query_parameter_is_refused(service: Any) -> None:
    container, client = service
    headers, body = signed_delivery(CLIENT, SECRET)
    token = headers.pop("Authorization")[4:]
    response = await post(client, headers, body, path=f"{PATH}?jwt={token}")
    assert response.status_code == 401
    assert deliveries(container) == []


async def test_W1_a_query_added_after_signing_is_refused(service: Any) -> None:
    container, client = service
    headers, body = signed_delivery(CLIENT, SECRET)
    response = await post(client, headers, body, path=f"{PATH}?user_id=admin")
    assert response.status_code == 401
    assert deliveries(container) == []


async def test_W1_a_signed_query_is_accepted(service: Any) -> None:
    _, client = service
    headers, body = signed_delivery(CLIENT, SECRET, query="user_id=admin&user_key=admin")
    response = await post(client, headers, body, path=f"{PATH}?user_key=admin&user_id=admin")
    assert response.status_code == 202


async def test_L4_a_rotated_secret_is_refused_at_once(service: Any) -> None:
    container, client = service
    headers, body = signed_delivery(CLIENT, SECRET, delivery_id="before")
    assert (await post(client, headers, body)).status_code == 202
    await install(container, secret=SECRET + "-rotated")
    headers, body = signed_delivery(CLIENT, SECRET, delivery_id="after")
    assert (await post(client, headers, body)).status_code == 401
    headers, body = signed_delivery(CLIENT, SECRET + "-rotated", delivery_id="after")
    assert (await post(client, headers, body)).status_code == 202


async def test_L7_an_uninstalled_tenant_is_refused(service: Any) -> None:
    container, client = service
    await container.tenants.mark_uninstalled(CLIENT)
    headers, body = signed_delivery(CLIENT, SECRET)
    assert (await post(client, headers, body)).status_code == 401
    assert deliveries(container) == []


async def test_W1_the_token_is_checked_before_the_body_is_parsed(service: Any) -> None:
    container, client = service
    headers, _ = signed_delivery(CLIENT, SECRET + "-wrong")
    assert (await post(client, headers, b"not json")).status_code == 401
    headers, _ = signed_delivery(CLIENT, SECRET)
    assert (await post(client, headers, b"not json")).status_code == 400
    assert deliveries(container) == []


# -- W2: malformed bodies are 400 with nothing recorded -------------------------------------


def _fields_null() -> bytes:
    body = issue_updated_body()
    body["issue"]["fields"] = None
    return json.dumps(body).encode()


def _without(key: str) -> bytes:
    body = issue_updated_body()
    del body["issue"][key]
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("not JSON", b"{nope"),
        ("not UTF-8", b'{"webhookEvent": "\xff"}'),
        ("not an object", b"[1, 2]"),
        ("no issue.key", _without("key")),
        ("no issue.id", _without("id")),
        ("fields null", _fields_null()),
        ("deep nesting", b"[" * 100_000 + b"]" * 100_000),
    ],
)
async def test_W2_malformed_bodies_are_400_and_nothing_is_recorded(service: Any, name: str,
                                                                   raw: bytes) -> None:
    container, client = service
    headers, _ = signed_delivery(CLIENT, SECRET)
    response = await post(client, headers, raw)
    assert response.status_code == 400, name
    assert set(response.json()) == {"detail"}
    assert deliveries(container) == []


# -- transport order and W10 -------------------------------------------------------------


async def test_405_with_allow_and_415(service: Any) -> None:
    _, client = service
    response = await client.get(PATH)
    assert response.status_code == 405 and "POST" in response.headers["allow"]
    headers, body = signed_delivery(CLIENT, SECRET)
    headers["Content-Type"] = "text/plain"
    assert (await post(client, headers, body)).status_code == 415


async def test_413_for_a_body_over_the_limit(tmp_path: Path) -> None:
    container = bootstrap(_settings(tmp_path, max_body_bytes="4096"))
    await install(container)
    try:
        async with AsyncTestClient(app=create_app(container)) as client:
            headers, _ = signed_delivery(CLIENT, SECRET)
            response = await post(client, headers, b"x" * 5000)
    finally:
        container.close()
    assert response.status_code == 413


async def test_W10_a_locked_database_is_503_with_retry_after_then_accepted(tmp_path: Path) -> None:
    container = bootstrap(_settings(tmp_path))
    await install(container)
    assert container.loop_connection is not None
    container.loop_connection.busy_retry_seconds = 0.2
    locker = sqlite3.connect(tmp_path / "sentry-jira.db", isolation_level=None)
    try:
        async with AsyncTestClient(app=create_app(container)) as client:
            headers, body = signed_delivery(CLIENT, SECRET, delivery_id="locked")
            await post(client, headers, body)  # warm: tenant row read once before the lock
            locker.execute("BEGIN EXCLUSIVE")
            headers, body = signed_delivery(CLIENT, SECRET, delivery_id="during-lock")
            response = await post(client, headers, body)
            assert response.status_code == 503
            assert int(response.headers["retry-after"]) >= 1
            locker.execute("ROLLBACK")
            again = await post(client, headers, body)
            assert again.status_code == 202  # accepted, not a duplicate: nothing half-written
    finally:
        locker.close()
        container.close()
