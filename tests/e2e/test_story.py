"""The whole story end to end (issue 8): what Jira, Sentry and an admin do, in order, against a
real `sentry-jira serve` process with a fresh database.

Jira is played by a signing key on the install-key server (RS256 lifecycle callbacks) and by
the fake Jira (`tests/support/fake_jira.py`, which verifies every token the app sends it);
Sentry by the fake Sentry (`tests/support/fake_sentry.py`). Everything runs on 127.0.0.1.

The admin-API story is one test per step, sharing one server: a step that finds an earlier
step unfinished is skipped, so the first failure is the one to read. Each step asserts what
the fake Sentry and the fake Jira received, exactly. The CLI story at the end runs a shorter
variant in which every admin step goes through `sentry-jira` commands on the database of a
running server whose admin API is off.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest

from core.describe import ISSUE_UPDATED_PATH as WEBHOOK
from core.describe import page_modules
from core.model.settings import AppSettings
from tests.support.builders import ADMIN_TOKEN, TEST_FERNET_KEY
from tests.support.connect_tokens import (
    INSTALLED,
    UNINSTALLED,
    lifecycle_claims,
    rs256_token,
    signing_key,
)
from tests.support.fake_jira import FakeJira, FakeJiraSite, RecordedRequest
from tests.support.fake_sentry import FakeSentry
from tests.support.key_server import KeyServer, running_key_server
from tests.support.leak_scan import find_leaks
from tests.support.paths import REPO, fixture_json
from tests.support.process import running_server, server_env
from tests.support.sync_e2e import admin, journal, wait_for
from tests.support.webhooks import issue_updated_body, signed_delivery

pytestmark = pytest.mark.e2e

BASE = "https://sentry-jira.example.com"  # the public URL behind the TLS proxy
APP_KEY = "sentry-jira.example.com.jira"  # the default: <host of the base URL>.jira
KID = "story-kid-1"
ORG = "acme"
CLIENT_KEY = fixture_json("connect-installed-body.json")["clientKey"]
FIRST_SECRET = "story-first-shared-secret-" + secrets.token_urlsafe(24)
SECOND_SECRET = "story-second-shared-secret-" + secrets.token_urlsafe(24)
SENTRY_TOKEN = "sntrys_story-" + secrets.token_urlsafe(24)
OTHER_SENTRY_TOKEN = "sntrys_story-other-" + secrets.token_urlsafe(24)

# The Jira issue of the shared fixtures and the people in it.
ISSUE_ID = "20417"
GRACE = "5b10ac8d82e05b22cc7d4ef5"  # the fixture's assignee, e-mail in the payload
ADA = "557058:ada-hides-her-email"  # e-mail hidden in the payload, known to Jira's e-mail API
NOBODY = "557058:app-user-without-mail"
DESCRIPTION = "Syncs Jira issue status and assignee changes to linked Sentry issues."
NEXT_RELEASE = {"status": "resolved", "statusDetails": {"inNextRelease": True}}


def at(minute: int, second: int = 0) -> str:
    """A Jira `updated` time on the morning of the fixtures."""
    return f"2025-11-28T09:{minute:02d}:{second:02d}.000+0000"


def a_delivery(
    kind: str,
    *,
    key: str | None = None,
    updated: str | None = None,
    changelog_id: str | None = None,
    items: list[dict[str, Any]] | None = None,
    assignee: Any = ...,
    project: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A shared webhook fixture with the issue's key, time, changelog or assignee changed."""
    body = issue_updated_body(kind)
    fields = body["issue"]["fields"]
    if key is not None:
        body["issue"]["key"] = key
    if updated is not None:
        fields["updated"] = updated
    if changelog_id is not None:
        body["changelog"]["id"] = changelog_id
    if items is not None:
        body["changelog"]["items"] = items
    if assignee is not ...:
        fields["assignee"] = assignee
    if project is not None:
        fields["project"] = project
    return body


def status_item(frm: str, frm_name: str, to: str, to_name: str) -> dict[str, Any]:
    return {
        "field": "status",
        "fieldtype": "jira",
        "fieldId": "status",
        "from": frm,
        "fromString": frm_name,
        "to": to,
        "toString": to_name,
    }


def assignee_item(to: str | None, to_name: str | None) -> dict[str, Any]:
    return {
        "field": "assignee",
        "fieldtype": "jira",
        "fieldId": "assignee",
        "from": None,
        "fromString": None,
        "to": to,
        "toString": to_name,
    }


def status_change(
    key: str, frm: tuple[str, str], to: tuple[str, str], updated: str, changelog_id: str
) -> dict[str, Any]:
    """A status change of issue 20417 (now in the OPS project) from one status to another."""
    body = a_delivery(
        "status",
        key=key,
        updated=updated,
        changelog_id=changelog_id,
        items=[status_item(*frm, *to)],
        project={"id": "10002", "key": "OPS", "name": "Operations"},
    )
    body["issue"]["fields"]["status"] = {"id": to[0], "name": to[1]}
    return body


def lifecycle(
    url: str, route: str, body: dict[str, Any], *, iss: str = CLIENT_KEY
) -> httpx.Response:
    """A lifecycle callback as Jira signs it: RS256 with the key the key server publishes,
    `aud` = the app's base URL, a fresh `jti` so no two tokens are alike."""
    claims = lifecycle_claims(iss=iss, aud=BASE, now=datetime.now(UTC), path=route)
    claims["jti"] = secrets.token_hex(8)
    token = rs256_token(claims, kid=KID)
    return httpx.post(
        url + route,
        content=json.dumps(body).encode(),
        timeout=10,
        headers={"Authorization": f"JWT {token}", "Content-Type": "application/json"},
    )


