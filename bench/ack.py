"""SPEC §7 ack path: signed `issue-updated` deliveries vs an empty Litestar POST handler.

`sentry-jira serve` receives signed `jira:issue_updated` deliveries, each with a unique
delivery id, from wrk; in the same run an empty Litestar POST handler is served the same
way (`adapters.http.server.run_server`) and driven with the same requests, rounds alternating.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
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
from core.connect.qsh import query_string_hash
from core.model.tenant import Installation

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
    """Median rounds of the ack path and of the empty handler, and their rate ratio.

    The SPEC §7 figure is the acknowledgement alone: that server runs with its in-process
    worker off (`SENTRY_JIRA_WORKER=off`), alternating with the empty handler. Afterwards,
    alone (its worker keeps syncing the backlog after each round and must not steal CPU from
    another server's round), a server as `serve` runs by default, syncing every accepted
    delivery in the same process; its rate is reported against the same baseline, with the
    rate at which its worker works off the backlog once the load stops.
    """
    body = FIXTURE.read_bytes()
    headers = signed_headers(ISSUE_UPDATED)

    def ack_server(name: str, **extra: str) -> tuple[int, dict[str, str]]:
        port = free_port()
        env = server_env(
            {
                "SENTRY_JIRA_DATABASE": str(workdir / f"{name}.db"),
                "SENTRY_JIRA_SECRET_KEY": FERNET_KEY,
                "SENTRY_JIRA_BASE_URL": f"http://127.0.0.1:{port}",
                **extra,
            }
        )
        install_tenant(env)
        return port, env

    port, env = ack_server("ack", SENTRY_JIRA_WORKER="off")
    empty_port = free_port()
    empty_cmd = [sys.executable, str(REPO / "bench" / "empty_app.py"), str(empty_port)]
    empty_env = server_env({})
    empty_env["PYTHONPATH"] = f"{REPO / 'src'}{os.pathsep}{REPO}"
    with (
        served(serve_command(port), env, port, workdir / "ack.log") as app,
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

    port, env = ack_server("ack-worker")
    with served(serve_command(port), env, port, workdir / "ack-worker.log") as app_worker:
        target = Target(app_worker.url + ISSUE_UPDATED, headers, body, app_worker)
        check_once(target.url, headers, body, 202)
        [with_worker] = alternating_rounds(
            [target], rounds=rounds, seconds=seconds, connections=connections, workdir=workdir
        )
        drain_rate = worker_drain_rate(app_worker.url)
    ack_worker = median_run(with_worker)
    return {
        "ack": ack,
        "empty": baseline,
        "ack_with_worker": ack_worker,
        "ratio": ack["rps"] / baseline["rps"] if baseline["rps"] else 0.0,
        "ratio_with_worker": ack_worker["rps"] / baseline["rps"] if baseline["rps"] else 0.0,
        "worker_drain_per_second": drain_rate,
        "rounds": [(a["rps"], e["rps"]) for a, e in zip(acks, empties, strict=True)],
    }


def worker_drain_rate(url: str, seconds: float = 5.0) -> float:
    """Deliveries per second the in-process worker works off its backlog, load stopped."""
    before = httpx.get(url + "/health", timeout=5).json().get("queue_depth") or 0
    time.sleep(seconds)
    after = httpx.get(url + "/health", timeout=5).json().get("queue_depth") or 0
    return max(0, before - after) / seconds
