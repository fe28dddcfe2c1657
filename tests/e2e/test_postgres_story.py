"""SPEC §9 end to end: two `sentry-jira serve` processes (as if on two machines) on one
PostgreSQL database, with a fake Jira and a fake Sentry on loopback.

install → bind → link through one replica, deliveries spread over both: each delivery is
accepted once (the same delivery sent to both: one 202, one 200 duplicate, W3), each synced
to Sentry once and in order per issue (W6); a secret rotation committed by another process
is honoured by both replicas at their next request (W1, §9); the CLI reads the same database.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from core.describe import ISSUE_UPDATED_PATH
from tests.support.fake_jira import FakeJira
from tests.support.postgres import PostgresCluster
from tests.support.process import running_server
from tests.support.sync_e2e import (
    APP_KEY,
    TimedFakeSentry,
    bind,
    cli_json,
    deliver,
    install,
    journal,
    status_body,
    sync_env,
    wait_for,
)
from tests.support.webhooks import signed_delivery

pytestmark = pytest.mark.e2e

SECRET = "e2e-pg-shared-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
ROTATED = "e2e-pg-rotated-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
TOKEN = "sntrys_pg-e2e-token-never-shown-0123456789"
ISSUES = {"APP-1": ("101", "4701"), "APP-2": ("102", "4702"), "APP-3": ("103", "4703")}


def post(url: str, secret: str, body: dict[str, object], delivery_id: str) -> httpx.Response:
    headers, raw = signed_delivery("site-1", secret, body, delivery_id=delivery_id)
    return httpx.post(url + ISSUE_UPDATED_PATH, content=raw, headers=headers, timeout=10)


def test_s9_two_replicas_on_one_postgresql_sync_each_delivery_once_in_order(
    tmp_path: Path, postgres_cluster: PostgresCluster,
) -> None:
    url_db = postgres_cluster.database(migrated=False)  # the servers migrate it themselves
    env = sync_env(tmp_path, database=url_db, database_pool_size="4")
    with FakeJira(app_key=APP_KEY) as jira, TimedFakeSentry() as sentry:
        site = jira.add_site("site-1", SECRET)
        sentry.add_org("acme", TOKEN)
        for _issue_id, sentry_id in ISSUES.values():
            sentry.add_issue("acme", sentry_id)
        with running_server(env, log=tmp_path / "a.log") as (a, _), \
                running_server(env, log=tmp_path / "b.log") as (b, _):
            tenant = install(env, "site-1", SECRET, site.base_url)
            bind(a, tenant, "acme", sentry.url, TOKEN,
                 {key: [sentry_id] for key, (_, sentry_id) in ISSUES.items()})

            # Each issue: Done, then back to In Progress, then Done — alternating replicas.
            sent = 0
            for step, (to, frm) in enumerate((("10101", "3"), ("3", "10101"), ("10101", "3"))):
                for key, (issue_id, _) in ISSUES.items():
                    body = status_body(issue_id, key, to=to, frm=frm,
                                       updated=f"2025-11-28T09:00:0{step}.000+0000")
                    deliver((a, b)[sent % 2], "site-1", SECRET, body, f"{key}-{step}")
                    sent += 1

            # W3 across processes: the same delivery sent to both replicas is accepted once.
            again = status_body("101", "APP-1", to="10101", frm="3",
                                updated="2025-11-28T09:00:02.000+0000")
            assert post(b, SECRET, again, "APP-1-2").json() == {"status": "duplicate"}
            assert post(a, SECRET, again, "APP-1-2").json() == {"status": "duplicate"}

            def all_applied() -> bool:
                entries = journal(a, tenant)
                return sum(e["outcome"] == "applied" for e in entries) == 9
            wait_for(all_applied, timeout=30, what="nine applied status writes")

            # §9 / W1: a rotation committed by another process is honoured by both replicas
            # at their very next request — the old secret refused, the new one accepted.
            install(env, "site-1", ROTATED, site.base_url)
            site.shared_secret = ROTATED  # Jira's side of the same reinstall
            fresh = status_body("101", "APP-1", to="3", frm="10101",
                                updated="2025-11-28T09:00:09.000+0000")
            for replica in (a, b):
                assert post(replica, SECRET, fresh, "after-rotation-old").status_code == 401
            assert post(b, ROTATED, fresh, "after-rotation").status_code == 202
            assert post(a, ROTATED, fresh, "after-rotation").json() == {"status": "duplicate"}
            wait_for(lambda: len(sentry.puts_to("acme", "4701")) >= 4, what="APP-1's 4th write")

            cli_entries = cli_json(env, "journal", str(tenant), "--issue-key", "APP-2")
            health = httpx.get(b + "/health", timeout=5)

    for key, (_, sentry_id) in ISSUES.items():
        bodies = [r.json for _, r in sentry.puts_to("acme", sentry_id)]
        expected = [{"status": "resolved"}, {"status": "unresolved"}, {"status": "resolved"}]
        if key == "APP-1":
            expected.append({"status": "unresolved"})  # the delivery after the rotation
        assert bodies == expected, key  # each once, in W6 order
    assert [e["outcome"] for e in cli_entries if e["kind"] == "status"].count("applied") == 3
    assert health.status_code == 200
    logs = (tmp_path / "a.log").read_text() + (tmp_path / "b.log").read_text()
    assert "database=postgresql" in logs or '"database": "postgresql"' in logs
    for secret in (SECRET, ROTATED, TOKEN):
        assert secret not in logs
