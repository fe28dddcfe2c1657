"""handle issue update end to end: real `serve` processes, a fake Sentry and a fake Jira on
loopback, signed deliveries through the acknowledgement endpoint (W4–W9, §3, §A)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.support.builders import ADMIN_TOKEN
from tests.support.fake_jira import FakeJira, Reply
from tests.support.process import free_port, running_server
from tests.support.sync_e2e import (
    APP_KEY,
    TimedFakeSentry,
    admin,
    bind,
    cli,
    cli_json,
    deliver,
    install,
    journal,
    status_body,
    sync_env,
    wait_for,
)
from tests.support.webhooks import issue_updated_body

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("each_engine")]  # §9: both engines

SECRET = "e2e-sync-shared-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
OTHER_SECRET = "e2e-sync-other-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
ACME_TOKEN = "sntrys_acme-e2e-token-never-shown-0123456789"
QUIET_TOKEN = "sntrys_quiet-e2e-token-never-shown-0123456789"
OTHER_TOKEN = "sntrys_other-e2e-token-never-shown-0123456789"
NO_SECRETS = (SECRET, OTHER_SECRET, ACME_TOKEN, QUIET_TOKEN, OTHER_TOKEN, ADMIN_TOKEN)


def assert_no_secret(text: str) -> None:
    for secret in NO_SECRETS:
        assert secret not in text, "a secret leaked"


def test_W8_a_signed_delivery_reaches_sentry_as_exactly_the_W8_calls(tmp_path: Path) -> None:
    with FakeJira(app_key=APP_KEY) as jira, TimedFakeSentry() as sentry:
        site = jira.add_site("site-1", SECRET)
        sentry.add_org("acme", ACME_TOKEN)
        sentry.add_org("quiet", QUIET_TOKEN)
        sentry.add_org("other", OTHER_TOKEN)
        for org, issue in (("acme", "4711"), ("acme", "4712"), ("quiet", "5"), ("other", "9")):
            sentry.add_issue(org, issue)
        env = sync_env(tmp_path)
        first = install(env, "site-1", SECRET, site.base_url)
        second = install(env, "site-2", OTHER_SECRET, "http://127.0.0.1:9")
        with running_server(env, log=tmp_path / "serve.log") as (url, _):
            bind(url, first, "acme", sentry.url, ACME_TOKEN, {"APP-123": ["4711", "4712"]})
            bind(url, first, "quiet", sentry.url, QUIET_TOKEN, {"APP-123": ["5"]},
                 sync_status=False)
            bind(url, second, "other", sentry.url, OTHER_TOKEN, {"APP-5": ["9"]})

            # The shared fixture: In Progress (3) → Done (10101), a "done" category in Jira.
            deliver(url, "site-1", SECRET, issue_updated_body("status"), "delivery-1")
            wait_for(lambda: len(journal(url, first, "APP-123")) == 3, what="the journal")
            # APP-5 is linked only in the other tenant: nothing of that tenant is touched.
            deliver(url, "site-1", SECRET, status_body("555", "APP-5"), "delivery-2")
            wait_for(lambda: len(journal(url, first, "APP-5")) == 2, what="the APP-5 journal")

            entries = journal(url, first)
            health = httpx.get(url + "/health", timeout=5)
            cli_entries = cli_json(env, "journal", str(first), "--issue-key", "APP-123")
            cli_text = cli(env, "journal", str(first))

    puts = [(r.method, r.path, r.json, r.authorization) for r in sentry.requests
            if r.method == "PUT"]
    assert puts == [
        ("PUT", "/api/0/organizations/acme/issues/4711/", {"status": "resolved"},
         f"Bearer {ACME_TOKEN}"),
        ("PUT", "/api/0/organizations/acme/issues/4712/", {"status": "resolved"},
         f"Bearer {ACME_TOKEN}"),
    ]
    assert [r for r in sentry.requests if r.method != "PUT"] == []
    assert sentry.issue("quiet", "5").status == "unresolved"
    assert sentry.issue("other", "9").status == "unresolved"
    assert [r.route for r in jira.requests] == ["statuses"]  # cached per tenant afterwards

    outcomes = {(e["issue_key"], e["org"], e["kind"], e["outcome"]) for e in entries}
    assert outcomes == {
        ("APP-123", "acme", "status", "applied"),
        ("APP-123", "quiet", "status", "ignored"),
        ("APP-5", "acme", "delivery", "ignored"),
        ("APP-5", "quiet", "delivery", "ignored"),
    }
    applied = [e for e in entries if e["outcome"] == "applied"]
    assert all("entered the done category" in e["detail"] for e in applied)
    assert [e["delivery"] for e in entries][:2] == ["delivery-2", "delivery-2"]  # newest first
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "queue_depth": 0, "oldest_pending_seconds": None,
                             "dead_letters": 0}
    assert [e["outcome"] for e in cli_entries] == ["applied", "applied", "ignored"]
    assert cli_text.returncode == 0 and "entered the done category" in cli_text.stdout
    assert_no_secret(str(entries) + str(cli_entries) + cli_text.stdout + cli_text.stderr)


def test_W9_failures_retries_dead_letters_and_admin_retries(tmp_path: Path) -> None:
    with TimedFakeSentry() as sentry:
        sentry.add_org("acme", ACME_TOKEN)
        for issue in ("1", "2", "3", "4", "5"):
            sentry.add_issue("acme", issue)
        path = sentry.issue_path
        sentry.fail("PUT", path("acme", "1"), 503)
        sentry.fail("PUT", path("acme", "2"), 429, retry_after=1)
        sentry.fail("PUT", path("acme", "3"), 400)
        sentry.fail("PUT", path("acme", "4"), 503, times=3)
        sentry.fail("PUT", path("acme", "5"), 400)
        env = sync_env(tmp_path)
        tenant = install(env, "site-1", SECRET, "http://127.0.0.1:9")
        with running_server(env, log=tmp_path / "serve.log") as (url, _):
            # A status map decides without asking Jira: 10101 resolves, 4 unresolves.
            bind(url, tenant, "acme", sentry.url, ACME_TOKEN,
                 {f"APP-{n}": [str(n)] for n in range(1, 6)},
                 status_map={"10000": {"resolve": ["10101"], "unresolve": ["4"]}})
            for n in range(1, 6):
                deliver(url, "site-1", SECRET, status_body(str(n), f"APP-{n}"), f"d-{n}")

            def dead_letters() -> list[dict[str, object]]:
                return list(admin(url, "GET", "/api/dead-letters").json())

            wait_for(lambda: len(dead_letters()) == 3, what="three dead letters")
            wait_for(lambda: sentry.issue("acme", "2").status == "resolved", what="issue 2")
            wait_for(lambda: sentry.issue("acme", "1").status == "resolved", what="issue 1")
            letters = {str(d["issue_key"]): d for d in dead_letters()}
            cli_letters = cli_json(env, "dead-letters", "list")

            # Exhausted attempts, retried by an admin: applied now.
            retried = admin(url, "POST", f"/api/dead-letters/{letters['APP-4']['id']}/retry")
            wait_for(lambda: sentry.issue("acme", "4").status == "resolved", what="issue 4")

            # A newer delivery reopens issue 5; the admin retry of its old resolve is stale.
            deliver(url, "site-1", SECRET, status_body(
                "5", "APP-5", frm="10101", to="4", updated="2025-11-28T10:00:00.000+0000"),
                "d-5-newer")
            wait_for(lambda: len(journal(url, tenant, "APP-5")) == 2, what="the newer change")
            cli_retry = cli(env, "dead-letters", "retry", str(letters["APP-5"]["id"]))
            wait_for(lambda: len(journal(url, tenant, "APP-5")) == 3, what="the stale retry")
            stale = journal(url, tenant, "APP-5")[0]
            unknown = admin(url, "POST", "/api/dead-letters/99999/retry")
            cli_unknown = cli(env, "dead-letters", "retry", "99999")
            remaining = dead_letters()

    # 503 then 200: one write applied, after one retry.
    assert [r.json for _, r in sentry.puts_to("acme", "1")] == [{"status": "resolved"}] * 2
    # 429 with Retry-After: 1 — the second attempt not before a second later.
    (first_at, _), (second_at, _) = sentry.puts_to("acme", "2")
    assert second_at - first_at >= 1.0
    # 400: a dead letter at once, one attempt.
    assert len(sentry.puts_to("acme", "3")) == 1
    assert letters["APP-3"]["attempts"] == 1 and "400" in str(letters["APP-3"]["last_error"])
    assert letters["APP-3"]["kind"] == "status" and letters["APP-3"]["org"] == "acme"
    # Exhausted: three attempts, dead; the admin retry writes once more and succeeds.
    assert letters["APP-4"]["attempts"] == 3
    assert retried.status_code == 202
    assert len(sentry.puts_to("acme", "4")) == 4
    # Superseded: the retry of the old resolve is stale and sends nothing.
    assert cli_retry.returncode == 0, cli_retry.stderr
    assert (stale["outcome"], stale["kind"]) == ("stale", "status")
    assert [r.json for _, r in sentry.puts_to("acme", "5")] == [
        {"status": "resolved"}, {"status": "unresolved"}]
    assert sentry.issue("acme", "5").status == "unresolved"
    # Unknown ids: 404 / exit 1.
    assert unknown.status_code == 404 and cli_unknown.returncode == 1
    assert [d["issue_key"] for d in remaining] == ["APP-3"]
    assert {d["issue_key"] for d in cli_letters} == {"APP-3", "APP-4", "APP-5"}
    assert_no_secret(str(letters) + str(cli_letters) + cli_retry.stdout + str(remaining))


def test_SPEC3_two_serve_processes_on_one_database_write_each_action_once(
    tmp_path: Path,
) -> None:
    count = 24
    with TimedFakeSentry() as sentry:
        sentry.add_org("acme", ACME_TOKEN)
        for n in range(1, count + 1):
            sentry.add_issue("acme", str(n))
        env = sync_env(tmp_path)
        tenant = install(env, "site-1", SECRET, "http://127.0.0.1:9")
        with running_server(env, log=tmp_path / "a.log") as (first, _), \
                running_server(env, log=tmp_path / "b.log") as (second, _):
            bind(first, tenant, "acme", sentry.url, ACME_TOKEN,
                 {f"APP-{n}": [str(n)] for n in range(1, count + 1)},
                 status_map={"10000": {"resolve": ["10101"]}})
            for n in range(1, count + 1):
                url = first if n % 2 else second
                deliver(url, "site-1", SECRET, status_body(str(n), f"APP-{n}"), f"d-{n}")
            wait_for(lambda: all(sentry.issue("acme", str(n)).status == "resolved"
                                 for n in range(1, count + 1)), what="every issue resolved")
            time.sleep(0.3)  # room for a duplicate to show up, were there one
            entries = journal(first, tenant)
    paths = [r.path for r in sentry.requests if r.method == "PUT"]
    assert sorted(paths) == sorted(sentry.issue_path("acme", str(n))
                                   for n in range(1, count + 1))
    assert len(entries) == count and {e["outcome"] for e in entries} == {"applied"}


def test_SPEC3_a_delivery_killed_mid_processing_is_finished_after_restart_once(
    tmp_path: Path,
) -> None:
    with FakeJira(app_key=APP_KEY) as jira, TimedFakeSentry() as sentry:
        site = jira.add_site("site-1", SECRET)
        site.reply("statuses", Reply.hang(10), times=1)  # the first process dies waiting
        sentry.add_org("acme", ACME_TOKEN)
        sentry.add_issue("acme", "4711")
        env = sync_env(tmp_path, worker_lease_seconds="1")
        tenant = install(env, "site-1", SECRET, site.base_url)
        port = free_port()
        with running_server(env, port=port, log=tmp_path / "first.log") as (url, proc):
            bind(url, tenant, "acme", sentry.url, ACME_TOKEN, {"APP-123": ["4711"]})
            deliver(url, "site-1", SECRET, issue_updated_body("status"), "delivery-1")
            wait_for(lambda: len(jira.requests_to("statuses")) == 1, what="the lookup")
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        assert sentry.puts_to("acme", "4711") == []
        with running_server(env, port=port, log=tmp_path / "second.log") as (url, _):
            wait_for(lambda: sentry.issue("acme", "4711").status == "resolved",
                     what="the write after restart")
            time.sleep(0.3)
            entries = journal(url, tenant)
            health = httpx.get(url + "/health", timeout=5).json()
    assert len(sentry.puts_to("acme", "4711")) == 1
    assert [(e["delivery"], e["outcome"]) for e in entries] == [("delivery-1", "applied")]
    assert health["queue_depth"] == 0


def test_SPEC3_killed_between_the_sentry_write_and_its_record_at_most_one_duplicate(
    tmp_path: Path,
) -> None:
    """The documented window: the PUT reached Sentry, the process died before committing it.
    After restart the write is sent again (idempotent), and journalled once."""
    with TimedFakeSentry() as sentry:
        sentry.add_org("acme", ACME_TOKEN)
        sentry.add_issue("acme", "4711")
        sentry.hang("PUT", sentry.issue_path("acme", "4711"), 3)
        env = sync_env(tmp_path, worker_lease_seconds="1")
        tenant = install(env, "site-1", SECRET, "http://127.0.0.1:9")
        port = free_port()
        with running_server(env, port=port, log=tmp_path / "first.log") as (url, proc):
            bind(url, tenant, "acme", sentry.url, ACME_TOKEN, {"APP-123": ["4711"]},
                 status_map={"10000": {"resolve": ["10101"]}})
            deliver(url, "site-1", SECRET, status_body("20417", "APP-123"), "delivery-1")
            wait_for(lambda: len(sentry.puts_to("acme", "4711")) == 1, what="the PUT")
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        with running_server(env, port=port, log=tmp_path / "second.log") as (url, _):
            wait_for(lambda: len(journal(url, tenant)) == 1, what="the journal entry")
            time.sleep(0.3)
            entries = journal(url, tenant)
    puts = sentry.puts_to("acme", "4711")
    assert [r.json for _, r in puts] == [{"status": "resolved"}] * 2
    assert [e["outcome"] for e in entries] == ["applied"]


def test_W8_an_assignee_change_finds_the_verified_member_and_assigns(tmp_path: Path) -> None:
    with TimedFakeSentry() as sentry:
        sentry.add_org("acme", ACME_TOKEN)
        sentry.add_issue("acme", "4711")
        sentry.add_member("acme", "42", [("grace@example.com", True)])
        sentry.add_member("acme", "43", [("grace@example.com", False)])  # not verified
        env = sync_env(tmp_path)
        tenant = install(env, "site-1", SECRET, "http://127.0.0.1:9")
        with running_server(env, log=tmp_path / "serve.log") as (url, _):
            bind(url, tenant, "acme", sentry.url, ACME_TOKEN, {"APP-123": ["4711"]})
            deliver(url, "site-1", SECRET, issue_updated_body("assignee"), "delivery-a")
            wait_for(lambda: len(journal(url, tenant)) == 1, what="the journal entry")
            entries = journal(url, tenant)
    calls = [(r.method, r.path, r.query, r.json) for r in sentry.requests]
    assert calls == [
        ("GET", "/api/0/organizations/acme/members/", {"query": ["email:grace@example.com"]},
         None),
        ("PUT", "/api/0/organizations/acme/issues/4711/", {}, {"assignedTo": "user:42"}),
    ]
    assert sentry.issue("acme", "4711").assigned_to == "42"
    assert (entries[0]["kind"], entries[0]["outcome"]) == ("assignee", "applied")
    assert "grace@example.com" not in entries[0]["detail"]
