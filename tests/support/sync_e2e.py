"""End-to-end helpers for the sync: a timed fake Sentry, tenants written into the database,
bindings and links through the admin API of a running `serve`, signed deliveries."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from adapters.config import load_settings
from adapters.postgres.tenants import PgTenantStore
from adapters.sqlite.tenants import SqliteTenantStore
from adapters.wiring import open_database, open_postgres
from core.describe import ISSUE_UPDATED_PATH
from core.model.tenant import Installation
from tests.support.builders import ADMIN_TOKEN, TEST_FERNET_KEY
from tests.support.fake_sentry import FakeSentry, RecordedRequest
from tests.support.paths import REPO
from tests.support.process import server_env
from tests.support.webhooks import signed_delivery

APP_KEY = "sentry-jira-e2e"


class TimedFakeSentry(FakeSentry):
    """The fake Sentry, also noting when (time.monotonic) each request arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: list[tuple[float, RecordedRequest]] = []
        self._arrivals_lock = threading.Lock()

    def _record(self, request: RecordedRequest) -> Any:
        with self._arrivals_lock:
            self.arrivals.append((time.monotonic(), request))
        return super()._record(request)

    def puts_to(self, org: str, issue_id: str) -> list[tuple[float, RecordedRequest]]:
        path = self.issue_path(org, issue_id)
        with self._arrivals_lock:
            return [(t, r) for t, r in self.arrivals if r.method == "PUT" and r.path == path]


# §9: set by the `each_engine` fixture (tests/e2e/conftest.py) to run a module's tests on a
# fresh PostgreSQL database too; None: SQLite.
POSTGRES_URL: str | None = None


def sync_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        "SENTRY_JIRA_DATABASE": POSTGRES_URL or str(tmp_path / "db.sqlite"),
        "SENTRY_JIRA_SECRET_KEY": TEST_FERNET_KEY,
        "SENTRY_JIRA_ADMIN_TOKEN": ADMIN_TOKEN,
        "SENTRY_JIRA_APP_KEY": APP_KEY,
        "SENTRY_JIRA_JIRA_HOSTS": "http://127.0.0.1:*",
        "SENTRY_JIRA_SENTRY_HOSTS": "http://127.0.0.1:*",  # §8.3: the loopback fake Sentry
        "SENTRY_JIRA_RETRY_BASE_SECONDS": "0.05",
        "SENTRY_JIRA_MAX_ATTEMPTS": "3",
    }
    env.update({f"SENTRY_JIRA_{k.upper()}": v for k, v in extra.items()})
    return env


def install(env: dict[str, str], client_key: str, secret: str, base_url: str) -> int:
    """Write an installed tenant into the database (as an earlier signed install would), on
    either engine (§9)."""
    installation = Installation(client_key=client_key, shared_secret=secret, base_url=base_url,
                                display_url=None, installed_at=datetime.now(UTC))
    settings = load_settings(env)
    if settings.postgres_url is not None:
        pg = open_postgres(settings)

        async def upsert() -> int:
            try:
                return (await PgTenantStore(pg).upsert_installed(installation)).id
            finally:
                await pg.aclose()

        return asyncio.run(upsert())
    database = open_database(settings)
    try:
        tenant = asyncio.run(SqliteTenantStore(database).upsert_installed(installation))
    finally:
        database.close()
    return tenant.id


def admin(url: str, method: str, path: str, body: Any = None) -> httpx.Response:
    return httpx.request(method, url + path, json=body, timeout=10,
                         headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})


def bind(url: str, tenant_id: int, org: str, sentry_url: str, token: str,
         links: dict[str, list[str]], **settings: Any) -> None:
    response = admin(url, "PUT", f"/api/tenants/{tenant_id}/orgs/{org}",
                     {"sentry_url": sentry_url, "sentry_token": token, **settings})
    assert response.status_code == 200, response.text
    for key, ids in links.items():
        response = admin(url, "PUT", f"/api/tenants/{tenant_id}/orgs/{org}/links/{key}",
                         {"sentry_issue_ids": ids})
        assert response.status_code == 200, response.text


def status_body(issue_id: str, key: str, *, to: str = "10101", frm: str = "3",
                updated: str = "2025-11-28T09:00:00.000+0000") -> dict[str, Any]:
    return {
        "timestamp": 1764320400000,
        "webhookEvent": "jira:issue_updated",
        "issue": {"id": issue_id, "key": key, "fields": {
            "project": {"id": "10000", "key": "APP"}, "assignee": None, "updated": updated}},
        "changelog": {"id": f"cl-{issue_id}-{to}", "items": [
            {"field": "status", "from": frm, "fromString": frm, "to": to, "toString": to}]},
    }


def deliver(url: str, client_key: str, secret: str, body: dict[str, Any], delivery_id: str
            ) -> httpx.Response:
    headers, raw = signed_delivery(client_key, secret, body, delivery_id=delivery_id)
    response = httpx.post(url + ISSUE_UPDATED_PATH, content=raw, headers=headers, timeout=10)
    assert response.status_code == 202, response.text
    return response


def wait_for(check: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def journal(url: str, tenant_id: int, issue_key: str | None = None) -> list[dict[str, Any]]:
    query = f"?issue_key={issue_key}&limit=500" if issue_key else "?limit=500"
    response = admin(url, "GET", f"/api/tenants/{tenant_id}/journal{query}")
    assert response.status_code == 200, response.text
    return list(response.json())


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`sentry-jira ARGS` on the same database (without the admin token: the CLI needs none)."""
    environ = server_env({k: v for k, v in env.items() if k != "SENTRY_JIRA_ADMIN_TOKEN"})
    environ["PYTHONPATH"] = str(REPO / "src") + os.pathsep + environ.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "adapters.cli.main", *args], env=environ,
                          capture_output=True, text=True, timeout=30)


def cli_json(env: dict[str, str], *args: str) -> Any:
    result = cli(env, *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
