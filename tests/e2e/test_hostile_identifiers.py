"""Values PostgreSQL cannot hold, against real `sentry-jira serve` processes on SQLite and on a
fresh PostgreSQL database (§9; docs/security.md, "Malformed identifiers").

PostgreSQL `text` holds no NUL. A signed delivery whose record carries a NUL in an identifier
the worker later looks up (an account id, a moved issue key, a project id) was accepted (202)
on both engines and then failed every worker attempt on PostgreSQL until it became a dead
letter; now it is a 400 on both engines, nothing stored. Free text (a status name from Jira,
a user id from Sentry) is accepted and journalled with U+FFFD in place of the NUL."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.describe import CONFIGURE_PATH
from core.describe import ISSUE_UPDATED_PATH as PATH
from tests.e2e.test_ack_path import CLIENT, SECRET
from tests.e2e.test_hostile_ackpath import engine_env, pending_deliveries
from tests.support.engines import Storage, Where, query, table_rows
from tests.support.engines import is_postgres as storage_is_postgres
from tests.support.fake_jira import FakeJira
from tests.support.forge import APP_ID, INSTALLATION_ID, ForgeSigner, JwksServer, mint_fit
from tests.support.pages import context_token, signed_page_url
from tests.support.paths import REPO, fixture_json
from tests.support.process import running_server, server_env
from tests.support.sync_e2e import (
    TimedFakeSentry,
    bind,
    install,
    journal,
    status_body,
    sync_env,
    wait_for,
)
from tests.support.together import side_by_side
from tests.support.webhook_sites import (
    SITES,
    admin_call,
    deliver,
    site_request,
    webhook_env,
)
from tests.support.webhooks import issue_updated_body, signed_delivery

pytestmark = pytest.mark.e2e


def _rows(where: Where) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table but the worker's heartbeats (a worker runs meanwhile)."""
    return {name: rows for name, rows in table_rows(where).items() if name != "sync_workers"}


def _item(body: dict[str, Any], field: str) -> dict[str, Any]:
    return next(i for i in body["changelog"]["items"] if i["field"] == field)


def _poisoned() -> dict[str, dict[str, Any]]:
    """One signed delivery per identifier the worker keys by, each holding a NUL."""
    project = issue_updated_body()
    project["issue"]["fields"]["project"]["id"] = "10000\u0000"
    account = issue_updated_body("assignee")
    account["issue"]["fields"]["assignee"]["accountId"] = "5b10ac8d82e05b22cc7d4ef5\u0000"
    email = issue_updated_body("assignee")
    email["issue"]["fields"]["assignee"]["emailAddress"] = "grace@example.com\u0000"
    moved = issue_updated_body("moved")
    _item(moved, "Key")["fromString"] = "APP-123\u0000"
    status_to = issue_updated_body()
    _item(status_to, "status")["to"] = "10101\u0000"
    changelog = issue_updated_body()
    changelog["changelog"]["id"] = "88231\u0000"
    return {"project": project, "account": account, "email": email, "moved": moved,
            "status-to": status_to, "changelog": changelog}


def test_W2_a_nul_in_a_kept_identifier_is_400_stores_nothing_and_spoils_no_delivery_beside_it(
    tmp_path: Path, storage: Storage,
) -> None:
    """Each poisoned delivery is refused on its own, before the (batched) insert: the signed
    deliveries sent beside it are still 202 and recorded, the poisoned ones are 400 and not."""
    env, where = engine_env(tmp_path, storage)
    poisoned = _poisoned()
    answers: dict[str, httpx.Response] = {}

    def send(url: str, name: str, body: Any) -> httpx.Response:
        headers, raw = signed_delivery(CLIENT, SECRET, body, delivery_id=name)
        return httpx.post(url + PATH, content=raw, headers=headers, timeout=10)

    with running_server(env) as (url, proc):
        for round_ in range(3):
            jobs: dict[str, Any] = {f"good-{round_}-{n}": None for n in range(6)}
            jobs |= {f"{name}-{round_}": body for name, body in poisoned.items()}
            answers |= side_by_side(lambda name, jobs=jobs: send(url, name, jobs[name]), jobs)
        assert proc.poll() is None
    good = sorted(name for name in answers if name.startswith("good-"))
    assert {name: answers[name].status_code for name in good} == dict.fromkeys(good, 202)
    refused = {name: (answers[name].status_code, answers[name].json()["detail"])
               for name in answers if not name.startswith("good-")}
    assert {status for status, _ in refused.values()} == {400}, refused
    assert all(detail.endswith("must be printable text") for _, detail in refused.values())
    assert sorted(row[0] for row in pending_deliveries(where)) == good


