"""`POST /extensions/jira/issue-updated/` in-process on PostgreSQL (W1–W4, §9): the
one-round-trip path verifies against the tenant as this process last read it, yet a rotation
or uninstall committed by another process is honoured by the very next request, whatever
the body (relevant, ignored, malformed), and nothing is recorded for a refused request."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import psycopg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from adapters.crypto import SecretBox
from adapters.http.app import create_app
from adapters.postgres.database import PgDatabase
from adapters.postgres.tenants import PgTenantStore
from adapters.wiring import Container, bootstrap
from core.describe import ISSUE_UPDATED_PATH as PATH
from core.model.tenant import Installation
from tests.support.builders import TEST_FERNET_KEY, a_settings
from tests.support.webhooks import issue_updated_body, signed_delivery

CLIENT = "pg-client-0123456789"
FIRST = "pg-first-shared-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
SECOND = "pg-second-shared-secret-0123456789-abcdefghijklmnopqrstuvwxy"


def installation(secret: str) -> Installation:
    return Installation(client_key=CLIENT, shared_secret=secret,
                        base_url="https://acme.atlassian.net", display_url=None,
                        installed_at=datetime.now(UTC))


@pytest.fixture
async def service(postgres_url: str) -> AsyncIterator[tuple[Container, AsyncTestClient[Litestar],
                                                            PgTenantStore]]:
    container = bootstrap(a_settings(database=postgres_url, worker="off"))
    other = PgDatabase(postgres_url, SecretBox((TEST_FERNET_KEY,)))  # "another machine"
    elsewhere = PgTenantStore(other)
    await elsewhere.upsert_installed(installation(FIRST))
    try:
        async with AsyncTestClient(app=create_app(container)) as client:
            yield container, client, elsewhere
    finally:
        await other.aclose()
        container.close()


BODIES = {
    "relevant": json.dumps(issue_updated_body("status")).encode(),
    "ignored": json.dumps(issue_updated_body("status", webhookEvent="jira:worklog_updated")
                          ).encode(),
    "malformed": b'{"webhookEvent": "jira:issue_updated"}',
}


async def post(client: AsyncTestClient[Litestar], secret: str, kind: str,
               delivery_id: str) -> tuple[int, object]:
    headers, raw = signed_delivery(CLIENT, secret, BODIES[kind], delivery_id=delivery_id)
    response = await client.post(PATH, content=raw, headers=headers)
    return response.status_code, response.json()


def recorded(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT delivery_id FROM deliveries ORDER BY id")]


async def test_W1_s9_a_rotation_elsewhere_is_honoured_by_the_next_request_whatever_the_body(
    service: tuple[Container, AsyncTestClient[Litestar], PgTenantStore], postgres_url: str,
) -> None:
    container, client, elsewhere = service
    assert await post(client, FIRST, "relevant", "d-1") == (
        202, {"status": "accepted", "delivery": "d-1"})
    assert await post(client, FIRST, "relevant", "d-1") == (200, {"status": "duplicate"})
    assert container.remembered_tenants is not None  # the one-round-trip path is in use

    previous = FIRST
    for n, kind in enumerate(BODIES):  # each kind as the very next request after a rotation
        assert (await post(client, previous, "relevant", f"warm-{n}"))[0] in (200, 202)
        fresh = f"rotated-{n}-" + SECOND
        await elsewhere.upsert_installed(installation(fresh))  # L4 on another machine
        status, _ = await post(client, previous, kind, f"old-{kind}")
        assert status == 401, kind
        previous = fresh
    await elsewhere.upsert_installed(installation(SECOND))
    assert await post(client, SECOND, "relevant", "d-2") == (
        202, {"status": "accepted", "delivery": "d-2"})
    assert (await post(client, SECOND, "ignored", "d-3"))[0] == 200
    assert (await post(client, SECOND, "malformed", "d-4"))[0] == 400
    # Nothing of the refused requests.
    assert recorded(postgres_url) == ["d-1", "warm-0", "warm-1", "warm-2", "d-2"]


async def test_L5_s9_an_uninstall_elsewhere_is_honoured_by_the_next_request(
    service: tuple[Container, AsyncTestClient[Litestar], PgTenantStore], postgres_url: str,
) -> None:
    _, client, elsewhere = service
    for n, kind in enumerate(BODIES):  # each kind as the very next request after it
        await elsewhere.upsert_installed(installation(FIRST))
        assert (await post(client, FIRST, "relevant", f"d-{n}"))[0] == 202
        await elsewhere.mark_uninstalled(CLIENT)
        status, _ = await post(client, FIRST, kind, f"after-{kind}")
        assert status == 401, kind
    assert recorded(postgres_url) == ["d-0", "d-1", "d-2"]


async def test_W1_an_unknown_or_forged_token_is_refused_and_nothing_recorded(
    service: tuple[Container, AsyncTestClient[Litestar], PgTenantStore], postgres_url: str,
) -> None:
    _, client, _ = service
    assert (await post(client, FIRST, "relevant", "d-1"))[0] == 202  # remembered now
    assert (await post(client, "not-the-secret-" * 4, "relevant", "forged"))[0] == 401
    headers, raw = signed_delivery("nobody", FIRST, BODIES["relevant"], delivery_id="nobody")
    assert (await client.post(PATH, content=raw, headers=headers)).status_code == 401
    assert recorded(postgres_url) == ["d-1"]


SLOW_INSERTS = """
CREATE FUNCTION sj_test_slow() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN PERFORM pg_sleep(3); RETURN NEW; END $$;
CREATE TRIGGER sj_test_slow BEFORE INSERT ON deliveries
FOR EACH ROW EXECUTE FUNCTION sj_test_slow();
"""


async def test_W10_s9_a_statement_past_the_statement_timeout_is_503_and_nothing_written(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """#16: the insert of a delivery runs for 3 s (a trigger sleeping: no lock is waited on,
    so lock_timeout cannot end it — only statement_timeout can). The pool's statement timeout
    (shortened here from its 10 s) cancels it: 503 with Retry-After, nothing recorded, and
    the same connection serves the next delivery once the statement is fast again."""
    import time

    from adapters.postgres import database as pg_module

    monkeypatch.setattr(pg_module, "STATEMENT_TIMEOUT_MS", 300)
    other = PgDatabase(postgres_url, SecretBox((TEST_FERNET_KEY,)))
    await PgTenantStore(other).upsert_installed(installation(FIRST))
    await other.aclose()
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(SLOW_INSERTS)  # type: ignore[arg-type]
    container = bootstrap(a_settings(database=postgres_url, worker="off", database_pool_size="1"))
    try:
        async with AsyncTestClient(app=create_app(container)) as client:
            headers, raw = signed_delivery(CLIENT, FIRST, BODIES["relevant"], delivery_id="d-1")
            started = time.monotonic()
            response = await client.post(PATH, content=raw, headers=headers)
            took = time.monotonic() - started
            assert response.status_code == 503, response.text
            assert response.headers["retry-after"] == "1"
            assert took < 2.5  # cancelled, not waited out
            assert recorded(postgres_url) == []
            with psycopg.connect(postgres_url, autocommit=True) as conn:
                conn.execute("DROP TRIGGER sj_test_slow ON deliveries")
            assert await post(client, FIRST, "relevant", "d-1") == (
                202, {"status": "accepted", "delivery": "d-1"})
            assert recorded(postgres_url) == ["d-1"]
    finally:
        await container.close_pools()
        container.close()