def install_body(jira: FakeJira, shared_secret: str) -> dict[str, Any]:
    body = dict(fixture_json("connect-installed-body.json"))
    body.update(baseUrl=jira.url, sharedSecret=shared_secret)
    return body


def uninstall_body() -> dict[str, Any]:
    return {"key": APP_KEY, "clientKey": CLIENT_KEY, "eventType": "uninstalled"}


def webhook(url: str, secret: str, body: dict[str, Any], delivery_id: str) -> httpx.Response:
    headers, raw = signed_delivery(CLIENT_KEY, secret, body, delivery_id=delivery_id)
    return httpx.post(url + WEBHOOK, content=raw, headers=headers, timeout=10)


def story_env(directory: Path, keys: KeyServer, **extra: str) -> dict[str, str]:
    env = {
        "SENTRY_JIRA_DATABASE": str(directory / "sentry-jira.db"),  # key file made beside it
        "SENTRY_JIRA_BASE_URL": BASE,
        "SENTRY_JIRA_INSTALL_KEYS_URL": keys.url,
        "SENTRY_JIRA_JIRA_HOSTS": "http://127.0.0.1:*",
        "SENTRY_JIRA_SENTRY_HOSTS": "http://127.0.0.1:*",  # §8.3: the loopback fake Sentry
        "SENTRY_JIRA_ADMIN_TOKEN": ADMIN_TOKEN,
        "SENTRY_JIRA_USE_EMAIL_SCOPE": "true",
        "SENTRY_JIRA_RETRY_BASE_SECONDS": "0.05",
        "SENTRY_JIRA_HTTP_TIMEOUT_SECONDS": "3",
    }
    env.update(extra)
    return env


def bearer(authorization: str | None) -> str:
    """Which token a request carried, by name: a failed assertion must not print a token."""
    names = {f"Bearer {SENTRY_TOKEN}": "acme token", f"Bearer {OTHER_SENTRY_TOKEN}": "globex token"}
    return names.get(authorization or "", "no token" if authorization is None else "another")


def sentry_calls(sentry: FakeSentry, since: int = 0) -> list[tuple[str, str, Any, Any, str]]:
    """(method, path, query, JSON body, token name) of every request from `since` on."""
    return [
        (r.method, r.path, r.query, r.json, bearer(r.authorization))
        for r in sentry.requests[since:]
    ]


def put(issue_id: str, body: Any, org: str = ORG) -> tuple[str, str, Any, Any, str]:
    return ("PUT", FakeSentry.issue_path(org, issue_id), {}, body, f"{org} token")


def members_get(address: str, org: str = ORG) -> tuple[str, str, Any, Any, str]:
    token = f"{org} token"
    return ("GET", FakeSentry.members_path(org), {"query": [f"email:{address}"]}, None, token)


def entries_of(entries: list[dict[str, Any]], delivery: str) -> list[tuple[str, ...]]:
    """One delivery's journal entries as sorted (issue key, org, kind, outcome, detail)."""
    return sorted(
        (e["issue_key"], e["org"], e["kind"], e["outcome"], e["detail"])
        for e in entries
        if e["delivery"] == delivery
    )


def jira_call(request: RecordedRequest) -> tuple[str | None, str, dict[str, list[str]]]:
    return request.route, request.raw_path, request.query


def assert_signed_for(requests: list[RecordedRequest], secret_holder: str) -> None:
    """Every request reached the site, signed (verified by the fake with the site's current
    secret) by this app, with Connect's 180-second lifetime."""
    for request in requests:
        assert (request.site, request.verified, request.status) == (secret_holder, True, 200)
        assert request.claims is not None
        assert request.claims["iss"] == APP_KEY
        assert request.claims["exp"] == request.claims["iat"] + 180


def settle() -> None:
    """Room for a request that should not happen to show up, were there one."""
    time.sleep(0.4)


# -- the admin-API story ---------------------------------------------------------------------


@attrs.define(repr=False)  # a failed assertion must not print secrets
class Story:
    url: str
    keys: KeyServer
    jira: FakeJira
    site: FakeJiraSite
    sentry: FakeSentry
    tenant_id: int = 0
    search_token: str = ""
    passed: int = 0
    bodies: list[bytes] = attrs.Factory(list)

    def begin(self, step: int) -> None:
        if self.passed != step - 1:
            pytest.skip(f"step {step} runs after step {step - 1} of this module has passed")

    def done(self, step: int) -> None:
        self.passed = step

    def admin(self, method: str, path: str, body: Any = None) -> httpx.Response:
        response = admin(self.url, method, path, body)
        self.bodies.append(response.content)
        return response

    def search(self, **params: str) -> httpx.Response:
        response = httpx.get(
            f"{self.url}/extensions/jira/search/{ORG}/{self.tenant_id}/",
            params=params,
            headers={"Authorization": f"Bearer {self.search_token}"},
            timeout=10,
        )
        self.bodies.append(response.content)
        return response

    def journal(self) -> list[dict[str, Any]]:
        return journal(self.url, self.tenant_id)

    def wait_for_journal(self, delivery: str, count: int) -> list[dict[str, Any]]:
        wait_for(
            lambda: len([e for e in self.journal() if e["delivery"] == delivery]) >= count,
            what=f"{count} journal entries of {delivery}",
        )
        return self.journal()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def story_database(request: pytest.FixtureRequest) -> dict[str, str]:
    """§9: the story on SQLite (a key file made beside it) and on a fresh PostgreSQL
    database (the key required there)."""
    if request.param == "sqlite":
        return {}
    cluster = request.getfixturevalue("postgres_cluster")
    return {"SENTRY_JIRA_DATABASE": cluster.database(migrated=False),
            "SENTRY_JIRA_SECRET_KEY": TEST_FERNET_KEY}


