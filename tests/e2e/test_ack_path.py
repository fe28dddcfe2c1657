"""The acknowledgement path through real `serve` processes (W3, W4, W10, L4)."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from adapters.config import load_settings
from adapters.sqlite.inbox import SqliteInbox
from adapters.sqlite.loop_connection import LoopConnection
from adapters.sqlite.tenants import SqliteTenantStore
from adapters.wiring import open_database
from core.describe import ISSUE_UPDATED_PATH as PATH
from core.model.tenant import Installation
from tests.support.builders import TEST_FERNET_KEY
from tests.support.process import running_server
from tests.support.webhooks import signed_delivery

pytestmark = pytest.mark.e2e

CLIENT = "e2e-client"
SECRET = "e2e-shared-secret-0123456789-abcdefghijklmnopqrstuvwxyz"


def env_for(tmp_path: Path) -> dict[str, str]:
    return {"SENTRY_JIRA_DATABASE": str(tmp_path / "db.sqlite"),
            "SENTRY_JIRA_SECRET_KEY": TEST_FERNET_KEY,
            # The worker (when present) must not finish deliveries under these tests' feet.
            "SENTRY_JIRA_WORKER": "off"}


def install(env: dict[str, str], secret: str = SECRET) -> None:
    """Write the tenant as another process would (the CLI, or a second server's install)."""
    database = open_database(load_settings(env))
    try:
        asyncio.run(SqliteTenantStore(database).upsert_installed(Installation(
            client_key=CLIENT, shared_secret=secret, base_url="https://acme.atlassian.net",
            display_url=None, installed_at=datetime.now(UTC))))
    finally:
        database.close()


def pending_deliveries(db_file: Path) -> list[tuple[str, str]]:
    conn = sqlite3.connect(db_file)
    try:
        return conn.execute("SELECT delivery_id, state FROM deliveries ORDER BY id").fetchall()
    finally:
        conn.close()


def _send(url: str, headers: dict[str, str], body: bytes, barrier: threading.Barrier,
          answers: list[httpx.Response]) -> None:
    barrier.wait()
    answers.append(httpx.post(url + PATH, content=body, headers=headers, timeout=10))


def test_W3_two_processes_receiving_the_same_delivery_accept_it_once(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    install(env)
    with running_server(env) as (first, _), running_server(env) as (second, _):
        for n in range(20):
            headers, body = signed_delivery(CLIENT, SECRET, delivery_id=f"same-{n}")
            barrier = threading.Barrier(2)
            answers: list[httpx.Response] = []

            threads = [threading.Thread(target=_send, args=(u, headers, body, barrier, answers))
                       for u in (first, second)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert sorted(a.status_code for a in answers) == [200, 202], n
            assert {a.json()["status"] for a in answers} == {"accepted", "duplicate"}
    assert len(pending_deliveries(tmp_path / "db.sqlite")) == 20


def test_W4_kill_9_right_after_a_202_loses_nothing(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    install(env)
    with running_server(env) as (url, proc):
        headers, body = signed_delivery(CLIENT, SECRET, delivery_id="survives")
        response = httpx.post(url + PATH, content=body, headers=headers, timeout=10)
        assert response.status_code == 202
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    # After the crash the delivery is there, and one worker can claim it exactly once.
    with running_server(env) as (url, _):
        headers, body = signed_delivery(CLIENT, SECRET, delivery_id="survives")
        again = httpx.post(url + PATH, content=body, headers=headers, timeout=10)
        assert again.json() == {"status": "duplicate"}
    database = open_database(load_settings(env))
    loop_connection = LoopConnection(database.path)
    inbox = SqliteInbox(database, loop_connection)

    async def claim_twice() -> tuple[int, int]:
        now = datetime.now(UTC) + timedelta(seconds=1)
        first = await inbox.claim("w1", now=now, lease_seconds=60, limit=10)
        second = await inbox.claim("w2", now=now, lease_seconds=60, limit=10)
        return len(first), len(second)

    try:
        assert asyncio.run(claim_twice()) == (1, 0)
    finally:
        loop_connection.close()
        database.close()


def test_W10_a_held_lock_is_503_with_retry_after_then_the_delivery_is_accepted(
    tmp_path: Path,
) -> None:
    env = env_for(tmp_path)
    install(env)
    with running_server(env) as (url, _):
        warm, body = signed_delivery(CLIENT, SECRET, delivery_id="warm")
        assert httpx.post(url + PATH, content=body, headers=warm, timeout=10).status_code == 202
        locker = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)
        try:
            locker.execute("BEGIN EXCLUSIVE")
            headers, body = signed_delivery(CLIENT, SECRET, delivery_id="held")
            refused = httpx.post(url + PATH, content=body, headers=headers, timeout=30)
            assert refused.status_code == 503
            assert int(refused.headers["retry-after"]) >= 1
            assert refused.json()["detail"]
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        accepted = httpx.post(url + PATH, content=body, headers=headers, timeout=10)
        assert accepted.status_code == 202
    assert [d for d, _ in pending_deliveries(tmp_path / "db.sqlite")] == ["warm", "held"]


def test_L4_two_processes_agree_at_once_on_a_rotated_secret(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    install(env)
    with running_server(env) as (first, _), running_server(env) as (second, _):
        for n, url in enumerate((first, second)):
            headers, body = signed_delivery(CLIENT, SECRET, delivery_id=f"old-{n}")
            assert httpx.post(url + PATH, content=body, headers=headers).status_code == 202
        install(env, secret=SECRET + "-rotated")  # a re-install, committed by another process
        for n, url in enumerate((first, second)):
            headers, body = signed_delivery(CLIENT, SECRET, delivery_id=f"stale-{n}")
            assert httpx.post(url + PATH, content=body, headers=headers).status_code == 401
            headers, body = signed_delivery(CLIENT, SECRET + "-rotated", delivery_id=f"new-{n}")
            assert httpx.post(url + PATH, content=body, headers=headers).status_code == 202
