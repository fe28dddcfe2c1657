"""The `forge` transport end to end (issue #14, SPEC §8.0, §8.2, §A, W2–W10, S1–S8): a real
`sentry-jira serve` process, real sockets; Forge's JWKS, the fake Jira behind the Forge API
gateway (`/ex/jira/<cloud id>`, Bearer app system token on every call) and the fake Sentry,
all on 127.0.0.1.

Story: install event → tenants list (transport forge, installation id) → bind → link → an
`avi:jira:updated:issue` event resolves in Sentry (journal `applied`; Jira's statuses read
with the system token) → an assignee change assigns the mapped Sentry user → a retried
event (same payload, new FIT) is a duplicate → a `selfGenerated` event is ignored → a token
for another route's module key is 401 → search through `apiBaseUrl` → a newer system token
replaces the old one → preUninstall. No token, FIT or system token ever appears in a log
line or a response. Run on SQLite and on PostgreSQL (§9).
"""

from __future__ import annotations

import copy
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest

from tests.support.builders import ADMIN_TOKEN, TEST_FERNET_KEY
from tests.support.fake_jira import FakeJira, FakeJiraSite
from tests.support.fake_sentry import FakeSentry
from tests.support.forge import (
    APP_ID,
    INSTALLATION_ID,
    ForgeSigner,
    JwksServer,
    mint_fit,
    mint_system_token,
)
from tests.support.paths import fixture_json
from tests.support.process import running_server
from tests.support.sync_e2e import admin, bind, journal, sync_env, wait_for

pytestmark = pytest.mark.e2e

ORG = "acme-forge"
ISSUE_KEY = "APP-123"
JANE = "5b10ac8d82e05b22cc7d4ef5"  # the fixture's assignee
MODULE_KEYS = {"issue-updated": "issue-updated-endpoint", "lifecycle": "lifecycle-endpoint",
               "uninstall": "uninstall-endpoint", "keepalive": "keepalive-endpoint"}