@pytest.fixture(params=["sqlite", "postgres"])
def own_database(request: pytest.FixtureRequest) -> dict[str, str]:
    """As `story_database`, a database of this test's own."""
    if request.param == "sqlite":
        return {}
    return {"SENTRY_JIRA_DATABASE": request.getfixturevalue("postgres_cluster").database(
        migrated=False), "SENTRY_JIRA_SECRET_KEY": TEST_FERNET_KEY}


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory,
          story_database: dict[str, str]) -> Iterator[Story]:
    directory = tmp_path_factory.mktemp("story")
    log = directory / "serve.log"
    with running_key_server() as keys, FakeJira(APP_KEY) as jira, FakeSentry() as sentry:
        keys.serve(KID, signing_key().public_pem)
        site = jira.add_site(CLIENT_KEY, FIRST_SECRET)
        sentry.add_org(ORG, SENTRY_TOKEN)
        for issue_id in ("4711", "4712", "5000"):
            sentry.add_issue(ORG, issue_id)
        sentry.add_member(ORG, "42", [("grace@example.com", True)])
        sentry.add_member(ORG, "77", [("g.hopper@example.org", True)])
        sentry.add_member(ORG, "43", [("Ada@Example.com", True)])
        sentry.add_member(ORG, "44", [("ada@example.com", False)])  # not verified: not Ada
        with running_server(story_env(directory, keys, **story_database),
                            log=log) as (url, _):
            told = Story(
                url=url,
                keys=keys,
                jira=jira,
                site=site,
                sentry=sentry,
            )
            yield told
    # The server has stopped and flushed its log: no secret in it nor in any answer.
    secrets_used = {
        "first shared secret": FIRST_SECRET,
        "second shared secret": SECOND_SECRET,
        "Sentry token": SENTRY_TOKEN,
        "admin token": ADMIN_TOKEN,
    }
    places = {"server log": log.read_bytes()}
    places.update({f"response {n}": body for n, body in enumerate(told.bodies)})
    assert find_leaks(secrets_used, places) == []


def test_D1_step1_the_descriptor_names_the_app_its_lifecycle_webhook_and_scopes(
    story: Story,
) -> None:
    story.begin(1)
    descriptor = httpx.get(story.url + "/atlassian-connect.json", timeout=10)
    alias = httpx.get(story.url + "/extensions/jira/descriptor/", timeout=10)

    assert descriptor.status_code == 200 and alias.status_code == 200
    assert descriptor.headers["content-type"].startswith("application/json")
    assert (
        descriptor.json()
        == alias.json()
        == {
            "name": "Sentry",
            "description": DESCRIPTION,
            "key": APP_KEY,
            "baseUrl": BASE,
            "vendor": {"name": "Sentry", "url": BASE},
            "authentication": {"type": "jwt"},
            "lifecycle": {"installed": INSTALLED, "uninstalled": UNINSTALLED},
            "apiVersion": 1,
            "apiMigrations": {"gdpr": True, "context-qsh": True, "signed-install": True},
            "scopes": ["read", "access_email_addresses"],
            "modules": {
                "webhooks": [{"event": "jira:issue_updated", "url": WEBHOOK, "excludeBody": False}],
                **page_modules(AppSettings(base_url=BASE, app_key=APP_KEY)),  # §10
            },
        }
    )
    story.done(1)


def test_L3_step2_a_signed_install_creates_the_tenant(story: Story) -> None:
    story.begin(2)
    response = lifecycle(story.url, INSTALLED, install_body(story.jira, FIRST_SECRET))
    assert response.status_code == 204, response.text
    assert response.content == b""
    assert story.keys.fetches(KID) == 1

    tenants = story.admin("GET", "/api/tenants")
    assert tenants.status_code == 200
    (tenant,) = tenants.json()
    installed_at = tenant.pop("installed_at")
    story.tenant_id = tenant.pop("id")
    assert isinstance(story.tenant_id, int)
    assert tenant == {
        "transport": "connect",
        "client_key": CLIENT_KEY,
        "base_url": story.jira.url,
        "display_url": "https://jira.acme.example",
        "status": "installed",
        "orgs": [],
    }
    assert installed_at.endswith("Z")  # ISO 8601 UTC, now
    assert abs(datetime.fromisoformat(installed_at) - datetime.now(UTC)).total_seconds() < 60
    assert story.jira.requests == [] and story.sentry.requests == []
    story.done(2)


