"""§10 pages in-process: the configure page and the issue glance, their POSTs, every refusal.

The app runs with in-memory stores and the real httpx Sentry adapter talking to the fake
Sentry on loopback, so "nothing was sent to Sentry" is what the fake Sentry received."""

from __future__ import annotations

import re
import warnings
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from adapters.http.app import create_app
from adapters.memory.clock import FixedClock
from adapters.memory.inbox import MemoryInbox
from adapters.memory.sync_store import MemorySyncStore
from adapters.outbound.sentry import HttpSentryApi, sentry_http_client
from adapters.wiring import Container
from core.connect.pages import mint_action_token
from core.describe import CONFIGURE_PATH, ISSUE_GLANCE_PATH, STATIC_PATH
from core.model.bindings import Binding, Link
from core.model.host_patterns import parse_host_patterns
from core.model.sync import Kind, Outcome
from core.model.tenant import Installation, Tenant
from core.pages.configure import ORG_NOT_FOUND, SENTRY_UNREACHABLE, TOKEN_REFUSED
from core.pages.glance import GLANCE_MESSAGES, GLANCE_UNREACHABLE
from ports.inbox import NewDelivery
from ports.sync_store import JournalEntry, NewAction
from tests.support.builders import a_fake_container, a_settings
from tests.support.connect_tokens import hs256_token
from tests.support.fake_sentry import Answer, FakeSentry
from tests.support.pages import (
    ADMIN_ACCOUNT,
    JIRA_PAGE_PARAMS,
    OTHER_ACCOUNT,
    context_token,
    page_claims,
    page_url,
    signed_page_url,
)

LOOPBACK = parse_host_patterns("http://127.0.0.1:*")
CLIENT = "c0ffee00-site-a"
SECRET = "site-a-shared-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
OTHER_CLIENT = "c0ffee00-site-b"
OTHER_SECRET = "site-b-shared-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
SENTRY_TOKEN = "sntrys_site-a-token-that-must-never-leak-0123456789"
BASE = "https://acme.atlassian.net"
DISPLAY = "https://jira.acme.example"
GLANCE_QUERY = "issueKey=APP-1&" + JIRA_PAGE_PARAMS
MARKUP = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@attrs.define
class World:
    client: AsyncTestClient[Litestar]
    container: Container
    clock: FixedClock
    sentry: FakeSentry
    sync: MemorySyncStore
    site: Tenant
    other: Tenant

    def now(self) -> datetime:
        return self.clock.now()

    def configure_url(self, **kwargs: Any) -> str:
        values: dict[str, Any] = {"client_key": CLIENT, "secret": SECRET, "now": self.now(),
                                  "path": CONFIGURE_PATH}
        values.update(kwargs)
        return signed_page_url(**values)

    def glance_url(self, query: str = GLANCE_QUERY, **kwargs: Any) -> str:
        values: dict[str, Any] = {"client_key": CLIENT, "secret": SECRET, "now": self.now(),
                                  "path": ISSUE_GLANCE_PATH, "query": query}
        values.update(kwargs)
        return signed_page_url(**values)

    def headers(self, *, account: str = ADMIN_ACCOUNT, context: str | None = None,
                action: str | None = None) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if context is None:
            context = context_token(client_key=CLIENT, secret=SECRET, now=self.now(),
                                    account_id=account)
        if context:
            headers["Authorization"] = f"JWT {context}"
        if action is None:
            action = mint_action_token(self.site, account, self.now())
        if action:
            headers["X-Action-Token"] = action
        return headers

    async def bind(self, org: str = "acme", token: str = SENTRY_TOKEN) -> None:
        await self.container.admin.bindings.change(
            self.site.id, org, lambda _: Binding(tenant_id=self.site.id, org=org,
                                                 sentry_url=self.sentry.url,
                                                 sentry_token=token))

    async def bindings(self) -> dict[str, Binding]:
        return {b.org: b for b in await self.container.admin.bindings.of_tenant(self.site.id)}

    async def dead_letter(self, tenant: Tenant, error: str = "Sentry refused (400)") -> int:
        now = self.now()
        inbox = self.sync.inbox
        await inbox.record(NewDelivery(tenant_id=tenant.id, delivery_id=f"d-{tenant.id}-{error}",
                                       issue_id="10001", issue_key="APP-1", body=b"{}",
                                       received_at=now))
        [claimed] = await inbox.claim("w", now=now, lease_seconds=30)
        [action] = await self.sync.save_plan(
            claimed, actions=[NewAction(Kind.STATUS, "acme", {"sentry_issue_id": "1"})],
            entries=[], advances=[], at=now)
        entry = JournalEntry(at=now, tenant_id=tenant.id, delivery_id=claimed.delivery_id,
                             issue_key="APP-1", org="acme", kind=Kind.STATUS,
                             outcome=Outcome.DEAD, detail=error)
        await self.sync.bury(action.id, entry=entry, error=error, at=now)
        await self.sync.settle(claimed.id, "w")
        return action.id


