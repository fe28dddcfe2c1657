"""§3 / §A: CLI processes write while a `serve` process answers admin requests on one database."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from adapters.sqlite.tenants import SqliteTenantStore
from adapters.wiring import bootstrap, open_database
from tests.support.admin_api import SENTRY_TOKEN, an_installation
from tests.support.builders import ADMIN_TOKEN, TEST_FERNET_KEY, a_settings
from tests.support.process import running_server, server_env

pytestmark = pytest.mark.e2e

WRITERS = 6
KEYS_PER_WRITER = 3


def cli_run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "adapters.cli.main", *args],
        env=server_env({**env, "SENTRY_JIRA_SENTRY_TOKEN": SENTRY_TOKEN}),
        capture_output=True,
        text=True,
        timeout=120,
    )


def writer(env: dict[str, str], tenant_id: int, n: int) -> list[subprocess.CompletedProcess[str]]:
    org = f"cli-{n}"
    done = [cli_run(env, "orgs", "bind", str(tenant_id), org, "--sentry-url", "https://sentry.io")]
    for k in range(KEYS_PER_WRITER):
        done.append(
            cli_run(env, "links", "set", str(tenant_id), org, f"PROJ-{k}", str(n * 100 + k))
        )
    return done


def test_A_cli_writers_and_a_serving_process_share_the_database(tmp_path: Path) -> None:
    settings = a_settings(tmp_path)
    database = open_database(settings)
    tenant = asyncio.run(SqliteTenantStore(database).upsert_installed(an_installation()))
    database.close()
    env = {
        "SENTRY_JIRA_DATABASE": str(tmp_path / "sentry-jira.db"),
        "SENTRY_JIRA_SECRET_KEY": TEST_FERNET_KEY,
        "SENTRY_JIRA_ADMIN_TOKEN": ADMIN_TOKEN,
    }
    statuses: list[int] = []
    stop = threading.Event()

    with running_server(env, log=tmp_path / "serve.log") as (url, _):
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

        def serve_loop() -> None:
            # reads and writes through the server while the CLI processes write
            with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
                n = 0
                while not stop.is_set():
                    statuses.append(client.get("/api/tenants").status_code)
                    put = client.put(
                        f"/api/tenants/{tenant.id}/orgs/http-{n % 5}",
                        json={"sentry_url": "https://sentry.io", "sentry_token": SENTRY_TOKEN},
                    )
                    statuses.append(put.status_code)
                    n += 1

        loop = threading.Thread(target=serve_loop)
        loop.start()
        try:
            with ThreadPoolExecutor(max_workers=WRITERS) as pool:
                results = [
                    r
                    for batch in pool.map(lambda n: writer(env, tenant.id, n), range(WRITERS))
                    for r in batch
                ]
        finally:
            stop.set()
            loop.join(timeout=60)
        final = httpx.get(url + f"/api/tenants/{tenant.id}", headers=headers, timeout=10).json()

    for result in results:
        assert result.returncode == 0, result.stderr
        assert "locked" not in result.stderr and "busy" not in result.stderr
    assert statuses and set(statuses) == {200}, sorted(set(statuses))
    expected_orgs = {f"cli-{n}" for n in range(WRITERS)}
    assert expected_orgs <= set(final["orgs"])

    container = bootstrap(settings)
    try:
        for n in range(WRITERS):
            for k in range(KEYS_PER_WRITER):
                link = asyncio.run(container.admin.links.get(tenant.id, f"cli-{n}", f"PROJ-{k}"))
                assert link is not None and link.sentry_issue_ids == (str(n * 100 + k),)
    finally:
        container.close()