def test_A_step3_an_org_is_bound_issues_linked_and_an_account_mapped_over_the_admin_api(
    story: Story,
) -> None:
    story.begin(3)
    tenant = f"/api/tenants/{story.tenant_id}"
    bound = story.admin(
        "PUT",
        f"{tenant}/orgs/{ORG}",
        {
            "sentry_url": story.sentry.url,
            "sentry_token": SENTRY_TOKEN,
            "resolution_strategy": "resolve_next_release",
        },
    )
    assert bound.status_code == 200, bound.text
    assert bound.json() == {
        "tenant_id": story.tenant_id,
        "org": ORG,
        "sentry_url": story.sentry.url,
        "sentry_token": "***",
        "sync_status": True,
        "sync_assignee": True,
        "resolution_strategy": "resolve_next_release",
        "skip_archived": False,
        "status_map": {},
    }

    two = story.admin(
        "PUT", f"{tenant}/orgs/{ORG}/links/APP-123", {"sentry_issue_ids": ["4712", "4711"]}
    )
    one = story.admin("PUT", f"{tenant}/orgs/{ORG}/links/APP-200", {"sentry_issue_ids": ["5000"]})
    mapped = story.admin("PUT", f"{tenant}/orgs/{ORG}/accounts/{GRACE}", {"sentry_user_id": "77"})
    assert (two.status_code, one.status_code, mapped.status_code) == (200, 200, 200)
    assert two.json() == {"issue_key": "APP-123", "sentry_issue_ids": ["4711", "4712"]}
    assert one.json() == {"issue_key": "APP-200", "sentry_issue_ids": ["5000"]}
    assert mapped.json() == {"account_id": GRACE, "sentry_user_id": "77"}
    assert story.admin("GET", tenant).json()["orgs"] == [ORG]
    assert story.sentry.requests == [] and story.jira.requests == []  # binding calls no one
    story.done(3)


def test_W5_step4_a_done_status_resolves_both_linked_issues_in_the_next_release(
    story: Story,
) -> None:
    story.begin(4)
    # The shared fixture: APP-123 In Progress (3) → Done (10101) at 09:00.
    response = webhook(story.url, FIRST_SECRET, issue_updated_body("status"), "story-status")
    assert response.status_code == 202, response.text
    assert response.json() == {"status": "accepted", "delivery": "story-status"}
    entries = story.wait_for_journal("story-status", 2)
    settle()

    assert sentry_calls(story.sentry) == [put("4711", NEXT_RELEASE), put("4712", NEXT_RELEASE)]
    assert story.sentry.issue(ORG, "5000").status == "unresolved"
    (statuses,) = story.jira.requests
    assert jira_call(statuses) == ("statuses", "/rest/api/2/status", {})
    assert_signed_for(story.jira.requests, CLIENT_KEY)
    reason = (
        "Jira status In Progress (3) → Done (10101): entered the done category: "
        "resolve (resolve_next_release)"
    )
    assert entries_of(story.journal(), "story-status") == [
        ("APP-123", ORG, "status", "applied", f"Sentry issue {n}: {reason}")
        for n in ("4711", "4712")
    ]
    assert len(entries) == len(story.journal()) == 2
    story.done(4)


def test_W5_step5_assignee_changes_by_mapping_by_jira_email_api_and_to_nobody(
    story: Story,
) -> None:
    story.begin(5)
    sentry, jira, site = story.sentry, story.jira, story.site
    site.emails[ADA] = "ada@example.com"

    # (a) Grace, mapped to Sentry user 77: the mapping wins over her e-mail (user 42).
    before = len(sentry.requests)
    mapped = webhook(story.url, FIRST_SECRET, issue_updated_body("assignee"), "story-grace")
    assert mapped.status_code == 202, mapped.text
    story.wait_for_journal("story-grace", 2)
    settle()
    assert sentry_calls(sentry, before) == [
        put("4711", {"assignedTo": "user:77"}),
        put("4712", {"assignedTo": "user:77"}),
    ]
    assert len(jira.requests) == 1  # no e-mail lookup: the mapping decided

    # (b) Ada hides her e-mail: Jira's e-mail API tells it; one verified Sentry member has it.
    before = len(sentry.requests)
    ada = {"accountId": ADA, "displayName": "Ada Lovelace", "active": True}
    hidden = webhook(
        story.url,
        FIRST_SECRET,
        a_delivery(
            "assignee",
            updated=at(1, 20),
            changelog_id="88240",
            assignee=ada,
            items=[assignee_item(ADA, "Ada Lovelace")],
        ),
        "story-ada",
    )
    assert hidden.status_code == 202, hidden.text
    story.wait_for_journal("story-ada", 2)
    settle()
    assert sentry_calls(sentry, before) == [
        members_get("ada@example.com"),
        put("4711", {"assignedTo": "user:43"}),
        put("4712", {"assignedTo": "user:43"}),
    ]
    email = jira.requests[1:]
    assert [jira_call(r) for r in email] == [
        ("email", "/rest/api/3/user/email", {"accountId": [ADA]})
    ]
    assert_signed_for(email, CLIENT_KEY)

    # (c) Unassigned in Jira: unassigned in Sentry.
    before = len(sentry.requests)
    nobody = webhook(
        story.url,
        FIRST_SECRET,
        a_delivery(
            "assignee",
            updated=at(1, 40),
            changelog_id="88241",
            assignee=None,
            items=[assignee_item(None, None)],
        ),
        "story-nobody",
    )
    assert nobody.status_code == 202, nobody.text
    story.wait_for_journal("story-nobody", 2)
    settle()
    assert sentry_calls(sentry, before) == [
        put("4711", {"assignedTo": None}),
        put("4712", {"assignedTo": None}),
    ]
    assert len(jira.requests) == 2

    entries = story.journal()
    assert entries_of(entries, "story-grace") == [
        (
            "APP-123",
            ORG,
            "assignee",
            "applied",
            f"Sentry issue {n}: Jira account {GRACE} is mapped to Sentry user 77: assign",
        )
        for n in ("4711", "4712")
    ]
    assert entries_of(entries, "story-ada") == [
        (
            "APP-123",
            ORG,
            "assignee",
            "applied",
            f"Sentry issue {n}: the e-mail of Jira account {ADA} (from Jira's e-mail API) is the "
            "verified e-mail of Sentry user 43: assign",
        )
        for n in ("4711", "4712")
    ]
    assert entries_of(entries, "story-nobody") == [
        (
            "APP-123",
            ORG,
            "assignee",
            "applied",
            f"Sentry issue {n}: the Jira issue has no assignee: unassign",
        )
        for n in ("4711", "4712")
    ]
    assert "ada@example.com" not in json.dumps(entries).lower()  # no address in the journal
    assert sentry.issue(ORG, "4711").assigned_to is None
    story.done(5)