def test_8_1_a_nul_in_a_data_center_user_key_is_400_on_the_webhook_route(
    tmp_path: Path, storage: Storage,
) -> None:
    """§8.1: a Data Center assignee is identified by its `key` (account mappings are keyed by
    it): one holding a NUL is a malformed body on the plain-webhook route too."""
    env = webhook_env(tmp_path, worker=False, **storage.env(tmp_path))
    where = storage.where(tmp_path)
    with FakeJira("unused-app-key") as jira, running_server(env) as (url, _):
        site = jira.add_data_center_site("dc", "dc-personal-access-token-0123456789")
        created = admin_call(url, "POST", SITES, site_request(
            "data-center", site.base_url, "dc-personal-access-token-0123456789"))
        assert created.status_code == 201, created.text
        site_id, secret = created.json()["id"], created.json()["webhook_secret"]
        body = fixture_json("jira-datacenter-issue-updated.json")
        before = table_rows(where)
        for field, value in (("key", "JIRAUSER10100\u0000"), ("emailAddress", "dee\u0000@x")):
            poisoned = json.loads(json.dumps(body))
            poisoned["issue"]["fields"]["assignee"][field] = value
            refused = deliver(url, site_id, secret, poisoned)
            assert refused.status_code == 400, refused.text
            assert refused.json()["detail"] == (
                f"issue.fields.assignee.{field} must be printable text")
        assert table_rows(where) == before
        assert deliver(url, site_id, secret, body).status_code == 202
    assert [row[0] for row in query(where, "SELECT issue_key FROM deliveries")] == ["OPS-7"]


def test_W9_a_nul_in_a_jira_status_name_or_a_sentry_user_id_is_journalled_replaced(
    tmp_path: Path, storage: Storage,
) -> None:
    """Free text is not refused: a status name from Jira reaches the journal, where a NUL
    would fail the write on PostgreSQL (the delivery retried into a dead letter); it is
    journalled with U+FFFD and the sync happens. A user id from Sentry's members answer is an
    identifier sent back in the PUT: one holding a NUL is no member to assign (unresolvable,
    nothing sent; tests/contract/test_sentry_api.py)."""
    with TimedFakeSentry() as sentry:
        sentry.add_org("acme", "sntrys_acme-identifiers-token-0123456789")
        sentry.add_issue("acme", "4711")
        sentry.add_member("acme", "7\u0000", [("grace@example.com", True)])
        env = {**sync_env(tmp_path), **storage.env(tmp_path, "db.sqlite")}
        tenant = install(env, CLIENT, SECRET, "http://127.0.0.1:9")
        with running_server(env) as (url, _):
            bind(url, tenant, "acme", sentry.url, "sntrys_acme-identifiers-token-0123456789",
                 {"APP-123": ["4711"]}, status_map={"10000": {"resolve": ["10101"]}})
            status = status_body("20417", "APP-123")
            _item(status, "status")["toString"] = "Done\u0000"
            assignee = issue_updated_body("assignee")
            for name, body in (("status-name", status), ("sentry-user", assignee)):
                headers, raw = signed_delivery(CLIENT, SECRET, body, delivery_id=name)
                accepted = httpx.post(url + PATH, content=raw, headers=headers, timeout=10)
                assert accepted.status_code == 202, accepted.text
            where = storage.where(tmp_path, "db.sqlite")
            wait_for(lambda: [state for _, state in pending_deliveries(where)] == ["done"] * 2,
                     what="both deliveries processed")
            entries = journal(url, tenant)
    assert sorted((e["delivery"], e["kind"], e["outcome"]) for e in entries) == [
        ("sentry-user", "assignee", "unresolvable"), ("status-name", "status", "applied")]
    details = {e["delivery"]: e["detail"] for e in entries}
    assert "→ Done\ufffd (10101): resolves by the status map" in details["status-name"]
    assert sentry.issue("acme", "4711").status == "resolved"
    assert sentry.issue("acme", "4711").assigned_to is None