@attrs.define(repr=False)
class World:
    url: str
    log: Path
    jwks: JwksServer
    jira: FakeJira
    site: FakeJiraSite
    sentry: FakeSentry
    sentry_token: str
    system_tokens: list[str] = attrs.Factory(list)
    fits: list[str] = attrs.Factory(list)
    bodies: list[bytes] = attrs.Factory(list)

    def call(self, route: str, body: Any = None, *, system_token: str | None = None,
             module_key: str | None = None, **options: Any) -> httpx.Response:
        fit = mint_fit(self.jwks.signer, module_key=module_key or MODULE_KEYS[route],
                       api_base_url=self.site.base_url, **options)
        self.fits.append(fit)
        headers = {"content-type": "application/json", "authorization": f"Bearer {fit}"}
        if system_token is not None:
            headers["x-forge-oauth-system"] = system_token
        response = httpx.post(f"{self.url}/extensions/jira/forge/{route}/",
                              content=json.dumps(body or {}), headers=headers, timeout=15)
        self.bodies.append(response.content)
        return response

    def system_token(self) -> str:
        token = mint_system_token(3600 + len(self.system_tokens))  # each later than the last
        self.system_tokens.append(token)
        self.site.system_tokens[:] = [token]  # Jira accepts only the newest from now on
        return token

    def search(self, tenant_id: int, **params: str) -> httpx.Response:
        response = httpx.get(f"{self.url}/extensions/jira/search/{ORG}/{tenant_id}/",
                             params=params, timeout=15,
                             headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        self.bodies.append(response.content)
        return response


def event(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(fixture_json("forge-issue-updated-event.json"))
    body.update(changes)
    return body


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def world(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """The story on SQLite and on a fresh PostgreSQL database that `serve` migrates (§9)."""
    engine: dict[str, str] = {}
    if request.param == "postgres":
        cluster = request.getfixturevalue("postgres_cluster")
        engine = {"SENTRY_JIRA_DATABASE": cluster.database(migrated=False),
                  "SENTRY_JIRA_SECRET_KEY": TEST_FERNET_KEY}
    tmp = tmp_path_factory.mktemp("forge-story")
    sentry_token = "sntrys_forge-" + secrets.token_urlsafe(24)
    with JwksServer(ForgeSigner("forge-story-key")) as jwks, \
            FakeJira("sentry-jira.forge") as jira, FakeSentry() as sentry:
        site = jira.add_forge_site("forge-site")
        site.add_issue(ISSUE_KEY, "Checkout fails with TypeError")
        site.jql_results['text ~ "checkout"'] = [ISSUE_KEY]
        sentry.add_org(ORG, sentry_token)
        sentry.add_issue(ORG, "4711")
        sentry.add_member(ORG, "42", [("jane@example.com", True)])
        env = sync_env(tmp, forge_app_id=APP_ID, forge_jwks_url=jwks.url,
                       forge_api_hosts="http://127.0.0.1:*", jira_hosts="https://*.atlassian.net")
        env.update(engine)
        log = tmp / "serve.log"
        with running_server(env, log=log) as (url, _):
            yield World(url, log, jwks, jira, site, sentry, sentry_token)


def the_site(world: World) -> dict[str, Any]:
    listed = admin(world.url, "GET", "/api/tenants")
    assert listed.status_code == 200
    world.bodies.append(listed.content)
    [site] = listed.json()
    return dict(site)


def test_8_2_forge_story(world: World) -> None:
    # Install: the lifecycle event creates the site; its system token is kept.
    installed = world.call("lifecycle", {"eventType": "avi:forge:installed:app"},
                           system_token=world.system_token())
    assert installed.status_code == 204, installed.text
    site = the_site(world)
    assert (site["transport"], site["installation_id"], site["status"]) == \
        ("forge", INSTALLATION_ID, "installed")
    assert site["base_url"] == world.site.base_url and site["client_key"] is None
    tenant_id = int(site["id"])

    # Bind and link as for every transport (§8.0).
    bind(world.url, tenant_id, ORG, world.sentry.url, world.sentry_token, {ISSUE_KEY: ["4711"]})

    # A status change into "done" resolves the linked Sentry issue (W4–W9).
    first = world.call("issue-updated", event())
    assert first.status_code == 202, first.text
    delivery = first.json()["delivery"]

    def resolved() -> bool:
        return any(e["delivery"] == delivery and e["kind"] == "status"
                   and e["outcome"] == "applied" for e in journal(world.url, tenant_id))
    wait_for(resolved, what="the status sync")
    puts = world.sentry.requests_to("PUT", FakeSentry.issue_path(ORG, "4711"))
    assert [(p.json, p.authorization) for p in puts] == \
        [({"status": "resolved"}, f"Bearer {world.sentry_token}")]
    statuses = world.jira.requests_to("statuses")
    assert statuses and all(r.verified and r.principal == "forge-app" for r in statuses)
    assert statuses[0].raw_path == f"{world.site.base_path}/rest/api/2/status"

    # An assignee change: the account mapping (§A) names the Sentry user (W5).
    mapped = admin(world.url, "PUT", f"/api/tenants/{tenant_id}/orgs/{ORG}/accounts/{JANE}",
                   {"sentry_user_id": "42"})
    assert mapped.status_code == 200, mapped.text
    assigned = event(timestamp=1764844860000, changelog={"id": "10568", "items": [
        {"field": "assignee", "fieldtype": "jira", "from": None, "fromString": None,
         "to": JANE, "toString": "Jane Doe"}]})
    assigned["issue"]["fields"]["updated"] = "2026-12-04T10:41:00.000+0000"
    second = world.call("issue-updated", assigned)
    assert second.status_code == 202, second.text

    def assigned_in_sentry() -> bool:
        return any(e["delivery"] == second.json()["delivery"] and e["kind"] == "assignee"
                   and e["outcome"] == "applied" for e in journal(world.url, tenant_id))
    wait_for(assigned_in_sentry, what="the assignee sync")
    puts = world.sentry.requests_to("PUT", FakeSentry.issue_path(ORG, "4711"))
    assert [p.json for p in puts] == [{"status": "resolved"}, {"assignedTo": "user:42"}]

    # Forge retries (same payload, a new FIT): a duplicate, nothing written twice.
    retry = world.call("issue-updated", {"payload": event()})
    assert retry.status_code == 200 and retry.json() == {"status": "duplicate"}
    # The app's own writes come back as selfGenerated: ignored.
    echo = world.call("issue-updated", event(selfGenerated=True, timestamp=1764844900000))
    assert echo.status_code == 200 and echo.json() == {"status": "ignored"}
    # A token minted for another route's endpoint is refused on this one.
    crossed = world.call("issue-updated", event(timestamp=1764844999000),
                         module_key=MODULE_KEYS["keepalive"])
    assert crossed.status_code == 401 and set(crossed.json()) == {"detail"}
    assert len(world.sentry.requests_to("PUT", FakeSentry.issue_path(ORG, "4711"))) == 2

    # Search goes to apiBaseUrl with the system token (S3).
    found = world.search(tenant_id, field="externalIssue", query="checkout")
    assert found.status_code == 200, found.text
    assert found.json() == [{"label": f"({ISSUE_KEY}) Checkout fails with TypeError",
                             "value": ISSUE_KEY}]
    last = world.jira.requests[-1]
    assert last.raw_path == f"{world.site.base_path}/rest/api/3/search/jql"
    assert last.headers["authorization"] == f"Bearer {world.system_tokens[0]}"

    # The hourly keep-alive brings a newer system token: used from then on.
    assert world.call("keepalive", system_token=world.system_token()).status_code == 204
    again = world.search(tenant_id, field="externalIssue", query=ISSUE_KEY)
    assert again.status_code == 200 and again.json()[0]["value"] == ISSUE_KEY
    assert world.jira.requests[-1].headers["authorization"] == \
        f"Bearer {world.system_tokens[1]}"

    # preUninstall: the site is uninstalled, its token erased; search is 404 (L7).
    assert world.call("uninstall").status_code == 204
    site = the_site(world)
    assert site["status"] == "uninstalled" and site["transport"] == "forge"
    assert world.search(tenant_id, field="externalIssue", query=ISSUE_KEY).status_code == 404

    # Nothing secret in any response or log line; the start-up line names the transport (§3).
    text = world.log.read_text(encoding="utf-8", errors="replace")
    assert "forge" in next(line for line in text.splitlines() if "transports" in line)
    for secret in [*world.system_tokens, *world.fits, world.sentry_token]:
        assert secret not in text
        assert all(secret.encode() not in body for body in world.bodies)