@pytest.fixture
async def world(fake_sentry: FakeSentry) -> AsyncIterator[World]:
    clock = FixedClock(datetime.now(UTC).replace(microsecond=0))
    inbox = MemoryInbox()
    sync = MemorySyncStore(inbox)
    settings = a_settings(sentry_hosts="http://127.0.0.1:*", worker="false")
    # The app's lifespan closes the client (`http_client`), on the loop that used it.
    http = sentry_http_client(LOOPBACK)
    container = a_fake_container(settings, clock=clock, inbox=inbox, journal=sync,
                                 sentry=HttpSentryApi(http, 2.0, LOOPBACK), http_client=http)
    site = await container.tenants.upsert_installed(Installation(
        client_key=CLIENT, shared_secret=SECRET, base_url=BASE, display_url=DISPLAY,
        installed_at=clock.now()))
    other = await container.tenants.upsert_installed(Installation(
        client_key=OTHER_CLIENT, shared_secret=OTHER_SECRET,
        base_url="https://other.atlassian.net", display_url=None, installed_at=clock.now()))
    fake_sentry.add_org("acme", SENTRY_TOKEN)
    async with AsyncTestClient(app=create_app(container),
                               base_url="http://testserver.local") as client:
        yield World(client, container, clock, fake_sentry, sync, site, other)


def assert_page_headers(response: Any, ancestors: str) -> None:
    csp = response.headers["content-security-policy"]
    assert f"frame-ancestors {ancestors}" in csp
    assert "script-src 'self' https://connect-cdn.atl-paas.net/all.js;" in csp
    assert "default-src 'none'" in csp and "unsafe-inline" not in csp
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"