def test_10_a_nul_in_a_page_token_issuer_is_401_and_spoils_no_page_beside_it(
    tmp_path: Path, storage: Storage,
) -> None:
    """§10, before authentication: a page's `?jwt=` and a page POST's context token name their
    site by an unverified `iss`, looked up (batched, on PostgreSQL) before any signature can be
    checked. One holding a NUL is 401 on its own; the page loads beside it still render."""
    env = {**sync_env(tmp_path), **storage.env(tmp_path, "db.sqlite")}
    install(env, CLIENT, SECRET, "http://127.0.0.1:9")
    now = datetime.now(UTC)
    good = signed_page_url(client_key=CLIENT, secret=SECRET, now=now, path=CONFIGURE_PATH)
    forged = signed_page_url(client_key=CLIENT + "\u0000", secret=SECRET, now=now,
                             path=CONFIGURE_PATH)
    unbind = CONFIGURE_PATH + "orgs/acme/unbind/"
    context = context_token(client_key=CLIENT + "\u0000", secret=SECRET, now=now)
    answers: dict[str, int] = {}

    def load(url: str, name: str) -> int:
        if name.startswith("post-"):
            return httpx.post(url + unbind, json={}, timeout=10,
                              headers={"Authorization": f"JWT {context}"}).status_code
        target = good if name.startswith("good-") else forged
        return httpx.get(url + target, timeout=10).status_code

    before = _rows(storage.where(tmp_path, "db.sqlite"))
    with running_server(env) as (url, _):
        for round_ in range(3):
            names = [f"good-{round_}-{n}" for n in range(6)]
            names += [f"get-{round_}-{n}" for n in range(2)] + [f"post-{round_}"]
            answers |= side_by_side(lambda name: load(url, name), names)
    assert {answers[n] for n in answers if n.startswith("good-")} == {200}
    assert {answers[n] for n in answers if not n.startswith("good-")} == {401}, answers
    assert _rows(storage.where(tmp_path, "db.sqlite")) == before


