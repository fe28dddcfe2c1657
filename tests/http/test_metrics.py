"""`GET /metrics` in process on real SQLite (#18; SPEC §3 metrics, §7): real signed deliveries
on the Connect and webhook routes move the counters; the text parses with prometheus-client's
own parser; no tenant, site, key or secret appears in it. By default (§3 "no auth") the route
answers anyone and never reads the Authorization header; with SENTRY_JIRA_METRICS=token it
refuses a scrape without its token (401, nothing counted or read); off, it does not exist (404)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from prometheus_client.parser import text_string_to_metric_families

from adapters.http.app import create_app
from adapters.wiring import Container, bootstrap
from core.model.credentials import ApiToken, JiraFlavor
from core.model.tenant import Installation, NewSite, Tenant
from tests.support.builders import ADMIN_TOKEN, a_settings
from tests.support.hub_signature import hub_signed_delivery
from tests.support.log_capture import captured_log
from tests.support.raw_asgi import raw_request
from tests.support.webhooks import issue_updated_body, signed_delivery

METRICS_TOKEN = "metrics-token-for-tests-0123456789"
SITE_SECRET = "site-webhook-secret-0123456789abcdefghijk"
CONNECT_SECRET = "connect-shared-secret-0123456789-abcdefghijklmnop"
CLIENT_KEY = "connect-client-key-for-metrics"
NOW = datetime.now(UTC)


@attrs.define
class World:
    container: Container
    client: AsyncTestClient[Litestar]
    site: Tenant
    connect: Tenant

    async def scrape(self, token: str | None = METRICS_TOKEN) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await self.client.get("/metrics", headers=headers)
        assert response.status_code == 200, response.text
        return {"text": response.text, "samples": samples(response.text),
                "content_type": response.headers["content-type"]}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the exposition, parsed by prometheus-client's parser."""
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict[Any, float], name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture(autouse=True)
def fresh_refusal_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test its own `metrics_refused` token bucket: the process-wide one (burst 20, then
    1 a second) would drop the line a test expects once earlier tests used the burst."""
    import logging

    from adapters.http import metrics as metrics_route
    from adapters.logs import RefusalLog

    monkeypatch.setattr(metrics_route, "refusals",
                        RefusalLog(logging.getLogger("sentry_jira.refused")))


@pytest.fixture
def make_world(tmp_path: Path) -> Callable[..., Any]:
    def make(**env: str) -> Any:
        return _world(tmp_path, env)

    return make


async def _setup(container: Container) -> tuple[Tenant, Tenant]:
    tenants = container.tenants
    site = await tenants.register_site(NewSite(
        base_url="https://metrics-site.atlassian.net", flavor=JiraFlavor.CLOUD,
        credential=ApiToken("bot@metrics.example", "site-api-token-secret"),
        webhook_secret=SITE_SECRET, registered_at=NOW))
    connect = await tenants.upsert_installed(Installation(
        client_key=CLIENT_KEY, shared_secret=CONNECT_SECRET,
        base_url="https://metrics-connect.atlassian.net", display_url=None, installed_at=NOW))
    return site, connect


class _world:
    def __init__(self, tmp_path: Path, env: dict[str, str]) -> None:
        self.settings = a_settings(tmp_path, worker="false", **env)

    async def __aenter__(self) -> World:
        self.container = bootstrap(self.settings)
        site, connect = await _setup(self.container)
        self.client_cm = AsyncTestClient(app=create_app(self.container))
        client = await self.client_cm.__aenter__()
        return World(self.container, client, site, connect)

    async def __aexit__(self, *exc: object) -> None:
        await self.client_cm.__aexit__(None, None, None)
        self.container.close()


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    """Token mode (the opt-in hardening): a metrics token and an admin token configured."""
    async with _world(tmp_path, {"metrics": "token", "metrics_token": METRICS_TOKEN,
                                 "admin_token": ADMIN_TOKEN}) as w:
        yield w


def relevant(changelog_id: str) -> bytes:
    body = issue_updated_body("status")
    body["changelog"]["id"] = changelog_id
    return json.dumps(body).encode()


async def deliver_story(w: World) -> None:
    """Connect: accepted, duplicate, forged (401), bad body (400); webhook: accepted, forged."""
    headers, raw = signed_delivery(CLIENT_KEY, CONNECT_SECRET, relevant("1"), delivery_id="d-1")
    assert (await w.client.post("/extensions/jira/issue-updated/", content=raw,
                                headers=headers)).status_code == 202
    assert (await w.client.post("/extensions/jira/issue-updated/", content=raw,
                                headers=headers)).status_code == 200
    forged, raw = signed_delivery(CLIENT_KEY, "not-the-shared-secret-0123456789abcdef",
                                  relevant("2"), delivery_id="d-2")
    assert (await w.client.post("/extensions/jira/issue-updated/", content=raw,
                                headers=forged)).status_code == 401
    bad, raw = signed_delivery(CLIENT_KEY, CONNECT_SECRET, b"[]", delivery_id="d-3")
    assert (await w.client.post("/extensions/jira/issue-updated/", content=raw,
                                headers=bad)).status_code == 400
    headers, raw = hub_signed_delivery(SITE_SECRET, relevant("3"))
    assert (await w.client.post(f"/extensions/jira/webhook/{w.site.id}/", content=raw,
                                headers=headers)).status_code == 202
    headers, raw = hub_signed_delivery("a-forged-webhook-secret-0123456789", relevant("4"))
    assert (await w.client.post(f"/extensions/jira/webhook/{w.site.id}/", content=raw,
                                headers=headers)).status_code == 401


# -- counts ----------------------------------------------------------------------------------


async def test_3_deliveries_count_by_transport_and_answer(world: World) -> None:
    await deliver_story(world)
    found = (await world.scrape())["samples"]
    counts = {
        (transport, answer): value(found, "sentry_jira_deliveries_total",
                                   transport=transport, answer=answer)
        for transport in ("connect", "webhook")
        for answer in ("accepted", "duplicate", "401", "400")
    }
    assert counts == {
        ("connect", "accepted"): 1, ("connect", "duplicate"): 1, ("connect", "401"): 1,
        ("connect", "400"): 1, ("webhook", "accepted"): 1, ("webhook", "duplicate"): 0,
        ("webhook", "401"): 1, ("webhook", "400"): 0,
    }
    # §7: the acknowledgement histogram saw every answered request, refusals included.
    assert value(found, "sentry_jira_ack_seconds_count", transport="connect") == 4
    assert value(found, "sentry_jira_ack_seconds_count", transport="webhook") == 2
    assert value(found, "sentry_jira_ack_seconds_bucket", transport="connect", le="+Inf") == 4
    assert value(found, "sentry_jira_ack_seconds_sum", transport="connect") > 0


async def test_3_database_gauges_show_the_queue(world: World) -> None:
    await deliver_story(world)  # two deliveries accepted, no worker in this process
    found = (await world.scrape())["samples"]
    assert value(found, "sentry_jira_queue_depth") == 2
    assert value(found, "sentry_jira_dead_letters") == 0
    assert value(found, "sentry_jira_oldest_pending_seconds") >= 0
    assert 0 <= value(found, "sentry_jira_gauges_age_seconds") < 5


async def test_3_the_exposition_is_prometheus_text_without_tenant_data(world: World) -> None:
    await deliver_story(world)
    scraped = await world.scrape()
    assert scraped["content_type"].startswith("text/plain; version=")
    assert scraped["content_type"].count("charset=utf-8") == 1
    text: str = scraped["text"]
    for private in (CLIENT_KEY, CONNECT_SECRET, SITE_SECRET, METRICS_TOKEN, ADMIN_TOKEN,
                    "metrics-site", "metrics-connect", "site-api-token-secret",
                    "bot@metrics.example", f'"{world.site.id}"', f'"{world.connect.id}"'):
        assert private not in text, private
    labels = {name for (_, pairs) in scraped["samples"] for name, _ in pairs}
    assert labels <= {"transport", "answer", "target", "status", "kind", "outcome", "le"}


async def test_3_two_apps_in_one_process_count_apart(tmp_path: Path) -> None:
    first = bootstrap(a_settings(tmp_path / "a", worker="false", metrics="public"))
    second = bootstrap(a_settings(tmp_path / "b", worker="false", metrics="public"))
    try:
        await _setup(first)
        w = World(first, AsyncTestClient(app=create_app(first)), *(await _setup(second)))
        async with w.client:
            headers, raw = signed_delivery(CLIENT_KEY, "wrong-secret-0123456789abcdefghijkl",
                                           relevant("9"))
            assert (await w.client.post("/extensions/jira/issue-updated/", content=raw,
                                        headers=headers)).status_code == 401
        async with AsyncTestClient(app=create_app(second)) as other:
            text = (await other.get("/metrics")).text
        assert value(samples(text), "sentry_jira_deliveries_total",
                     transport="connect", answer="401") == 0
    finally:
        first.close()
        second.close()


# -- access ----------------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer not-the-metrics-token-0123456789"},
    {"Authorization": f"Basic {METRICS_TOKEN}"},
    {"Authorization": METRICS_TOKEN},
])
async def test_3_a_scrape_without_the_token_is_401_and_logged_without_it(
    world: World, headers: dict[str, str],
) -> None:
    with captured_log() as log:
        response = await world.client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert "sentry_jira" not in response.text
    assert METRICS_TOKEN not in response.text
    [line] = log.named("metrics_refused")
    # The same fields as every refusal line (docs/security.md): route, method, client, reason.
    assert (line["route"], line["method"], line["client"]) == ("/metrics", "GET", "testclient")
    assert line["reason"]
    assert METRICS_TOKEN not in json.dumps(log.events())
    assert "not-the-metrics-token" not in json.dumps(log.events())


@pytest.mark.parametrize("second", [f"Bearer {METRICS_TOKEN}", f"Bearer {ADMIN_TOKEN}",
                                    "Bearer not-the-metrics-token-0123456789"])
@pytest.mark.parametrize("valid_first", [True, False])
async def test_3_two_authorization_headers_are_401(
    world: World, second: str, valid_first: bool,
) -> None:
    """Whichever comes first, and even when both are valid: never 'the one that matches'."""
    valid = ("Authorization", f"Bearer {METRICS_TOKEN}")
    other = ("Authorization", second)
    with captured_log() as log:
        status, body = await raw_request(world.client.app, "GET", "/metrics",
                                     [valid, other] if valid_first else [other, valid])
    assert status == 401
    assert b"sentry_jira" not in body
    [line] = log.named("metrics_refused")
    assert line["reason"] == "more than one Authorization header"


async def test_3_the_admin_token_also_scrapes(world: World) -> None:
    await world.scrape(ADMIN_TOKEN)


class CountingInbox:
    """The container's real inbox, counting the database-wide reads (`stats`)."""

    def __init__(self, inbox: Any) -> None:
        self.inbox = inbox
        self.stats_calls = 0

    async def stats(self, now: datetime) -> Any:
        self.stats_calls += 1
        return await self.inbox.stats(now)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inbox, name)


