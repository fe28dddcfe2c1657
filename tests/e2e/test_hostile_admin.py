"""Hostile admin requests against a real `sentry-jira serve` (#11 items 10, 11c, 11d; §A).

- A stored Sentry token never follows a new URL: moving a binding to another Sentry without a
  new token is refused (API 400, CLI exit 1) and a later sync still goes, with that token, to
  the old Sentry only — the new one (a second fake Sentry on loopback) receives nothing at all.
- OPTIONS on `/api/...` and every `/schema/...` path need the admin token (401) and do not
  exist while the admin API is off (404).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.builders import ADMIN_TOKEN
from tests.support.fake_jira import FakeJira
from tests.support.leak_scan import find_leaks
from tests.support.process import running_server
from tests.support.sync_e2e import (
    APP_KEY,
    TimedFakeSentry,
    admin,
    bind,
    cli,
    deliver,
    install,
    journal,
    sync_env,
    wait_for,
)
from tests.support.webhooks import issue_updated_body

pytestmark = pytest.mark.e2e

SECRET = "hostile-admin-shared-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
OLD_TOKEN = "sntrys_hostile-admin-old-token-never-leaves-0123456789"
ISSUE = "APP-123"  # the issue of the shared webhook fixture
ADMIN_PATHS = [
    "/api/tenants",
    "/api/tenants/1",
    "/api/tenants/1/orgs/acme",
    "/api/tenants/1/orgs/acme/links/APP-123",
    "/api/tenants/1/orgs/acme/accounts/5b10ac8d82e05b22cc7d4ef5",
    "/api/orgs/acme/search-tokens",
    "/api/orgs/acme/search-tokens/1",
    "/api/tenants/1/journal",
    "/api/dead-letters",
    "/api/dead-letters/1/retry",
]
SCHEMA_PATHS = [
    "/schema",
    "/schema/openapi.json",
    "/schema/openapi.yaml",
    "/schema/swagger",
    "/schema/redoc",
    "/schema//openapi.json",
    "/schema/anything",
]


@pytest.mark.usefixtures("each_engine")  # §9: the stored binding on either engine
def test_A_a_stored_sentry_token_never_follows_a_new_url(tmp_path: Path) -> None:
    with (
        FakeJira(app_key=APP_KEY) as jira,
        TimedFakeSentry() as old,
        TimedFakeSentry() as new,
    ):
        site = jira.add_site("hostile-admin-site", SECRET)
        old.add_org("acme", OLD_TOKEN)
        old.add_issue("acme", "4711")
        new.add_org("acme", "sntrys_the-new-sentry-token-nobody-gave")
        new.add_issue("acme", "4711")
        env = sync_env(tmp_path)
        tenant = install(env, "hostile-admin-site", SECRET, site.base_url)
        log = tmp_path / "serve.log"
        with running_server(env, log=log) as (url, _):
            bind(url, tenant, "acme", old.url, OLD_TOKEN, {ISSUE: ["4711"]})
            path = f"/api/tenants/{tenant}/orgs/acme"

            moved = admin(url, "PUT", path, {"sentry_url": new.url})
            also_settings = admin(url, "PUT", path, {"sentry_url": new.url, "sync_status": True})
            by_cli = cli(env, "orgs", "bind", str(tenant), "acme", "--sentry-url", new.url)
            shown = admin(url, "GET", path)

            deliver(url, "hostile-admin-site", SECRET, issue_updated_body("status"), "d-1")
            wait_for(lambda: len(journal(url, tenant, ISSUE)) >= 1, what="the journal")
            entries = journal(url, tenant, ISSUE)
            # The same URL (normalised) without a token is an ordinary update.
            kept = admin(url, "PUT", path, {"sentry_url": old.url + "/", "skip_archived": False})

    # Not one request reached the new URL (before #11 item 10: PUT …/4711/ with the old token).
    assert [(r.method, r.authorization) for r in new.requests] == []
    puts = [(r.path, r.authorization) for r in old.requests if r.method == "PUT"]
    assert puts == [("/api/0/organizations/acme/issues/4711/", f"Bearer {OLD_TOKEN}")]
    for refused in (moved, also_settings):
        assert refused.status_code == 400, refused.text
        assert "sentry_url" in refused.json()["detail"]
        assert "sentry_token" in refused.json()["detail"]
    assert by_cli.returncode == 1, by_cli.stderr
    # §3 (#18): the API names its fields, the CLI its flags and variables.
    assert ("changing --sentry-url requires the Sentry token (SENTRY_JIRA_SENTRY_TOKEN"
            in by_cli.stderr)
    assert kept.status_code == 200, kept.text
    assert shown.json()["sentry_url"] == old.url
    assert [(e["kind"], e["outcome"]) for e in entries] == [("status", "applied")]
    texts = [moved.text, also_settings.text, by_cli.stdout, by_cli.stderr, shown.text]
    assert all(OLD_TOKEN not in text for text in texts)
    assert find_leaks({"old Sentry token": OLD_TOKEN}, {"serve log": log.read_bytes()}) == []


@pytest.fixture(scope="module")
def admin_on(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("admin-on")
    with running_server(sync_env(directory), log=directory / "serve.log") as (url, _):
        yield url


@pytest.fixture(scope="module")
def admin_off(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("admin-off")
    env = {k: v for k, v in sync_env(directory).items() if k != "SENTRY_JIRA_ADMIN_TOKEN"}
    with running_server(env, log=directory / "serve.log") as (url, _):
        yield url


def test_A_options_on_admin_routes_needs_the_admin_token(admin_on: str) -> None:
    for path in ADMIN_PATHS:
        for headers in ({}, {"Authorization": "Bearer not-the-admin-token-0123456789"}):
            refused = httpx.options(admin_on + path, headers=headers, timeout=10)
            assert refused.status_code == 401, (path, refused.status_code)
            assert refused.json()["detail"] and "allow" not in refused.headers
    answered = httpx.options(
        admin_on + "/api/tenants", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10
    )
    assert answered.status_code == 204 and "GET" in answered.headers["allow"]


def test_A_schema_needs_the_admin_token(admin_on: str) -> None:
    for path in SCHEMA_PATHS:
        for method in ("GET", "OPTIONS"):
            refused = httpx.request(method, admin_on + path, timeout=10)
            assert refused.status_code == 401, (method, path, refused.status_code)
            assert b"openapi" not in refused.content
        # HEAD is no method of these routes: the router's 405, never the document.
        assert httpx.head(admin_on + path, timeout=10).status_code in (401, 405)
    served = httpx.get(
        admin_on + "/schema/openapi.json",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=10,
    )
    assert served.status_code == 200 and "/api/tenants" in served.json()["paths"]


def test_A_with_the_admin_api_off_options_and_schema_do_not_exist(admin_off: str) -> None:
    for path in ADMIN_PATHS + SCHEMA_PATHS:
        for method in ("OPTIONS", "GET"):
            for headers in ({}, {"Authorization": f"Bearer {ADMIN_TOKEN}"}):
                answer = httpx.request(method, admin_off + path, headers=headers, timeout=10)
                assert answer.status_code == 404, (method, path, answer.status_code)