def test_8_2_a_nul_in_a_forge_event_identifier_is_400_and_a_nul_in_a_fit_claim_is_401(
    tmp_path: Path, storage: Storage,
) -> None:
    """§8.2: every FIT claim that is stored or looked up has a shape (installation id,
    `apiBaseUrl`) or is stored hashed (`jti`); the event maps onto the W2 reader, whose
    identifiers must be printable. Nothing is stored for a refused call."""
    def fit(**options: Any) -> str:
        return mint_fit(jwks.signer, module_key="issue-updated-endpoint",
                        api_base_url=site.base_url, **options)

    def post(token: str, event: Any) -> httpx.Response:
        return httpx.post(url + "/extensions/jira/forge/issue-updated/", json=event, timeout=15,
                          headers={"authorization": f"Bearer {token}"})

    with JwksServer(ForgeSigner("identifiers-key")) as jwks, \
            FakeJira("sentry-jira.forge") as jira:
        site = jira.add_forge_site("forge-site")
        env = sync_env(tmp_path, forge_app_id=APP_ID, forge_jwks_url=jwks.url,
                       forge_api_hosts="http://127.0.0.1:*", jira_hosts="https://*.atlassian.net",
                       worker="off")
        env.update(storage.env(tmp_path, "db.sqlite"))
        where = storage.where(tmp_path, "db.sqlite")
        with running_server(env) as (url, _):
            event = fixture_json("forge-issue-updated-event.json")
            for claim in ("app.installationId", "app.apiBaseUrl", "app.module.key"):
                value = {"app.installationId": INSTALLATION_ID, "app.apiBaseUrl": site.base_url,
                         "app.module.key": "issue-updated-endpoint"}[claim] + "\u0000"
                answer = post(fit(overrides={claim: value}), event)
                assert answer.status_code == 401, (claim, answer.text)
            assert query(where, "SELECT count(*) FROM tenants") == [(0,)]
            assert query(where, "SELECT count(*) FROM used_forge_tokens") == [(0,)]
            poisoned = json.loads(json.dumps(event))
            poisoned["issue"]["fields"]["assignee"]["accountId"] = "5b10\u0000"
            refused = post(fit(), poisoned)
            assert refused.status_code == 400, refused.text
            assert refused.json()["detail"] == (
                "issue.fields.assignee.accountId must be printable text")
            assert query(where, "SELECT count(*) FROM deliveries") == [(0,)]
            # A jti is stored only as its hash: a NUL in it is no harm, the call is accepted.
            accepted = post(fit(overrides={"jti": "jti-\u0000"}), event)
            assert accepted.status_code == 202, accepted.text
    assert query(where, "SELECT issue_key FROM deliveries") == [("APP-123",)]


def _cli(env: dict[str, str], *args: str, stdin: bytes = b"") -> int:
    """`sentry-jira ARGS` on the same database, `stdin` as its standard input; the exit code.
    A `str` argument may hold surrogate escapes: it reaches the process as those raw bytes,
    as a non-UTF-8 argument from a shell would."""
    environ = server_env({k: v for k, v in env.items() if k != "SENTRY_JIRA_ADMIN_TOKEN"})
    environ["PYTHONPATH"] = str(REPO / "src") + os.pathsep + environ.get("PYTHONPATH", "")
    done = subprocess.run([sys.executable, "-m", "adapters.cli.main", *args], env=environ,
                          input=stdin, capture_output=True, timeout=30, check=False)
    assert b"Traceback" not in done.stderr, done.stderr
    return done.returncode