async def test_3_a_refused_scrape_reads_nothing(world: World) -> None:
    """401 before the gauges are read: a refused scrape (no token, a wrong one, a smuggled
    second header) costs the database nothing; the first authorised one reads it once.
    (Review: the earlier form compared the gauges' age after the next authorised scrape,
    which a read on the refused scrape could not change: it passed with the check after
    the read.)"""
    counting = CountingInbox(world.container.inbox)
    world.container.inbox = counting
    for headers in ([], [("Authorization", "Bearer not-the-metrics-token-0123456789")],
                    [("Authorization", f"Bearer {METRICS_TOKEN}"),
                     ("Authorization", f"Bearer {METRICS_TOKEN}")]):
        assert (await raw_request(world.client.app, "GET", "/metrics", headers))[0] == 401
    assert counting.stats_calls == 0
    await world.scrape()
    assert counting.stats_calls == 1


@pytest.mark.parametrize("env", [
    {"metrics": "token"},  # token mode, but no metrics or admin token configured: no route
    {"metrics": "off", "metrics_token": METRICS_TOKEN, "admin_token": ADMIN_TOKEN},
])
async def test_3_metrics_off_is_404(make_world: Callable[..., Any], env: dict[str, str]) -> None:
    async with make_world(**env) as w:
        assert (await w.client.get("/metrics")).status_code == 404
        assert (await w.client.get("/metrics", headers={
            "Authorization": f"Bearer {METRICS_TOKEN}"})).status_code == 404