def assert_error_page(response: Any, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "Traceback" not in response.text and "File \"" not in response.text
    assert SECRET not in response.text and "jwt=" not in response.text
    assert "frame-ancestors" in response.headers["content-security-policy"]


# -- the configure page ---------------------------------------------------------------------


async def test_section10_configure_page_shows_bindings_journal_and_own_dead_letters(
    world: World,
) -> None:
    await world.bind()
    await world.sync.record([JournalEntry(
        at=world.now(), tenant_id=world.site.id, delivery_id="d-9", issue_key="APP-1",
        org="acme", kind=Kind.STATUS, outcome=Outcome.APPLIED, detail="resolved " + MARKUP)])
    own = await world.dead_letter(world.site, error="Sentry said " + MARKUP)
    foreign = await world.dead_letter(world.other, error="other-site-failure")

    response = await world.client.get(world.configure_url())

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert 'data-org="acme"' in page and world.sentry.url in page
    assert f'data-dead-letter="{own}"' in page
    assert f'data-dead-letter="{foreign}"' not in page and "other-site-failure" not in page
    # Journal details and dead-letter errors are escaped, never markup.
    assert MARKUP not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert_page_headers(response, f"{BASE} {DISPLAY}")


async def test_section10_configure_page_has_no_inline_script_and_no_secret(world: World) -> None:
    await world.bind()
    page = (await world.client.get(world.configure_url())).text
    scripts = re.findall(r"<script\b[^>]*>", page)
    assert scripts and all(" src=" in tag for tag in scripts)
    assert re.search(r"<script\b[^>]*>(?!</script>)", page) is None  # no script body
    assert "https://connect-cdn.atl-paas.net/all.js" in page
    assert SECRET not in page and SENTRY_TOKEN not in page
    assert re.search(r"\son[a-z]+=", page) is None  # no inline event handlers
    # The action token is in the page, bound to this site and user.
    match = re.search(r'data-action-token="([^"]+)"', page)
    assert match and match.group(1) == mint_action_token(world.site, ADMIN_ACCOUNT, world.now())


async def test_section10_every_field_has_a_label(world: World) -> None:
    await world.bind()
    page = (await world.client.get(world.configure_url())).text
    ids = re.findall(r'<(?:input|select)\b[^>]*\bid="([^"]+)"', page)
    assert ids
    for field_id in ids:
        assert f'<label for="{field_id}"' in page, field_id


# -- page-load refusals (401 HTML, never a stack trace) -------------------------------------


def tampered(url: str) -> str:
    return url.replace("lic=none", "lic=active")  # a parameter the qsh covers


@pytest.mark.parametrize("case", [
    "no-jwt", "other-site-secret", "wrong-qsh", "tampered-query", "expired", "unknown-site",
    "context-qsh", "two-jwts", "header-and-query", "lives-too-long", "glance-token-on-configure",
    "garbage", "alg-none",
])
async def test_section10_page_load_refusals_are_401_error_pages(world: World, case: str) -> None:
    now = world.now()
    headers: dict[str, str] = {}
    if case == "no-jwt":
        url = f"{CONFIGURE_PATH}?{JIRA_PAGE_PARAMS}"
    elif case == "other-site-secret":
        url = world.configure_url(secret=OTHER_SECRET)
    elif case == "wrong-qsh":
        url = world.configure_url(qsh="0" * 64)
    elif case == "tampered-query":
        url = tampered(world.configure_url())
    elif case == "expired":
        url = world.configure_url(now=datetime.fromtimestamp(now.timestamp() - 600, UTC))
    elif case == "unknown-site":
        url = world.configure_url(client_key="nobody", secret=SECRET)
    elif case == "context-qsh":
        url = world.configure_url(qsh="context-qsh")
    elif case == "two-jwts":
        url = world.configure_url() + "&jwt=" + world.configure_url().rsplit("jwt=", 1)[1]
    elif case == "header-and-query":
        url = world.configure_url()
        headers["Authorization"] = "JWT " + context_token(client_key=CLIENT, secret=SECRET,
                                                         now=now)
    elif case == "lives-too-long":
        url = world.configure_url(exp=int(now.timestamp()) + 7200)
    elif case == "glance-token-on-configure":
        token = world.glance_url().rsplit("jwt=", 1)[1]
        url = f"{CONFIGURE_PATH}?{JIRA_PAGE_PARAMS}&jwt={token}"
    elif case == "garbage":
        url = f"{CONFIGURE_PATH}?jwt=not.a.token"
    else:  # alg-none: an unsigned token
        from tests.support.connect_tokens import unsigned_token

        claims = page_claims(client_key=CLIENT, now=now, path=CONFIGURE_PATH,
                             query=JIRA_PAGE_PARAMS)
        url = page_url(CONFIGURE_PATH, JIRA_PAGE_PARAMS, unsigned_token(claims, {"alg": "none"}))
    response = await world.client.get(url, headers=headers)
    assert_error_page(response, 401)
    assert world.sentry.requests == []


async def test_section10_an_uninstalled_site_cannot_open_its_pages(world: World) -> None:
    url = world.configure_url()
    await world.container.tenants.mark_uninstalled(CLIENT)
    assert_error_page(await world.client.get(url), 401)


async def test_section10_configure_page_needs_a_user_in_the_token(world: World) -> None:
    response = await world.client.get(world.configure_url(account_id=None))
    assert_error_page(response, 401)


async def test_section10_the_page_url_with_a_base_path_is_checked_relative_to_it(
    fake_sentry: FakeSentry,
) -> None:
    """§4.1: the qsh is computed relative to the base URL's path, the real one of the page."""
    clock = FixedClock(datetime.now(UTC).replace(microsecond=0))
    settings = a_settings(base_url="https://apps.example.com/sentry", worker="false")
    container = a_fake_container(settings, clock=clock)
    await container.tenants.upsert_installed(Installation(
        client_key=CLIENT, shared_secret=SECRET, base_url=BASE, display_url=None,
        installed_at=clock.now()))
    async with AsyncTestClient(app=create_app(container)) as client:
        good = signed_page_url(client_key=CLIENT, secret=SECRET, now=clock.now(),
                               path=CONFIGURE_PATH, base_path="/sentry")
        assert (await client.get("/sentry" + good)).status_code == 200
        # A token whose qsh covers the full path (base path not removed) is refused.
        claims = page_claims(client_key=CLIENT, now=clock.now(),
                             path="/sentry" + CONFIGURE_PATH, query=JIRA_PAGE_PARAMS)
        bad = page_url(CONFIGURE_PATH, JIRA_PAGE_PARAMS, hs256_token(claims, SECRET))
        assert (await client.get("/sentry" + bad)).status_code == 401


# -- page POSTs: context token + action token -----------------------------------------------


def bind_body(**values: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"sentry_token": SENTRY_TOKEN, "sync_status": True,
                            "sync_assignee": False, "skip_archived": False,
                            "resolution_strategy": "resolve"}
    body.update(values)
    return body


async def test_section10_bind_from_the_page_tries_sentry_once_then_saves(world: World) -> None:
    response = await world.client.post(
        f"{CONFIGURE_PATH}orgs/acme/", json=bind_body(sentry_url=world.sentry.url),
        headers=world.headers())
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["status"] == "saved" and answer["binding"]["sentry_token"] == "***"
    assert SENTRY_TOKEN not in response.text
    binding = (await world.bindings())["acme"]
    assert (binding.sentry_url, binding.sentry_token, binding.sync_assignee) == (
        world.sentry.url, SENTRY_TOKEN, False)
    [check] = world.sentry.requests
    assert (check.method, check.path) == ("GET", FakeSentry.org_path("acme"))
    assert check.authorization == f"Bearer {SENTRY_TOKEN}"
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(("case", "status"), [
    ("no-authorization", 401),
    ("page-load-jwt-instead-of-context-token", 401),
    ("context-token-of-another-site-secret", 401),
    ("context-token-without-sub", 401),
    ("expired-context-token", 401),
    ("jwt-in-query-string", 401),
    ("no-action-token", 403),
    ("action-token-of-another-user", 403),
    ("action-token-of-another-site", 403),
    ("expired-action-token", 403),
    ("forged-action-token", 403),
    ("two-action-tokens", 403),
])
async def test_section10_page_post_refusals_change_nothing_and_send_nothing(
    world: World, case: str, status: int
) -> None:
    now = world.now()
    path = f"{CONFIGURE_PATH}orgs/acme/"
    headers = world.headers()
    if case == "no-authorization":
        del headers["Authorization"]
    elif case == "page-load-jwt-instead-of-context-token":
        claims = page_claims(client_key=CLIENT, now=now, path=path, query="", method="POST")
        headers["Authorization"] = "JWT " + hs256_token(claims, SECRET)
    elif case == "context-token-of-another-site-secret":
        headers["Authorization"] = "JWT " + context_token(client_key=CLIENT,
                                                         secret=OTHER_SECRET, now=now)
    elif case == "context-token-without-sub":
        headers["Authorization"] = "JWT " + context_token(client_key=CLIENT, secret=SECRET,
                                                         now=now, account_id=None)
    elif case == "expired-context-token":
        headers["Authorization"] = "JWT " + context_token(
            client_key=CLIENT, secret=SECRET,
            now=datetime.fromtimestamp(now.timestamp() - 1200, UTC))
    elif case == "jwt-in-query-string":
        path += "?jwt=" + headers.pop("Authorization").removeprefix("JWT ")
    elif case == "no-action-token":
        del headers["X-Action-Token"]
    elif case == "action-token-of-another-user":
        headers["X-Action-Token"] = mint_action_token(world.site, OTHER_ACCOUNT, now)
    elif case == "action-token-of-another-site":
        headers["X-Action-Token"] = mint_action_token(world.other, ADMIN_ACCOUNT, now)
    elif case == "expired-action-token":
        headers["X-Action-Token"] = mint_action_token(
            world.site, ADMIN_ACCOUNT, datetime.fromtimestamp(now.timestamp() - 901, UTC))
    elif case == "forged-action-token":
        real = mint_action_token(world.site, ADMIN_ACCOUNT, now)
        site, expires, account, mac = real.split(".")
        headers["X-Action-Token"] = f"{site}.{int(expires) + 86400}.{account}.{mac}"
    else:
        token = headers.pop("X-Action-Token")
        headers["X-Action-Token"] = token
        response = await world.client.post(
            path, json=bind_body(sentry_url=world.sentry.url),
            headers=[*headers.items(), ("X-Action-Token", token)])
        assert response.status_code == status
        assert await world.bindings() == {} and world.sentry.requests == []
        return
    response = await world.client.post(path, json=bind_body(sentry_url=world.sentry.url),
                                       headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert set(response.json()) == {"detail"}
    assert SECRET not in response.text
    assert await world.bindings() == {}
    assert world.sentry.requests == []


async def test_section10_a_context_token_alone_never_unbinds_or_retries(world: World) -> None:
    await world.bind()
    letter = await world.dead_letter(world.site)
    headers = world.headers(action="")
    unbind = await world.client.post(f"{CONFIGURE_PATH}orgs/acme/unbind/", json={},
                                     headers=headers)
    retry = await world.client.post(f"{CONFIGURE_PATH}dead-letters/{letter}/retry/", json={},
                                    headers=headers)
    assert (unbind.status_code, retry.status_code) == (403, 403)
    assert "acme" in await world.bindings()
    assert [d.id for d in await world.sync.dead_letters()] == [letter]


async def test_section10_page_post_that_is_not_json_is_415_before_anything(world: World) -> None:
    response = await world.client.post(f"{CONFIGURE_PATH}orgs/acme/", content=b"org=acme",
                                       headers={"Content-Type": "text/plain"})
    assert response.status_code == 415


@pytest.mark.parametrize(("answer", "message"), [
    (Answer(401, {"detail": "<b>Invalid token from Sentry itself</b>"}), TOKEN_REFUSED),
    (Answer(404, {"detail": "<b>Sentry's own 404 words</b>"}), ORG_NOT_FOUND),
    (Answer(503, {"detail": "<b>Sentry's own outage words</b>"}), SENTRY_UNREACHABLE),
])
async def test_section10_bind_refused_by_sentry_saves_nothing_and_says_a_fixed_message(
    world: World, answer: Answer, message: str
) -> None:
    world.sentry.script("GET", FakeSentry.org_path("acme"), answer)
    response = await world.client.post(
        f"{CONFIGURE_PATH}orgs/acme/", json=bind_body(sentry_url=world.sentry.url),
        headers=world.headers())
    assert response.status_code == 400
    assert response.json() == {"detail": message}
    assert await world.bindings() == {}


async def test_section10_bind_with_a_wrong_token_is_refused_by_the_real_check(
    world: World,
) -> None:
    response = await world.client.post(
        f"{CONFIGURE_PATH}orgs/acme/",
        json=bind_body(sentry_url=world.sentry.url, sentry_token="sntrys_wrong"),
        headers=world.headers())
    assert response.json() == {"detail": TOKEN_REFUSED}
    assert await world.bindings() == {}


async def test_section10_bind_refusals_before_sentry_bad_org_missing_token_disallowed_host(
    world: World,
) -> None:
    cases = [
        ("Bad_Org", bind_body(sentry_url=world.sentry.url)),
        ("acme", {"sentry_url": world.sentry.url}),  # creating needs a token
        ("acme", bind_body(sentry_url="http://10.0.0.7:9000")),  # §8.3: not an allowed host
        ("acme", bind_body(sentry_url=world.sentry.url, status_map={})),  # admin API only
    ]
    for org, body in cases:
        response = await world.client.post(f"{CONFIGURE_PATH}orgs/{org}/", json=body,
                                           headers=world.headers())
        assert response.status_code == 400, (org, body, response.text)
    assert await world.bindings() == {}
    assert world.sentry.requests == []


async def test_section10_edit_a_new_sentry_url_needs_the_token_again(world: World) -> None:
    await world.bind()
    moved = world.sentry.url.replace("127.0.0.1", "127.0.0.1") + "/elsewhere"
    response = await world.client.post(
        f"{CONFIGURE_PATH}orgs/acme/", json={"sentry_url": moved, "sentry_token": ""},
        headers=world.headers())
    assert response.status_code == 400
    assert "sentry_token" in response.json()["detail"]
    assert (await world.bindings())["acme"].sentry_url == world.sentry.url
    assert world.sentry.requests == []


async def test_section10_edit_of_settings_only_keeps_the_token_and_calls_no_one(
    world: World,
) -> None:
    await world.bind()
    response = await world.client.post(
        f"{CONFIGURE_PATH}orgs/acme/",
        json={"sentry_url": world.sentry.url, "sync_status": False,
              "resolution_strategy": "resolve_next_release"},
        headers=world.headers())
    assert response.status_code == 200, response.text
    binding = (await world.bindings())["acme"]
    assert (binding.sync_status, binding.resolution_strategy.value, binding.sentry_token) == (
        False, "resolve_next_release", SENTRY_TOKEN)
    assert world.sentry.requests == []


async def test_section10_unbind_from_the_page(world: World) -> None:
    await world.bind()
    response = await world.client.post(f"{CONFIGURE_PATH}orgs/acme/unbind/", json={},
                                       headers=world.headers())
    assert response.status_code == 200
    assert await world.bindings() == {}
    again = await world.client.post(f"{CONFIGURE_PATH}orgs/acme/unbind/", json={},
                                    headers=world.headers())
    assert again.status_code == 404


async def test_section10_retry_own_dead_letter_but_another_sites_is_404(world: World) -> None:
    own = await world.dead_letter(world.site)
    foreign = await world.dead_letter(world.other, error="other")
    refused = await world.client.post(f"{CONFIGURE_PATH}dead-letters/{foreign}/retry/",
                                      json={}, headers=world.headers())
    assert refused.status_code == 404
    assert {d.id for d in await world.sync.dead_letters()} == {own, foreign}
    accepted = await world.client.post(f"{CONFIGURE_PATH}dead-letters/{own}/retry/", json={},
                                       headers=world.headers())
    assert accepted.status_code == 202 and accepted.json() == {"id": own, "status": "queued"}
    assert [d.id for d in await world.sync.dead_letters()] == [foreign]


# -- the issue glance ---------------------------------------------------------------------


async def link(world: World, issue_key: str, *ids: str, org: str = "acme") -> None:
    await world.container.admin.links.replace(Link(world.site.id, org, issue_key, ids))


async def test_section10_glance_lists_linked_sentry_issues_escaped(world: World) -> None:
    await world.bind()
    world.sentry.add_issue("acme", "4711", title=MARKUP, short_id="ACME-1A", status="resolved")
    await link(world, "APP-1", "4711")
    response = await world.client.get(world.glance_url())
    assert response.status_code == 200, response.text
    page = response.text
    assert "ACME-1A" in page and "resolved" in page
    assert f'href="{world.sentry.url}/organizations/acme/issues/4711/"' in page
    assert MARKUP not in page and "&lt;script&gt;" in page
    assert "data-action-token" not in page  # the glance changes nothing
    assert_page_headers(response, f"{BASE} {DISPLAY}")


async def test_section10_glance_shows_a_message_when_sentry_fails(world: World) -> None:
    await world.bind()
    await link(world, "APP-1", "4711")
    world.sentry.script("GET", FakeSentry.issue_path("acme", "4711"),
                        Answer(502, {"detail": "<b>upstream words</b>"}))
    response = await world.client.get(world.glance_url())
    assert response.status_code == 200
    assert GLANCE_UNREACHABLE in response.text and "upstream words" not in response.text
    assert "saved" not in response.text


async def test_section10_glance_without_links_and_with_a_bad_issue_key(world: World) -> None:
    await world.bind()
    empty = await world.client.get(world.glance_url())
    assert empty.status_code == 200 and "No Sentry issues are linked to APP-1" in empty.text
    bad_query = "issueKey=%3Cb%3E&" + JIRA_PAGE_PARAMS
    bad = await world.client.get(world.glance_url(query=bad_query))
    assert_error_page(bad, 400)
    assert "<b>" not in bad.text
    assert world.sentry.requests == []


async def test_section10_static_files_are_served_with_their_types(world: World) -> None:
    script = await world.client.get(f"{STATIC_PATH}/pages.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert script.headers["x-content-type-options"] == "nosniff"
    assert "AP.context" in script.text or "context.getToken" in script.text
    assert (await world.client.get(f"{STATIC_PATH}/pages.css")).status_code == 200
    assert (await world.client.get(f"{STATIC_PATH}/nothing.js")).status_code == 404


async def test_section10_an_unexpected_failure_is_an_html_page_without_a_trace(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(tenant_id: int) -> list[Binding]:
        raise RuntimeError("internal detail " + SENTRY_TOKEN)

    monkeypatch.setattr(world.container.admin.bindings, "of_tenant", broken)
    for url in (world.configure_url(), world.glance_url()):
        response = await world.client.get(url)
        assert_error_page(response, 500)
        assert "internal error" in response.text
        assert "internal detail" not in response.text and SENTRY_TOKEN not in response.text


# -- review (#17): more hostile inputs ------------------------------------------------------


@pytest.mark.parametrize("hostile", [
    "https://jira.acme.example; script-src * 'unsafe-inline'",
    "https://jira.acme.example 'unsafe-inline' https://evil.example",
    "https://jira.acme.example,https://evil.example",
    "https://evil.example\\@jira.acme.example",
    "https://user:pw@jira.acme.example",
    "javascript:alert(1)//jira.acme.example",
    "https://jira.acme.example%3B%20script-src%20%2A",
    "https://[::1;script-src]/",
    "https://jira.acme.example:99999",
])
async def test_section10_a_hostile_display_url_never_reaches_the_csp_header(
    world: World, hostile: str
) -> None:
    """§10 CSP: frame-ancestors comes from the stored site URLs; a display URL that is not a
    plain http(s) origin adds nothing to the header (no `;`, no extra source, no scheme)."""
    await world.container.tenants.upsert_installed(Installation(
        client_key=CLIENT, shared_secret=SECRET, base_url=BASE, display_url=hostile,
        installed_at=world.now()))
    for url in (world.configure_url(), world.glance_url()):
        response = await world.client.get(url)
        assert response.status_code == 200, response.text
        csp = response.headers["content-security-policy"]
        assert csp.endswith(f"frame-ancestors {BASE}"), csp
        assert csp.count(";") == 7 and "unsafe" not in csp and "evil" not in csp
        assert "*" not in csp and "javascript" not in csp


async def test_section10_a_site_of_another_transport_cannot_open_pages_or_post(
    world: World,
) -> None:
    """§10, §8.0: pages are for Connect sites; a webhook site (no shared secret) signing a
    token with its webhook secret under its client key is a 401, never a 500."""
    from core.model.credentials import ApiToken, JiraFlavor
    from core.model.tenant import NewSite

    webhook_secret = "webhook-site-secret-0123456789-abcdefghijklmnopq"
    site = await world.container.tenants.register_site(NewSite(
        base_url="https://hooks.atlassian.net", flavor=JiraFlavor.CLOUD,
        credential=ApiToken("bot@hooks.example", "api-token"), webhook_secret=webhook_secret,
        registered_at=world.now()))
    for path in (CONFIGURE_PATH, ISSUE_GLANCE_PATH):
        query = GLANCE_QUERY if path == ISSUE_GLANCE_PATH else JIRA_PAGE_PARAMS
        url = signed_page_url(client_key=site.client_key, secret=webhook_secret,
                              now=world.now(), path=path, query=query)
        assert_error_page(await world.client.get(url), 401)
    context = context_token(client_key=site.client_key, secret=webhook_secret, now=world.now())
    response = await world.client.post(
        f"{CONFIGURE_PATH}orgs/acme/", json=bind_body(sentry_url=world.sentry.url),
        headers=world.headers(context=context))
    assert response.status_code == 401
    assert await world.container.admin.bindings.of_tenant(site.id) == []
    assert world.sentry.requests == []


@pytest.mark.parametrize("query", [
    "issueKey=APP-2&" + JIRA_PAGE_PARAMS,  # another issue than the one Jira signed
    "issueKey=APP-1&issueKey=APP-2&" + JIRA_PAGE_PARAMS,  # a second key appended
])
async def test_section10_glance_issue_key_is_covered_by_the_qsh(world: World, query: str) -> None:
    """§10/§4.1: a user cannot point a signed glance URL at another issue."""
    await world.bind()
    await link(world, "APP-2", "4711")
    token = world.glance_url().rsplit("jwt=", 1)[1]  # signed for issueKey=APP-1
    response = await world.client.get(f"{ISSUE_GLANCE_PATH}?{query}&jwt={token}")
    assert_error_page(response, 401)
    assert world.sentry.requests == []


@pytest.mark.parametrize("iss", [CLIENT.upper(), CLIENT[:-1], CLIENT + " ", CLIENT + "%"])
async def test_section10_a_client_key_that_only_resembles_the_site_is_refused(
    world: World, iss: str
) -> None:
    """§4.2: `iss` names a site exactly (no case folding, prefix or trailing space)."""
    assert_error_page(await world.client.get(world.configure_url(client_key=iss)), 401)
    context = context_token(client_key=iss, secret=SECRET, now=world.now())
    response = await world.client.post(f"{CONFIGURE_PATH}orgs/acme/unbind/", json={},
                                       headers=world.headers(context=context))
    assert response.status_code == 401


async def test_section10_page_posts_after_an_uninstall_or_a_rotation_change_nothing(
    world: World,
) -> None:
    """§10 with L4/L5: after a secret rotation the old page's action token is void (403, even
    with a fresh context token); after an uninstall every POST is 401. Nothing changes."""
    await world.bind()
    letter = await world.dead_letter(world.site)
    old_action = mint_action_token(world.site, ADMIN_ACCOUNT, world.now())
    rotated = "site-a-rotated-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
    await world.container.tenants.upsert_installed(Installation(
        client_key=CLIENT, shared_secret=rotated, base_url=BASE, display_url=DISPLAY,
        installed_at=world.now()))
    fresh_context = context_token(client_key=CLIENT, secret=rotated, now=world.now())
    posts = [(f"{CONFIGURE_PATH}orgs/acme/unbind/", {}),
             (f"{CONFIGURE_PATH}dead-letters/{letter}/retry/", {}),
             (f"{CONFIGURE_PATH}orgs/acme/", bind_body(sentry_url=world.sentry.url))]
    for path, body in posts:
        response = await world.client.post(
            path, json=body, headers=world.headers(context=fresh_context, action=old_action))
        assert response.status_code == 403, (path, response.text)
    await world.container.tenants.mark_uninstalled(CLIENT)
    for path, body in posts:
        response = await world.client.post(path, json=body, headers=world.headers(
            context=fresh_context, action=old_action))
        assert response.status_code == 401, (path, response.text)
    assert "acme" in await world.bindings()
    assert [d.id for d in await world.sync.dead_letters()] == [letter]
    assert world.sentry.requests == []


async def test_section10_a_megabyte_sentry_title_is_cut_on_the_glance(world: World) -> None:
    """§10 / §8.3: the real adapter reads a ~900 kB title from the fake Sentry; the panel shows
    a bounded, escaped cut of it."""
    await world.bind()
    world.sentry.add_issue("acme", "4711", title="<b>" * 300_000, short_id="ACME-1A")
    await link(world, "APP-1", "4711")
    response = await world.client.get(world.glance_url())
    assert response.status_code == 200, response.text
    assert len(response.text) < 20_000 and "ACME-1A" in response.text
    assert "<b>" not in response.text and "&lt;b&gt;" in response.text


@pytest.mark.parametrize("kind", [
    "rs256-lifecycle-token", "issue-updated-token", "hs512-token",
    "hs256-signed-with-the-client-key", "another-sites-secret-with-this-iss",
])
async def test_section10_other_connect_tokens_never_open_a_page_or_change_anything(
    world: World, kind: str
) -> None:
    """§4.2/§10 token confusion: a lifecycle token (RS256, even with the page's qsh or
    context-qsh), a webhook's issue-updated token, another HMAC algorithm, a token keyed by
    the public clientKey or by another site's secret is refused on page loads and on page
    POSTs: 401, nothing stored, nothing sent to Sentry."""
    import jwt as pyjwt

    from core.describe import ISSUE_UPDATED_PATH
    from tests.support.connect_tokens import rs256_token, tenant_claims

    now = world.now()
    post_path = f"{CONFIGURE_PATH}orgs/acme/"

    def sign(claims: dict[str, Any]) -> str:
        if kind == "rs256-lifecycle-token":
            return rs256_token({**claims, "aud": "https://app.example"})
        if kind == "issue-updated-token":
            return hs256_token(tenant_claims(iss=CLIENT, now=now, method="POST",
                                             path=ISSUE_UPDATED_PATH), SECRET)
        if kind == "hs512-token":  # the right secret, the wrong algorithm
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # PyJWT: a 58-byte key is short for SHA-512
                return pyjwt.encode(claims, SECRET, algorithm="HS512")
        if kind == "hs256-signed-with-the-client-key":
            return hs256_token(claims, CLIENT)
        return hs256_token(claims, OTHER_SECRET)

    load = page_claims(client_key=CLIENT, now=now, path=CONFIGURE_PATH, query=JIRA_PAGE_PARAMS)
    page = page_url(CONFIGURE_PATH, JIRA_PAGE_PARAMS, sign(load))
    assert_error_page(await world.client.get(page), 401)
    context = {**load, "qsh": "context-qsh", "exp": load["iat"] + 900}
    response = await world.client.post(post_path, json=bind_body(sentry_url=world.sentry.url),
                                       headers=world.headers(context=sign(context)))
    assert response.status_code == 401, response.text
    assert await world.bindings() == {} and world.sentry.requests == []


@pytest.mark.parametrize("shape", ["jwt-first", "jwt-in-the-middle", "jwt-name-escaped",
                                   "same-values-other-escapes"])
async def test_section10_page_qsh_is_the_raw_query_minus_jwt_wherever_it_stands(
    world: World, shape: str
) -> None:
    """§4.1/§10: the `jwt` parameter is left out of the qsh wherever it stands and however its
    name is escaped; escapes that decode to the same values are the same query."""
    token = world.glance_url().rsplit("jwt=", 1)[1]  # signed for GLANCE_QUERY
    if shape == "jwt-first":
        url = f"{ISSUE_GLANCE_PATH}?jwt={token}&{GLANCE_QUERY}"
    elif shape == "jwt-in-the-middle":
        url = f"{ISSUE_GLANCE_PATH}?issueKey=APP-1&jwt={token}&{JIRA_PAGE_PARAMS}"
    elif shape == "jwt-name-escaped":
        url = f"{ISSUE_GLANCE_PATH}?{GLANCE_QUERY}&jw%74={token}"
    else:
        url = f"{ISSUE_GLANCE_PATH}?issue%4Bey=APP%2D1&{JIRA_PAGE_PARAMS}&jwt={token}"
    response = await world.client.get(url)
    assert response.status_code == 200, response.text


async def test_section10_page_posts_allow_no_cross_origin_caller(world: World) -> None:
    """§10 CSRF: a page POST needs `Authorization` and a JSON body, which another origin can
    only send after a CORS preflight; the app answers no preflight with an allow header."""
    for path in (f"{CONFIGURE_PATH}orgs/acme/", f"{CONFIGURE_PATH}orgs/acme/unbind/"):
        response = await world.client.options(path, headers={
            "Origin": "https://evil.example", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,x-action-token"})
        assert not any(name.lower().startswith("access-control-allow")
                       for name in response.headers), response.headers
    form = await world.client.post(f"{CONFIGURE_PATH}orgs/acme/unbind/", content=b"a=1",
                                   headers={"Content-Type": "application/x-www-form-urlencoded",
                                            "Origin": "https://evil.example"})
    assert form.status_code == 415


async def test_section10_glance_for_a_binding_whose_sentry_host_is_no_longer_allowed(
    world: World,
) -> None:
    """§10 with §8.3: after the operator narrows SENTRY_JIRA_SENTRY_HOSTS, a stored binding on
    a host no longer allowed shows a fixed message in the panel (no connection, no 500)."""
    await world.container.admin.bindings.change(
        world.site.id, "acme", lambda _: Binding(tenant_id=world.site.id, org="acme",
                                                 sentry_url="https://sentry.example.com",
                                                 sentry_token=SENTRY_TOKEN))
    await link(world, "APP-1", "4711")
    response = await world.client.get(world.glance_url())
    assert response.status_code == 200, response.text
    assert "ACME" not in response.text and SENTRY_TOKEN not in response.text
    shown = re.search(r'notice-warning" role="status">([^<]*)<', response.text)
    assert shown and shown.group(1) in GLANCE_MESSAGES, response.text
    assert "saved" not in shown.group(1)  # the glance saves nothing: no bind wording
    assert world.sentry.requests == []