def test_S_A_nul_in_search_admin_and_cli_input_is_4xx_or_exit_1_and_stores_nothing(
    tmp_path: Path, storage: Storage,
) -> None:
    """S1–S2 and §A: every path segment, query parameter and body field that is looked up or
    stored is checked (ids and slugs by their ASCII shapes, URLs and tokens as printable
    ASCII) before any store sees it; so is every CLI argument and standard input. A NUL (or a
    non-UTF-8 argument) is a 4xx or exit 1, never a 500, on both engines."""
    env = {**sync_env(tmp_path), **storage.env(tmp_path, "db.sqlite")}
    where = storage.where(tmp_path, "db.sqlite")
    tenant = install(env, CLIENT, SECRET, "http://127.0.0.1:9")
    api = f"/api/tenants/{tenant}/orgs"
    binding = {"sentry_url": "http://127.0.0.1:9", "sentry_token": "sntrys_nul-0123456789"}
    with running_server(env) as (url, _):
        bind(url, tenant, "acme", "http://127.0.0.1:9", "sntrys_nul-0123456789", {})
        token = admin_call(url, "POST", "/api/orgs/acme/search-tokens").json()["token"]
        before = _rows(where)
        search = f"/extensions/jira/search/acme/{tenant}/?field=project&query="
        for path, status in (
            (search + "a%00", 400),
            (search + "a&project=A%00", 400),
            (search.replace("field=project", "field=pro%00ject") + "a", 400),
            (search.replace("/acme/", "/ac%00me/") + "a", 401),
            (search.replace(f"/{tenant}/", f"/{tenant}%00/") + "a", 404),
        ):
            answer = httpx.get(url + path, headers={"Authorization": f"Bearer {token}"},
                               timeout=10)
            assert answer.status_code == status, (path, answer.text)
        for method, path, body in (
            ("PUT", f"{api}/acme/accounts/a%00b", {"sentry_user_id": "7"}),
            ("PUT", f"{api}/acme/accounts/dee", {"sentry_user_id": "7\u0000"}),
            ("PUT", f"{api}/acme/links/APP-1%00", {"sentry_issue_ids": ["1"]}),
            ("PUT", f"{api}/acme/links/APP-1", {"sentry_issue_ids": ["1\u0000"]}),
            ("PUT", f"{api}/ac%00me", binding),
            ("PUT", f"{api}/acme", {**binding, "sentry_url": "http://127.0.0.1:9/\u0000"}),
            ("PUT", f"{api}/acme", {**binding, "sentry_token": "sntrys_\u0000"}),
            ("PUT", f"{api}/acme", {"status_map": {"10000\u0000": {"resolve": ["1"]}}}),
            ("PUT", f"{api}/acme", {"status_map": {"10000": {"resolve": ["1\u0000"]}}}),
            ("POST", SITES, site_request("cloud", "http://127.0.0.1:9/\u0000", "c" * 20,
                                         "bot@example.com")),
            ("POST", SITES, site_request("cloud", "http://127.0.0.1:9", "c" * 20, "b\u0000@x")),
            ("POST", SITES, site_request("cloud", "http://127.0.0.1:9", "c\u0000", "b@x")),
            ("GET", f"/api/tenants/{tenant}/journal?issue_key=APP-1%00", None),
            ("GET", f"/api/tenants/{tenant}/journal?limit=1%00", None),
            ("POST", "/api/orgs/ac%00me/search-tokens", None),
            ("DELETE", "/api/orgs/acme/search-tokens/1%00", None),
            ("POST", "/api/dead-letters/1%00/retry", None),
        ):
            answer = admin_call(url, method, path, body)
            assert answer.status_code == 400, (method, path, answer.text)
        assert _cli(env, "orgs", "bind", str(tenant), "acme", "--sentry-url",
                    "http://127.0.0.1:9", "--sentry-token-stdin", stdin=b"sntrys_\x00") == 1
        assert _cli(env, "accounts", "map", str(tenant), "acme", "m\udcfcller", "7") == 1
        assert _cli(env, "links", "set", str(tenant), "acme", "APP-\udcff1", "1") == 1
        assert _cli(env, "journal", str(tenant), "--issue-key", "APP-\udcff1") == 1
        assert _rows(where) == before


def _insert_legacy_delivery(where: Where, tenant: int, delivery_id: str,
                            body: dict[str, Any]) -> None:
    """A delivery as a release before the W2 identifier rule recorded it (a NUL inside the
    stored JSON is only the six bytes `\\u0000` of a bytea / BLOB: both engines kept it)."""
    row = (tenant, delivery_id, body["issue"]["id"], body["issue"]["key"],
           json.dumps(body).encode(), time.time(), time.time())
    sql = ("INSERT INTO deliveries (tenant_id, delivery_id, issue_id, issue_key, body, "
           "received_at, not_before) VALUES ({0}, {0}, {0}, {0}, {0}, {0}, {0})")
    if storage_is_postgres(where):
        import psycopg

        with psycopg.connect(str(where), autocommit=True) as conn:
            conn.execute(sql.format("%s").encode(), row)
        return
    conn = sqlite3.connect(where)
    try:
        with conn:
            conn.execute(sql.format("?"), row)
    finally:
        conn.close()