def test_W7_step6_a_moved_issue_rekeys_its_links_and_later_changes_follow_the_new_key(
    story: Story,
) -> None:
    story.begin(6)
    sentry, tenant = story.sentry, f"/api/tenants/{story.tenant_id}"
    before = len(sentry.requests)
    # The shared fixture: APP-123 moved to OPS-7 (project Web App → Operations) at 09:02.
    moved = webhook(story.url, FIRST_SECRET, issue_updated_body("moved"), "story-moved")
    assert moved.status_code == 202, moved.text
    story.wait_for_journal("story-moved", 1)
    settle()
    assert sentry_calls(sentry, before) == []
    assert entries_of(story.journal(), "story-moved") == [
        # One entry for the tenant: the re-key covers every org (org null).
        ("OPS-7", None, "key", "applied", "issue moved APP-123 → OPS-7; 1 link(s) re-keyed")
    ]
    new = story.admin("GET", f"{tenant}/orgs/{ORG}/links/OPS-7")
    old = story.admin("GET", f"{tenant}/orgs/{ORG}/links/APP-123")
    other = story.admin("GET", f"{tenant}/orgs/{ORG}/links/APP-200")
    assert (new.status_code, old.status_code, other.status_code) == (200, 404, 200)
    assert new.json() == {"issue_key": "OPS-7", "sentry_issue_ids": ["4711", "4712"]}
    assert other.json() == {"issue_key": "APP-200", "sentry_issue_ids": ["5000"]}

    # Reopened under its new key: Done (10101) → Open (1) leaves the done category.
    reopened = webhook(
        story.url,
        FIRST_SECRET,
        status_change("OPS-7", ("10101", "Done"), ("1", "Open"), at(3), "88250"),
        "story-reopened",
    )
    assert reopened.status_code == 202, reopened.text
    story.wait_for_journal("story-reopened", 2)
    settle()
    unresolved = {"status": "unresolved"}
    assert sentry_calls(sentry, before) == [put("4711", unresolved), put("4712", unresolved)]
    assert entries_of(story.journal(), "story-reopened") == [
        (
            "OPS-7",
            ORG,
            "status",
            "applied",
            f"Sentry issue {n}: Jira status Done (10101) → Open (1): left the done category: "
            "unresolve",
        )
        for n in ("4711", "4712")
    ]
    assert [r.route for r in story.jira.requests] == ["statuses", "email"]  # statuses cached
    story.done(6)


