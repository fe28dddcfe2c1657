"""SPEC §7 ack path: signed `issue-updated` deliveries vs an empty Litestar POST handler.

`sentry-jira serve` receives signed `jira:issue_updated` deliveries, each with a unique
delivery id, from wrk; in the same run an empty Litestar POST handler is served the same
way (`adapters.server.run_server`) and driven with the same requests, rounds alternating.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt

from adapters.config import load_settings
from adapters.sqlite.tenants import SqliteTenantStore
from adapters.wiring import open_database
from bench.wrk import (
    REPO,
    Target,
    alternating_rounds,
    check_once,
    free_port,
    median_run,
    serve_command,
    served,
    server_env,
)
from core.qsh import query_string_hash
from core.tenant import Installation

ISSUE_UPDATED = "/extensions/jira/issue-updated/"
FERNET_KEY = "x8mmEJqS4u-SOE9C7kFH0SV1nsfgAXl0fR8-Yt1ZK-8="
SHARED_SECRET = "benchmark-shared-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
CLIENT_KEY = "bench-client-key"
FIXTURE = REPO / "tests" / "fixtures" / "jira-issue-updated-status.json"


def install_tenant(env: dict[str, str]) -> None:
    settings = load_settings(env)
    database = open_database(settings)
    try:
        store = SqliteTenantStore(database)
        asyncio.run(
            store.upsert_installed(
                Installation(
                    client_key=CLIENT_KEY,
                    shared_secret=SHARED_SECRET,
                    base_url="https://bench.atlassian.net",
                    display_url=None,
                    installed_at=datetime.now(UTC),
                )
            )
        )
    finally:
        database.close()


def webhook_token(
    client_key: str, secret: str, path: str = ISSUE_UPDATED, lifetime: int = 3600
) -> str:
    """An HS256 tenant token for a POST to `path`, valid for `lifetime` seconds."""
    now = int(time.time())
    return jwt.encode(
        {
            "iss": client_key,
            "iat": now,
            "exp": now + lifetime,
            "qsh": query_string_hash("POST", path, ""),
        },
        secret,
        algorithm="HS256",
    )


def signed_headers(path: str) -> dict[str, str]:
    return {
        "Authorization": f"JWT {webhook_token(CLIENT_KEY, SHARED_SECRET, path)}",
        "Content-Type": "application/json",
    }


def measure_ack(workdir: Path, *, seconds: int, rounds: int, connections: int) -> dict[str, Any]:
    """Median rounds of the ack path and of the empty handler, and their rate ratio."""
    body = FIXTURE.read_bytes()
    port = free_port()
    env = server_env(
        {
            "SENTRY_JIRA_DATABASE": str(workdir / "ack.db"),
            "SENTRY_JIRA_SECRET_KEY": FERNET_KEY,
            "SENTRY_JIRA_BASE_URL": f"http://127.0.0.1:{port}",
        }
    )
    install_tenant(env)
    headers = signed_headers(ISSUE_UPDATED)
    empty_port = free_port()
    empty_cmd = [sys.executable, str(REPO / "bench" / "empty_app.py"), str(empty_port)]
    empty_env = server_env({})
    empty_env["PYTHONPATH"] = f"{REPO / 'src'}{os.pathsep}{REPO}"
    with (
        served(serve_command(port), env, port, workdir / "serve.log") as app,
        served(empty_cmd, empty_env, empty_port, workdir / "empty.log") as empty,
    ):
        targets = [
            Target(app.url + ISSUE_UPDATED, headers, body, app),
            Target(empty.url + ISSUE_UPDATED, headers, body, empty),
        ]
        for target in targets:
            check_once(target.url, headers, body, 202)
        acks, empties = alternating_rounds(
            targets, rounds=rounds, seconds=seconds, connections=connections, workdir=workdir
        )
    ack, baseline = median_run(acks), median_run(empties)
    return {
        "ack": ack,
        "empty": baseline,
        "ratio": ack["rps"] / baseline["rps"] if baseline["rps"] else 0.0,
        "rounds": [(a["rps"], e["rps"]) for a, e in zip(acks, empties, strict=True)],
    }