async def test_3_metrics_public_needs_no_token(make_world: Callable[..., Any]) -> None:
    async with make_world(metrics="public", metrics_token=METRICS_TOKEN) as w:
        await deliver_story(w)
        found = (await w.scrape(token=None))["samples"]
        assert value(found, "sentry_jira_deliveries_total",
                     transport="webhook", answer="accepted") == 1


def test_3_1_metrics_settings_are_validated(tmp_path: Path) -> None:
    from adapters.config import ConfigError

    with pytest.raises(ConfigError, match="SENTRY_JIRA_METRICS: expected one of public, token"):
        a_settings(tmp_path, metrics="sometimes")
    with pytest.raises(ConfigError, match="SENTRY_JIRA_METRICS_TOKEN"):
        a_settings(tmp_path, metrics_token="short")
    # §3: public by default, whatever tokens are configured; token and off only when asked.
    assert a_settings(tmp_path).metrics_route == "public"
    assert a_settings(tmp_path, admin_token=ADMIN_TOKEN,
                      metrics_token=METRICS_TOKEN).metrics_route == "public"
    assert a_settings(tmp_path, metrics="token").metrics_route == "off"  # no token to check
    assert a_settings(tmp_path, metrics="TOKEN", admin_token=ADMIN_TOKEN).metrics_route == "token"
    assert a_settings(tmp_path, metrics="token",
                      metrics_token=METRICS_TOKEN).metrics_route == "token"
    assert a_settings(tmp_path, metrics="off", admin_token=ADMIN_TOKEN).metrics_route == "off"
    assert "metrics-token" not in repr(a_settings(tmp_path, metrics_token=METRICS_TOKEN))