def test_S3_S6_step7_every_field_kind_is_searched_with_a_search_token(story: Story) -> None:
    story.begin(7)
    site, jira = story.site, story.jira
    site.add_issue("OPS-7", "TypeError in <b>map</b> &amp; render")
    site.add_issue("APP-200", 'Crash "render" loop')
    site.jql_results['text ~ "crash \\"render\\""'] = ["APP-200", "OPS-7"]
    site.add_user(GRACE, "Grace Hopper", "grace@example.com", projects=("APP",))
    site.add_user(ADA, "Grace Ada Lovelace", None)  # e-mail hidden: no " - …"
    site.add_user(None, "Grace Bot")  # an app user without accountId: skipped
    site.add_project("10000", "APP", "Web App")
    site.add_project("10002", "OPS", "Operations")
    site.add_suggestion("cf[10020]", "37", "<b>Sprint</b> 37")
    site.add_suggestion("cf[10020]", "38", "Sprint 38 &lt; 39 &amp; more")

    created = story.admin("POST", f"/api/orgs/{ORG}/search-tokens")
    assert created.status_code == 201, created.text
    assert created.headers["cache-control"] == "no-store"
    assert set(created.json()) == {"id", "token"}
    story.search_token = created.json()["token"]
    story.bodies.pop()  # the one answer that shows the token (§A), not a leak
    listed = story.admin("GET", f"/api/orgs/{ORG}/search-tokens").json()
    assert [t["id"] for t in listed] == [created.json()["id"]]

    before = len(jira.requests)
    grace = {"value": GRACE, "label": "Grace Hopper - grace@example.com"}
    cases: list[tuple[dict[str, str], Any, tuple[str, str, dict[str, list[str]]]]] = [
        (
            {"field": "externalIssue", "query": "ops-7"},
            [{"label": "(OPS-7) TypeError in map & render", "value": "OPS-7"}],
            ("issue", "/rest/api/3/issue/OPS-7", {"fields": ["summary"]}),
        ),
        (
            {"field": "externalIssue", "query": 'crash "render"'},
            [
                {"label": '(APP-200) Crash "render" loop', "value": "APP-200"},
                {"label": "(OPS-7) TypeError in map & render", "value": "OPS-7"},
            ],
            (
                "search",
                "/rest/api/3/search/jql",
                {
                    "jql": ['text ~ "crash \\"render\\""'],
                    "fields": ["summary"],
                    "maxResults": ["20"],
                },
            ),
        ),
        (
            {"field": "assignee", "query": "grace"},
            [grace, {"value": ADA, "label": "Grace Ada Lovelace"}],
            ("users", "/rest/api/3/user/search", {"query": ["grace"]}),
        ),
        (
            {"field": "assignee", "query": "grace", "project": "APP"},
            [grace],
            (
                "assignable",
                "/rest/api/3/user/assignable/search",
                {"project": ["APP"], "query": ["grace"]},
            ),
        ),
        (
            {"field": "reporter", "query": "ada"},
            [{"value": ADA, "label": "Grace Ada Lovelace"}],
            ("users", "/rest/api/3/user/search", {"query": ["ada"]}),
        ),
        (
            {"field": "project", "query": "op"},
            [{"label": "OPS - Operations", "value": "10002"}],
            ("projects", "/rest/api/3/project/search", {"query": ["op"]}),
        ),
        (
            {"field": "customfield_10020", "query": "sprint"},
            [
                {"value": "37", "label": "Sprint 37"},
                {"value": "38", "label": "Sprint 38 < 39 & more"},
            ],
            (
                "autocomplete",
                "/rest/api/2/jql/autocompletedata/suggestions",
                {"fieldName": ["cf[10020]"], "fieldValue": ["sprint"]},
            ),
        ),
    ]
    sentry_before = len(story.sentry.requests)
    for query, expected, _ in cases:
        response = story.search(**query)
        assert response.status_code == 200, (query, response.text)
        assert response.json() == expected, query

    received = jira.requests[before:]
    assert [jira_call(r) for r in received] == [call for _, _, call in cases]
    assert_signed_for(received, CLIENT_KEY)
    assert len(story.sentry.requests) == sentry_before  # search never talks to Sentry
    story.done(7)


def test_L4_step8_a_reinstall_rotates_the_secret_for_webhooks_and_for_calls_to_jira(
    story: Story,
) -> None:
    story.begin(8)
    sentry, jira, site = story.sentry, story.jira, story.site
    journal_before = story.journal()
    response = lifecycle(story.url, INSTALLED, install_body(jira, SECOND_SECRET))
    assert response.status_code == 204, response.text
    site.shared_secret = SECOND_SECRET  # Jira signs and verifies with the new secret now
    shown = story.admin("GET", f"/api/tenants/{story.tenant_id}").json()
    assert (shown["status"], shown["orgs"], shown["client_key"]) == ("installed", [ORG], CLIENT_KEY)
    assert len(story.admin("GET", "/api/tenants").json()) == 1

    # Signed with the old secret: refused, and nothing is recorded or sent.
    before, jira_before = len(sentry.requests), len(jira.requests)
    done = status_change("OPS-7", ("1", "Open"), ("10102", "Won't Fix"), at(4), "88260")
    old = webhook(story.url, FIRST_SECRET, done, "story-old-secret")
    assert old.status_code == 401
    assert set(old.json()) == {"detail"}
    settle()
    assert sentry_calls(sentry, before) == []
    assert story.journal() == journal_before

    # Signed with the new one: synced, and Jira's status list is fetched again with it.
    new = webhook(story.url, SECOND_SECRET, done, "story-new-secret")
    assert new.status_code == 202, new.text
    story.wait_for_journal("story-new-secret", 2)
    settle()
    assert sentry_calls(sentry, before) == [put("4711", NEXT_RELEASE), put("4712", NEXT_RELEASE)]
    refetched = jira.requests[jira_before:]
    assert [jira_call(r) for r in refetched] == [("statuses", "/rest/api/2/status", {})]
    assert_signed_for(refetched, CLIENT_KEY)
    assert [e[3] for e in entries_of(story.journal(), "story-new-secret")] == ["applied"] * 2

    # Search is signed with the new secret too (the fake refuses the old one with 401).
    found = story.search(field="externalIssue", query="OPS-7")
    assert found.status_code == 200, found.text
    assert found.json() == [{"label": "(OPS-7) TypeError in map & render", "value": "OPS-7"}]
    assert_signed_for(jira.requests[jira_before + 1 :], CLIENT_KEY)
    assert len(jira.requests) == jira_before + 2
    story.done(8)


