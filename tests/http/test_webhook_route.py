"""`POST /extensions/jira/webhook/{site_id}/` in process on real SQLite, through the event-loop
lookup (#13; SPEC §8.0, §8.1, §5 order, W2–W4, W10): every 401 the same, with nothing recorded
and nothing sent out; rotation overlap on an injected clock; the delivery id is the body's hash,
whatever identifier header comes with it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from adapters.http.app import create_app
from adapters.memory.clock import FixedClock
from adapters.wiring import Container, bootstrap
from core.jira_webhooks.verify import REFUSED
from core.model.credentials import ApiToken, JiraFlavor, PersonalAccessToken
from core.model.tenant import Installation, NewSite, Tenant
from tests.support.builders import a_settings
from tests.support.hub_signature import hub_signature, hub_signed_delivery
from tests.support.webhooks import issue_updated_body, signed_delivery, webhook_token

SECRET_A = "site-a-webhook-secret-0123456789abcdefghijk"
SECRET_B = "site-b-webhook-secret-0123456789abcdefghijk"
CONNECT_SECRET = "connect-shared-secret-0123456789-abcdefghijklmnop"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def path(site_id: object) -> str:
    return f"/extensions/jira/webhook/{site_id}/"


@attrs.define
class World:
    container: Container
    client: AsyncTestClient[Litestar]
    clock: FixedClock
    site_a: Tenant
    site_b: Tenant
    connect: Tenant

    async def deliver(self, site_id: object, raw: bytes, headers: dict[str, str]) -> Any:
        return await self.client.post(path(site_id), content=raw, headers=headers)

    def recorded(self) -> list[tuple[int, str]]:
        assert self.container.database is not None
        return self.container.database.read_sync(lambda db: [
            (row[0], row[1]) for row in db.execute(
                "SELECT tenant_id, delivery_id FROM deliveries ORDER BY id").fetchall()])


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    # No Jira host is reachable from here: any egress would fail the no-egress assertions
    # loudly (and the Jira client is not even asked: see `assert_no_jira_call`).
    container = bootstrap(a_settings(tmp_path, worker="false"))
    clock = FixedClock(NOW)
    container.clock = clock
    tenants = container.tenants
    site_a = await tenants.register_site(NewSite(
        base_url="https://a.atlassian.net", flavor=JiraFlavor.CLOUD,
        credential=ApiToken("bot@a.example", "token-a"), webhook_secret=SECRET_A,
        registered_at=NOW))
    site_b = await tenants.register_site(NewSite(
        base_url="https://b.atlassian.net", flavor=JiraFlavor.CLOUD,
        credential=PersonalAccessToken("token-b"), webhook_secret=SECRET_B, registered_at=NOW))
    connect = await tenants.upsert_installed(Installation(
        client_key="connect-client", shared_secret=CONNECT_SECRET,
        base_url="https://c.atlassian.net", display_url=None, installed_at=NOW))
    try:
        async with AsyncTestClient(app=create_app(container)) as client:
            yield World(container, client, clock, site_a, site_b, connect)
    finally:
        container.close()


def relevant(changelog_id: str = "10001") -> bytes:
    body = issue_updated_body("status")
    body["changelog"]["id"] = changelog_id
    return json.dumps(body).encode()


def signed(raw: bytes, secret: str, **extra: str) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Hub-Signature": hub_signature(raw, secret),
            **extra}


def assert_refused(response: Any) -> None:
    assert response.status_code == 401, response.text
    assert response.json() == {"detail": REFUSED}


# -- accepted ---------------------------------------------------------------------------------


async def test_8_1_a_signed_relevant_delivery_is_accepted_under_the_body_hash(world: World) -> None:
    headers, raw = hub_signed_delivery(SECRET_A, issue_updated_body("status"),
                                       identifier="cloud-identifier-1")
    response = await world.deliver(world.site_a.id, raw, headers)
    assert response.status_code == 202, response.text
    from core.jira_webhooks.verify import webhook_delivery_id

    assert response.json() == {"status": "accepted", "delivery": webhook_delivery_id(raw)}
    assert world.recorded() == [(world.site_a.id, webhook_delivery_id(raw))]


async def test_8_1_the_same_body_under_a_new_identifier_is_a_duplicate(world: World) -> None:
    raw = relevant()
    first = await world.deliver(world.site_a.id, raw, signed(
        raw, SECRET_A, **{"X-Atlassian-Webhook-Identifier": "first"}))
    replay = await world.deliver(world.site_a.id, raw, signed(
        raw, SECRET_A, **{"X-Atlassian-Webhook-Identifier": "second-never-seen"}))
    bare = await world.deliver(world.site_a.id, raw, signed(raw, SECRET_A))  # Data Center: none
    assert first.status_code == 202
    assert (replay.status_code, replay.json()) == (200, {"status": "duplicate"})
    assert (bare.status_code, bare.json()) == (200, {"status": "duplicate"})
    assert len(world.recorded()) == 1


async def test_8_1_upper_case_hex_verifies(world: World) -> None:
    raw = relevant()
    value = hub_signature(raw, SECRET_A)
    response = await world.deliver(world.site_a.id, raw, {
        "Content-Type": "application/json", "X-Hub-Signature": "sha256=" + value[7:].upper()})
    assert response.status_code == 202, response.text


async def test_W4_W2_after_verification_the_body_rules_are_the_connect_ones(world: World) -> None:
    summary = issue_updated_body("status")
    summary["changelog"]["items"] = [{"field": "summary", "fromString": "a", "toString": "b"}]
    raw = json.dumps(summary).encode()
    ignored = await world.deliver(world.site_a.id, raw, signed(raw, SECRET_A))
    assert (ignored.status_code, ignored.json()) == (200, {"status": "ignored"})
    for bad in (b"{not json", b"[]", json.dumps({"webhookEvent": "jira:issue_updated"}).encode()):
        response = await world.deliver(world.site_a.id, bad, signed(bad, SECRET_A))
        assert response.status_code == 400, response.text
        # The same bodies unsigned are 401: the signature is checked before any parse.
        assert_refused(await world.deliver(world.site_a.id, bad,
                                           {"Content-Type": "application/json"}))
    assert world.recorded() == []


# -- every refusal the same 401, nothing recorded -------------------------------------------


def signature_cases(raw: bytes) -> list[list[tuple[str, str]]]:
    good = hub_signature(raw, SECRET_A)
    return [
        [],                                                              # no header
        [("X-Hub-Signature", "")],
        [("X-Hub-Signature", good[7:])],                                 # no `sha256=`
        [("X-Hub-Signature", "sha1=" + good[7:47])],                     # another method
        [("X-Hub-Signature", "sha512=" + good[7:])],
        [("X-Hub-Signature", good[:-1])],                                # wrong length
        [("X-Hub-Signature", good + "0")],
        [("X-Hub-Signature", good[:-1] + ("0" if good[-1] != "0" else "1"))],  # wrong digest
        [("X-Hub-Signature", good + " ")],
        [("X-Hub-Signature", " " + good)],
        [("X-Hub-Signature", good), ("X-Hub-Signature", good)],          # two headers
        [("X-Hub-Signature", f"{good}, {good}")],                        # two in one
        [("X-Hub-Signature", hub_signature(raw, SECRET_B))],             # site B's secret
        [("X-Hub-Signature", hub_signature(raw, ""))],                   # empty secret
        [("X-Hub-Signature", hub_signature(raw + b" ", SECRET_A))],      # another body
    ]


async def test_8_1_every_signature_failure_is_the_same_401_with_nothing_recorded(
    world: World,
) -> None:
    raw = relevant()
    for case, headers in enumerate(signature_cases(raw)):
        sent = [("Content-Type", "application/json"), *headers]
        response = await world.client.post(path(world.site_a.id), content=raw,
                                           headers=sent)  # type: ignore[arg-type]
        assert response.status_code == 401, (case, response.text)
        assert response.json() == {"detail": REFUSED}, case
    assert world.recorded() == []


async def test_8_1_a_delivery_for_site_a_signed_with_site_b_secret_is_401(world: World) -> None:
    raw = relevant()
    assert_refused(await world.deliver(world.site_a.id, raw, signed(raw, SECRET_B)))
    assert_refused(await world.deliver(world.site_b.id, raw, signed(raw, SECRET_A)))
    assert world.recorded() == []


@pytest.mark.parametrize("site_id", ["999", "0", "abc", "01", "-1", "1.0", "9" * 19, "9" * 40,
                                     "%31"])
async def test_8_1_unknown_or_non_integer_site_ids_are_the_same_401(
    world: World, site_id: str,
) -> None:
    raw = relevant()
    for secret in (SECRET_A, SECRET_B, ""):
        assert_refused(await world.deliver(site_id, raw, signed(raw, secret)))
    assert world.recorded() == []


async def test_8_0_a_connect_tenants_id_on_this_route_is_401(world: World) -> None:
    raw = relevant()
    for secret in (CONNECT_SECRET, SECRET_A):
        assert_refused(await world.deliver(world.connect.id, raw, signed(raw, secret)))
    # …and the Connect route does not take a webhook site's stand-in clientKey either.
    headers, body = signed_delivery(world.site_a.client_key, SECRET_A, issue_updated_body())
    response = await world.client.post("/extensions/jira/issue-updated/", content=body,
                                       headers=headers)
    assert response.status_code == 401
    token = webhook_token(world.site_a.client_key, "")
    response = await world.client.post("/extensions/jira/issue-updated/", content=body, headers={
        "Content-Type": "application/json", "Authorization": f"JWT {token}"})
    assert response.status_code == 401
    assert world.recorded() == []


async def test_8_1_a_removed_site_is_401(world: World) -> None:
    raw = relevant()
    assert (await world.deliver(world.site_a.id, raw, signed(raw, SECRET_A))).status_code == 202
    await world.container.tenants.remove_site(world.site_a.id)
    again = relevant("10002")
    assert_refused(await world.deliver(world.site_a.id, again, signed(again, SECRET_A)))
    assert len(world.recorded()) == 1


# -- rotation overlap on the injected clock ---------------------------------------------------


async def test_8_1_after_a_rotation_both_secrets_verify_for_one_hour_then_only_the_new(
    world: World,
) -> None:
    new = "rotated-webhook-secret-0123456789abcdefghijk"
    await world.container.tenants.rotate_webhook_secret(world.site_a.id, new, now=NOW)
    changelog = iter(range(20000, 20100))

    async def status(secret: str) -> int:
        raw = relevant(str(next(changelog)))
        return int((await world.deliver(world.site_a.id, raw, signed(raw, secret))).status_code)

    assert (await status(SECRET_A), await status(new)) == (202, 202)
    world.clock.advance(timedelta(hours=1).total_seconds() - 1)
    assert (await status(SECRET_A), await status(new)) == (202, 202)
    world.clock.advance(1)  # the hour is over: strictly before `previous_valid_until` only
    assert (await status(SECRET_A), await status(new)) == (401, 202)
    assert await status(SECRET_B) == 401


# -- the transport checks come first (§5, §8.0) ----------------------------------------------


async def test_8_0_transport_checks_405_415_413_before_the_signature(
    world: World, tmp_path: Path,
) -> None:
    raw = relevant()
    got = await world.client.get(path(world.site_a.id))
    assert got.status_code == 405 and "POST" in got.headers.get("allow", "")
    unsigned_text = await world.deliver(world.site_a.id, raw, {"Content-Type": "text/plain"})
    assert unsigned_text.status_code == 415
    with_charset = await world.deliver(world.site_a.id, raw, signed(
        raw, SECRET_A) | {"Content-Type": "application/json; charset=utf-8"})
    assert with_charset.status_code == 202
    too_big = b"x" * (world.container.settings.max_body_bytes + 1)
    response = await world.deliver(world.site_a.id, too_big, {"Content-Type": "application/json"})
    assert response.status_code == 413
    assert len(world.recorded()) == 1


async def test_8_1_paths_beside_the_route_are_404(world: World) -> None:
    raw = relevant()
    headers = signed(raw, SECRET_A)
    for where in ("/extensions/jira/webhook/", "/extensions/jira/webhook",
                  f"/extensions/jira/webhook/{world.site_a.id}/extra/",
                  f"/extensions/jira/webhook/x/{world.site_a.id}/"):
        response = await world.client.post(where, content=raw, headers=headers)
        assert response.status_code == 404, (where, response.text)
        assert set(response.json()) == {"detail"}
    without_slash = await world.client.post(f"/extensions/jira/webhook/{world.site_a.id}",
                                            content=raw, headers=headers)
    assert without_slash.status_code == 202
    assert len(world.recorded()) == 1


async def test_8_1_the_identifier_header_is_logged_at_debug_escaped_and_cut_short(
    world: World, caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    raw = relevant()
    forged = "\u2028\" event=admin_token_leaked " + "x" * 400
    caplog.set_level(logging.DEBUG, logger="sentry_jira.webhook")
    response = await world.client.post(path(world.site_a.id), content=raw, headers=[
        ("Content-Type", "application/json"), ("X-Hub-Signature", hub_signature(raw, SECRET_A)),
        ("X-Atlassian-Webhook-Identifier", forged.encode("utf-8"))])  # type: ignore[list-item]
    assert response.status_code == 202
    (record,) = [r for r in caplog.records if r.name == "sentry_jira.webhook"]
    assert record.levelno == logging.DEBUG
    line = record.getMessage()
    assert "\u2028" not in line and "\n" not in line and "x" * 200 not in line
    assert SECRET_A not in line and response.json()["delivery"] in line
    # Unverified requests log nothing about their headers.
    caplog.clear()
    assert_refused(await world.client.post(path(world.site_a.id), content=raw, headers={
        "Content-Type": "application/json", "X-Atlassian-Webhook-Identifier": "unverified"}))
    assert [r for r in caplog.records if "unverified" in r.getMessage()] == []