# -- the default: public (§3 "GET /metrics (no auth, no per-tenant labels)") -----------------


@pytest.mark.parametrize("env", [
    {},
    {"admin_token": ADMIN_TOKEN, "metrics_token": METRICS_TOKEN},  # tokens alone change nothing
], ids=["no tokens", "tokens configured"])
async def test_3_by_default_metrics_answers_without_auth_and_holds_no_tenant_data(
    make_world: Callable[..., Any], env: dict[str, str],
) -> None:
    async with make_world(**env) as w:
        assert w.container.settings.metrics == "public"
        await deliver_story(w)
        with captured_log() as log:
            response = await w.client.get("/metrics")
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        found = samples(response.text)
        assert value(found, "sentry_jira_deliveries_total", transport="connect",
                     answer="accepted") == 1
        for private in (CLIENT_KEY, CONNECT_SECRET, SITE_SECRET, METRICS_TOKEN, ADMIN_TOKEN,
                        "metrics-site", "metrics-connect", "site-api-token-secret",
                        "bot@metrics.example", f'"{w.site.id}"', f'"{w.connect.id}"'):
            assert private not in response.text, private
        labels = {name for (_, pairs) in found for name, _ in pairs}
        assert labels <= {"transport", "answer", "target", "status", "kind", "outcome", "le"}
        assert log.named("metrics_refused") == []


@pytest.mark.parametrize("headers", [
    [("Authorization", "Bearer not-any-token-at-all-0123456789")],
    [("Authorization", "Basic dXNlcjpwYXNz")],
    [("Authorization", "garbage, not a scheme")],
    [("Authorization", "Bearer")],
    [("Authorization", "Bearer one-0123456789abcdef"), ("Authorization", "Bearer two")],
], ids=["wrong bearer", "basic", "garbage", "empty bearer", "two headers"])
async def test_3_by_default_a_bogus_authorization_header_is_not_parsed(
    make_world: Callable[..., Any], headers: list[tuple[str, str]],
) -> None:
    """Public mode never reads the header: whatever it holds, the scrape answers 200 and no
    refusal line is written (a 401 here would mean the header was parsed)."""
    async with make_world(admin_token=ADMIN_TOKEN) as w:
        with captured_log() as log:
            status, body = await raw_request(w.client.app, "GET", "/metrics", headers)
        assert status == 200, body
        assert b"sentry_jira_deliveries_total" in body
        assert log.named("metrics_refused") == []
        assert "not-any-token" not in json.dumps(log.events())


async def test_3_token_mode_refusal_line_names_the_route_with_the_base_path(
    make_world: Callable[..., Any],
) -> None:
    """Review (#18): like every refusal line (adapters/http/errors.py), `metrics_refused` names
    the route as served — base path included — in its `route` field and its message."""
    async with make_world(metrics="token", metrics_token=METRICS_TOKEN,
                          base_url="https://apps.example.com/jira") as w:
        assert (await w.client.get("/metrics")).status_code == 404  # only under the base path
        with captured_log() as log:
            assert (await w.client.get("/jira/metrics")).status_code == 401
        [line] = log.named("metrics_refused")
        assert line["route"] == "/jira/metrics"
        assert line["message"].startswith("refused GET /jira/metrics: ")
        assert (await w.client.get("/jira/metrics", headers={
            "Authorization": f"Bearer {METRICS_TOKEN}"})).status_code == 200