def test_L5_L7_step9_an_uninstall_refuses_webhooks_and_searches_and_keeps_the_config(
    story: Story,
) -> None:
    story.begin(9)
    sentry, jira, tenant = story.sentry, story.jira, f"/api/tenants/{story.tenant_id}"
    journal_before = story.journal()
    response = lifecycle(story.url, UNINSTALLED, uninstall_body())
    assert response.status_code == 204, response.text

    before, jira_before = len(sentry.requests), len(jira.requests)
    reopened = status_change("OPS-7", ("10102", "Won't Fix"), ("1", "Open"), at(5), "88270")
    refused = webhook(story.url, SECOND_SECRET, reopened, "story-after-uninstall")
    searched = story.search(field="externalIssue", query="OPS-7")
    assert refused.status_code == 401 and set(refused.json()) == {"detail"}
    assert searched.status_code == 404
    assert searched.json() == {"detail": "no such tenant for this org"}
    settle()
    assert sentry_calls(sentry, before) == []
    assert len(jira.requests) == jira_before

    shown = story.admin("GET", tenant).json()
    assert (shown["status"], shown["orgs"]) == ("uninstalled", [ORG])
    binding = story.admin("GET", f"{tenant}/orgs/{ORG}")
    assert binding.status_code == 200
    assert binding.json()["resolution_strategy"] == "resolve_next_release"
    assert binding.json()["sentry_token"] == "***"
    links = [
        story.admin("GET", f"{tenant}/orgs/{ORG}/links/{key}").json()
        for key in ("OPS-7", "APP-200")
    ]
    assert links == [
        {"issue_key": "OPS-7", "sentry_issue_ids": ["4711", "4712"]},
        {"issue_key": "APP-200", "sentry_issue_ids": ["5000"]},
    ]
    assert story.journal() == journal_before
    # Every entry of the story, newest first; nothing from the refused delivery.
    assert [e["delivery"] for e in journal_before] == [
        "story-new-secret", "story-new-secret", "story-reopened", "story-reopened",
        "story-moved", "story-nobody", "story-nobody", "story-ada", "story-ada",
        "story-grace", "story-grace", "story-status", "story-status",
    ]  # fmt: skip
    story.done(9)


# -- the same story through the CLI ------------------------------------------------------------