def test_W5_W7_a_delivery_recorded_before_the_rule_is_still_processed_on_both_engines(
    tmp_path: Path, storage: Storage,
) -> None:
    """Deliveries recorded by an earlier release may hold a NUL in an account id or a
    moved-from key. The worker reads such an identifier as absent — the e-mail decides the
    assignee (W5), the old key names no link (W7) — instead of lookups that failed on
    PostgreSQL at every attempt until the delivery became a dead letter."""
    token = "sntrys_acme-legacy-token-0123456789"
    with TimedFakeSentry() as sentry:
        sentry.add_org("acme", token)
        sentry.add_issue("acme", "4711")
        sentry.add_member("acme", "7", [("grace@example.com", True)])
        env = {**sync_env(tmp_path), **storage.env(tmp_path, "db.sqlite")}
        where = storage.where(tmp_path, "db.sqlite")
        tenant = install(env, CLIENT, SECRET, "http://127.0.0.1:9")
        with running_server(env) as (url, _):
            bind(url, tenant, "acme", sentry.url, token, {"APP-123": ["4711"]})
        assigned = issue_updated_body("assignee")
        assigned["issue"]["fields"]["assignee"]["accountId"] = "5b10ac8d\u0000"
        moved = issue_updated_body("moved", issue={**assigned["issue"], "key": "APP-123"})
        _item(moved, "Key").update(fromString="APP-1\u0000", toString="APP-123")
        _insert_legacy_delivery(where, tenant, "legacy-assigned", assigned)
        _insert_legacy_delivery(where, tenant, "legacy-moved", moved)
        with running_server(env) as (url, _):
            wait_for(lambda: [state for _, state in pending_deliveries(where)] == ["done"] * 2,
                     what="both legacy deliveries processed")
            entries = journal(url, tenant)
    outcomes = sorted((e["delivery"], e["kind"], e["outcome"]) for e in entries)
    assert outcomes == [("legacy-assigned", "assignee", "applied"),
                        ("legacy-moved", "delivery", "ignored")], outcomes
    assert sentry.issue("acme", "4711").assigned_to == "7"
    assert all("\u0000" not in e["detail"] for e in entries)


def test_W2_the_longest_values_fit_every_index_on_both_engines(
    tmp_path: Path, storage: Storage,
) -> None:
    """Over-long values: every indexed text column is fed a bounded value, so none can pass
    PostgreSQL's btree entry limit (~2.7 kB). The longest an outside caller can send — a
    255-character issue key and a 64-character issue id of 4-byte characters, a 64-character
    delivery id — is recorded, processed and journalled (indexed by issue key); one more
    character is a 400."""
    token = "sntrys_acme-longest-token-0123456789"
    with TimedFakeSentry() as sentry:
        sentry.add_org("acme", token)
        env = {**sync_env(tmp_path), **storage.env(tmp_path, "db.sqlite")}
        where = storage.where(tmp_path, "db.sqlite")
        tenant = install(env, CLIENT, SECRET, "http://127.0.0.1:9")
        longest = issue_updated_body()
        longest["issue"].update(key="\U0001d538" * 255, id="\U0001d539" * 64)
        with running_server(env) as (url, _):
            bind(url, tenant, "acme", sentry.url, token, {"APP-123": ["4711"]})
            for key, status in (("\U0001d538" * 256, 400), (longest["issue"]["key"], 202)):
                body = {**longest, "issue": {**longest["issue"], "key": key}}
                headers, raw = signed_delivery(CLIENT, SECRET, body, delivery_id="d" * 64)
                answer = httpx.post(url + PATH, content=raw, headers=headers, timeout=10)
                assert answer.status_code == status, answer.text
            wait_for(lambda: [state for _, state in pending_deliveries(where)] == ["done"],
                     what="the longest delivery processed")
            entries = journal(url, tenant)
    assert [(e["issue_key"] == longest["issue"]["key"], e["kind"], e["outcome"])
            for e in entries] == [(True, "delivery", "ignored")]
    assert len(longest["issue"]["key"].encode()) == 1020
