"""§10 pages against a real `sentry-jira serve` over bare loopback sockets: what a client
library would normalise away (escaped path segments, `;jwt=` in the path, two `jwt`
parameters, an escaped `jwt` name), hostile stored site URLs and the page POSTs' refusals.

The qsh covers the raw request line (§4.1), so one signed page URL opens exactly that page:
every other spelling that routes to it is refused before anything is read or sent.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import attrs
import httpx
import pytest

from adapters.config import load_settings
from adapters.sqlite.tenants import SqliteTenantStore
from adapters.wiring import open_database
from core.describe import CONFIGURE_PATH
from core.model.tenant import Installation
from tests.support.fake_sentry import FakeSentry
from tests.support.pages import (
    ADMIN_ACCOUNT,
    JIRA_PAGE_PARAMS,
    OTHER_ACCOUNT,
    context_token,
    signed_page_url,
)
from tests.support.process import free_port, running_server
from tests.support.raw_http import RawResponse, connect, read_response, request_head
from tests.support.sync_e2e import admin, sync_env

pytestmark = pytest.mark.e2e

CLIENT = "hostile-pages-site"
SECRET = "hostile-pages-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
SENTRY_TOKEN = "sntrys_hostile-pages-token-0123456789"
FRAMER = "http://127.0.0.1:1"  # the site's base URL (only its origin reaches the CSP)
HOSTILE_DISPLAY = "https://jira.example; script-src * 'unsafe-inline'"


@attrs.define
class Served:
    port: int
    url: str
    tenant_id: int
    sentry: FakeSentry
    log: Path

    def get(self, target: str) -> RawResponse:
        sock = connect(self.port)
        try:
            sock.sendall(request_head("GET", target, [("Connection", "close")]))
            return read_response(sock, deadline=time.monotonic() + 10)
        finally:
            sock.close()


def install(env: dict[str, str]) -> int:
    database = open_database(load_settings(env))
    try:
        tenant = asyncio.run(SqliteTenantStore(database).upsert_installed(Installation(
            client_key=CLIENT, shared_secret=SECRET, base_url=FRAMER,
            display_url=HOSTILE_DISPLAY, installed_at=datetime.now(UTC))))
    finally:
        database.close()
    return tenant.id


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("pages-hostile")
    with FakeSentry() as sentry:
        sentry.add_org("acme", SENTRY_TOKEN)
        env = sync_env(tmp, worker="false")
        tenant_id = install(env)
        port = free_port()
        with running_server(env, port=port, log=tmp / "serve.log") as (url, _):
            yield Served(port, url, tenant_id, sentry, tmp / "serve.log")


def signed() -> tuple[str, str]:
    """A page URL as Jira frames it, and its token."""
    url = signed_page_url(client_key=CLIENT, secret=SECRET, now=datetime.now(UTC),
                          path=CONFIGURE_PATH)
    return url, url.rsplit("jwt=", 1)[1]


def test_section10_one_signed_url_opens_exactly_one_spelling_of_the_page(
    served: Served,
) -> None:
    """§4.1/§10 on the wire: the signed spelling (and an escaped `jwt` name, left out of the
    qsh like `jwt`) opens the page; escaped or doubled path segments, `;jwt=` in the path and
    two `jwt` parameters never do."""
    url, token = signed()
    ok = served.get(url)
    assert ok.status == 200, ok.body[:300]
    assert served.get(f"{CONFIGURE_PATH}?{JIRA_PAGE_PARAMS}&jw%74={token}").status == 200
    path = CONFIGURE_PATH  # /extensions/jira/configure/
    refused = {
        "escaped-letter": f"/extensions/jira/%63onfigure/?{JIRA_PAGE_PARAMS}&jwt={token}",
        "escaped-slash": f"/extensions/jira%2Fconfigure/?{JIRA_PAGE_PARAMS}&jwt={token}",
        "dot-segment": f"{path}./?{JIRA_PAGE_PARAMS}&jwt={token}",
        "double-slash": f"/{path}?{JIRA_PAGE_PARAMS}&jwt={token}",
        "jwt-in-path": f"{path};jwt={token}?{JIRA_PAGE_PARAMS}",
        "two-jwts": f"{url}&jwt={token}",
        "jwt-and-escaped-jwt": f"{url}&jw%74={token}",
        "jwt-without-query-params": f"{path}?jwt={token}",
    }
    for name, target in refused.items():
        answer = served.get(target)
        assert answer.status in (401, 404), (name, answer.status)
        assert b"data-action-token" not in answer.body, name
    assert served.sentry.requests == []


def test_section10_stored_site_urls_frame_the_page_and_nothing_else(served: Served) -> None:
    """§10 CSP from stored tenant URLs: a display URL with `;` and extra sources adds nothing
    to the header that Chromium would read; the base URL's origin frames the page."""
    answer = served.get(signed()[0])
    assert answer.status == 200
    csp = answer.headers["content-security-policy"]
    assert csp.endswith(f"frame-ancestors {FRAMER}"), csp
    assert "unsafe-inline" not in csp and "script-src *" not in csp and "jira.example" not in csp
    assert answer.headers["referrer-policy"] == "no-referrer"


def test_section10_page_posts_without_the_pages_action_token_change_nothing(
    served: Served,
) -> None:
    """§10 on the wire: a context token alone (any user of the site has one), or with the
    action token of the page another user was shown, is 403; nothing bound, Sentry not asked.
    The same POST with this user's action token is accepted (the refusal is not a bug)."""
    page = served.get(signed()[0])
    match = re.search(rb'data-action-token="([^"]+)"', page.body)
    assert match, page.body[:300]
    action = match.group(1).decode()
    body = {"sentry_url": served.sentry.url, "sentry_token": SENTRY_TOKEN}
    target = served.url + CONFIGURE_PATH + "orgs/acme/"

    def post(account: str, action_token: str | None) -> httpx.Response:
        headers = {"Authorization": "JWT " + context_token(
            client_key=CLIENT, secret=SECRET, now=datetime.now(UTC), account_id=account)}
        if action_token is not None:
            headers["X-Action-Token"] = action_token
        return httpx.post(target, json=body, headers=headers, timeout=10)

    assert post(ADMIN_ACCOUNT, None).status_code == 403
    assert post(OTHER_ACCOUNT, action).status_code == 403  # another user, this page's token
    assert post(ADMIN_ACCOUNT, action + "x").status_code == 403
    bound = f"/api/tenants/{served.tenant_id}/orgs/acme"
    assert admin(served.url, "GET", bound).status_code == 404
    assert served.sentry.requests == []
    accepted = post(ADMIN_ACCOUNT, action)
    assert accepted.status_code == 200, accepted.text
    assert len(served.sentry.requests) == 1
    assert admin(served.url, "GET", bound).status_code == 200


def test_section10_the_serve_log_holds_no_page_token_or_secret(served: Served) -> None:
    url, token = signed()
    served.get(url)
    served.get(f"/extensions/jira/%63onfigure/?jwt={quote(token, safe='')}")
    log = served.log.read_text()
    assert token not in log and SECRET not in log and SENTRY_TOKEN not in log