def run_cli(
    env: dict[str, str], *args: str, stdin: str | None = None, sentry_token: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`sentry-jira ARGS` in the server's environment, on its database."""
    environ = server_env(env)
    environ["PYTHONPATH"] = str(REPO / "src") + os.pathsep + environ.get("PYTHONPATH", "")
    if sentry_token is not None:
        environ["SENTRY_JIRA_SENTRY_TOKEN"] = sentry_token
    return subprocess.run(
        [sys.executable, "-m", "adapters.cli.main", *args],
        env=environ,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
    )


def cli_json(
    env: dict[str, str], *args: str, stdin: str | None = None, sentry_token: str | None = None
) -> Any:
    result = run_cli(env, *args, "--json", stdin=stdin, sentry_token=sentry_token)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_A_the_same_story_through_the_cli_while_serve_runs(
    tmp_path: Path, own_database: dict[str, str],
) -> None:
    log = tmp_path / "serve.log"
    with running_key_server() as keys, FakeJira(APP_KEY) as jira, FakeSentry() as sentry:
        keys.serve(KID, signing_key().public_pem)
        site = jira.add_site(CLIENT_KEY, FIRST_SECRET)
        sentry.add_org(ORG, SENTRY_TOKEN)
        sentry.add_org("globex", OTHER_SENTRY_TOKEN)
        for org, issue_id in ((ORG, "4711"), (ORG, "4712"), ("globex", "9001")):
            sentry.add_issue(org, issue_id)
        sentry.add_member(ORG, "77", [("g.hopper@example.org", True)])
        # The admin API is off: every admin step below can only be the CLI's.
        env = story_env(tmp_path, keys, **own_database)
        del env["SENTRY_JIRA_ADMIN_TOKEN"]
        with running_server(env, log=log) as (url, _):
            assert httpx.get(url + "/api/tenants", timeout=10).status_code == 404
            installed = lifecycle(url, INSTALLED, install_body(jira, FIRST_SECRET))
            assert installed.status_code == 204, installed.text

            (listed,) = cli_json(env, "tenants", "list")
            tenant_id = listed["id"]
            shown = cli_json(env, "tenants", "show", str(tenant_id))
            assert shown == listed
            keys = ("transport", "client_key", "base_url", "status", "orgs")
            assert {k: shown[k] for k in keys} == {
                "transport": "connect",
                "client_key": CLIENT_KEY,
                "base_url": jira.url,
                "status": "installed",
                "orgs": [],
            }

            tid = str(tenant_id)
            acme = cli_json(
                env,
                "orgs",
                "bind",
                tid,
                ORG,
                "--sentry-url",
                sentry.url,
                "--resolution-strategy",
                "resolve_next_release",
                sentry_token=SENTRY_TOKEN,
            )
            globex = cli_json(
                env,
                "orgs",
                "bind",
                tid,
                "globex",
                "--sentry-url",
                sentry.url,
                "--sentry-token-stdin",
                "--no-sync-assignee",
                stdin=OTHER_SENTRY_TOKEN,
            )
            assert acme == {
                "tenant_id": tenant_id,
                "org": ORG,
                "sentry_url": sentry.url,
                "sentry_token": "***",
                "sync_status": True,
                "sync_assignee": True,
                "resolution_strategy": "resolve_next_release",
                "skip_archived": False,
                "status_map": {},
            }
            assert (
                globex["sentry_token"],
                globex["sync_assignee"],
                globex["resolution_strategy"],
            ) == ("***", False, "resolve")
            assert cli_json(env, "links", "set", tid, ORG, "APP-123", "4712", "4711") == {
                "issue_key": "APP-123",
                "sentry_issue_ids": ["4711", "4712"],
            }
            assert cli_json(env, "links", "set", tid, "globex", "APP-123", "9001") == {
                "issue_key": "APP-123",
                "sentry_issue_ids": ["9001"],
            }
            assert cli_json(env, "accounts", "map", tid, ORG, GRACE, "77") == {
                "account_id": GRACE,
                "sentry_user_id": "77",
            }
            token = cli_json(env, "search-tokens", "create", ORG)
            assert set(token) == {"id", "token"}
            assert cli_json(env, "tenants", "show", tid)["orgs"] == [ORG, "globex"]

            # Status: both orgs, each with its own token and strategy.
            status = webhook(url, FIRST_SECRET, issue_updated_body("status"), "cli-status")
            assert status.status_code == 202, status.text
            wait_for(lambda: len(sentry.requests) == 3, what="three status writes")
            # Assignee: acme only (globex has assignee sync off), by the mapping.
            grace = webhook(url, FIRST_SECRET, issue_updated_body("assignee"), "cli-grace")
            assert grace.status_code == 202, grace.text
            wait_for(lambda: len(sentry.requests) == 5, what="two assignee writes")
            settle()
            assert sorted(sentry_calls(sentry)[:3]) == sorted(
                [
                    put("4711", NEXT_RELEASE),
                    put("4712", NEXT_RELEASE),
                    put("9001", {"status": "resolved"}, "globex"),
                ]
            )
            assert sentry_calls(sentry)[3:] == [
                put("4711", {"assignedTo": "user:77"}),
                put("4712", {"assignedTo": "user:77"}),
            ]
            entries = cli_json(env, "journal", tid, "--issue-key", "APP-123")
            assert sorted((e["delivery"], e["org"], e["kind"], e["outcome"]) for e in entries) == [
                ("cli-grace", ORG, "assignee", "applied"),
                ("cli-grace", ORG, "assignee", "applied"),
                ("cli-grace", "globex", "assignee", "ignored"),
                ("cli-status", ORG, "status", "applied"),
                ("cli-status", ORG, "status", "applied"),
                ("cli-status", "globex", "status", "applied"),
            ]
            text = run_cli(env, "journal", tid)
            assert text.returncode == 0 and "is mapped to Sentry user 77: assign" in text.stdout

            # Search with the token the CLI issued.
            site.add_issue("APP-123", "TypeError: cannot read properties")
            found = httpx.get(
                f"{url}/extensions/jira/search/{ORG}/{tid}/",
                params={"field": "externalIssue", "query": "APP-123"},
                headers={"Authorization": f"Bearer {token['token']}"},
                timeout=10,
            )
            assert found.status_code == 200, found.text
            assert found.json() == [
                {"label": "(APP-123) TypeError: cannot read properties", "value": "APP-123"}
            ]

            # Re-install: the old secret is refused, the new one syncs.
            reinstalled = lifecycle(url, INSTALLED, install_body(jira, SECOND_SECRET))
            assert reinstalled.status_code == 204, reinstalled.text
            site.shared_secret = SECOND_SECRET
            reopened = a_delivery(
                "status",
                updated=at(5),
                changelog_id="88300",
                items=[status_item("10101", "Done", "1", "Open")],
            )
            assert webhook(url, FIRST_SECRET, reopened, "cli-old").status_code == 401
            settle()
            assert len(sentry.requests) == 5
            assert webhook(url, SECOND_SECRET, reopened, "cli-new").status_code == 202
            wait_for(lambda: len(sentry.requests) == 8, what="three unresolves")
            assert sorted(sentry_calls(sentry)[5:]) == sorted(
                [
                    put("4711", {"status": "unresolved"}),
                    put("4712", {"status": "unresolved"}),
                    put("9001", {"status": "unresolved"}, "globex"),
                ]
            )
            assert_signed_for(jira.requests, CLIENT_KEY)
            assert [r.route for r in jira.requests] == ["statuses", "issue", "statuses"]

            # Uninstall: refused from then on; the configuration stays.
            uninstalled = lifecycle(url, UNINSTALLED, uninstall_body())
            assert uninstalled.status_code == 204, uninstalled.text
            again = a_delivery("status", updated=at(6), changelog_id="88301")
            assert webhook(url, SECOND_SECRET, again, "cli-gone").status_code == 401
            settle()
            assert len(sentry.requests) == 8
            after = cli_json(env, "tenants", "show", tid)
            assert (after["status"], after["orgs"]) == ("uninstalled", [ORG, "globex"])
            assert cli_json(env, "links", "show", tid, ORG, "APP-123")["sentry_issue_ids"] == [
                "4711",
                "4712",
            ]
            assert cli_json(env, "orgs", "show", tid, "globex")["sentry_token"] == "***"
            assert len(cli_json(env, "journal", tid)) == 9
    secrets_used = {
        "first": FIRST_SECRET,
        "second": SECOND_SECRET,
        "sentry": SENTRY_TOKEN,
        "other sentry": OTHER_SENTRY_TOKEN,
    }
    assert find_leaks(secrets_used, {"server log": log.read_bytes()}) == []
