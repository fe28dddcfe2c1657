"""Key retirement against real processes (issue 11, item 4; §A, SPEC §3.1 rotation).

A database holding tenant secrets and Sentry tokens under `old` is served with `new,old`;
`sentry-jira secrets reencrypt` runs as its own process while that server takes signed
deliveries; then the server starts with `new` alone and verifies deliveries, and `old`
alone is refused. Loopback only; the worker is off (nothing is sent to Sentry or Jira).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from adapters.sqlite.schema import ENCRYPTED_COLUMNS
from adapters.wiring import open_database
from tests.contract.test_secrets_reencrypt import SECRETS, SENTRY_TOKENS, populate
from tests.support.builders import a_settings
from tests.support.encrypted_columns import KEY_CHECK, columns_holding_fernet_tokens
from tests.support.process import free_port, running_server, serve_command, server_env
from tests.support.webhooks import signed_delivery

pytestmark = pytest.mark.e2e

OLD = Fernet.generate_key().decode()
NEW = Fernet.generate_key().decode()


def deliver(url: str, delivery_id: str, secret: str = SECRETS["acme"]) -> int:
    headers, body = signed_delivery("acme-client", secret, delivery_id=delivery_id)
    with httpx.Client(base_url=url, timeout=20) as client:
        return client.post("/extensions/jira/issue-updated/", headers=headers,
                           content=body).status_code


def reencrypt(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "adapters.cli.main", "secrets", "reencrypt", "--json"],
        env=server_env(env), capture_output=True, text=True, timeout=60)


def test_A_reencrypt_while_serving_then_serve_with_the_new_key_alone(tmp_path: Path) -> None:
    database_path = tmp_path / "db.sqlite"
    database = open_database(a_settings(database=str(database_path), secret_key=OLD))
    try:
        asyncio.run(populate(database))
    finally:
        database.close()
    base = {"SENTRY_JIRA_DATABASE": str(database_path), "SENTRY_JIRA_WORKER": "false"}
    log = tmp_path / "server.log"

    with running_server({**base, "SENTRY_JIRA_SECRET_KEY": f"{NEW},{OLD}"}, log=log) as (url, _):
        assert deliver(url, "before") == 202
        statuses: list[int] = []
        stop = threading.Event()

        def traffic() -> None:
            n = 0
            while not stop.is_set():
                n += 1
                statuses.append(deliver(url, f"during-{n}"))

        sender = threading.Thread(target=traffic)
        sender.start()
        try:
            done = reencrypt({**base, "SENTRY_JIRA_SECRET_KEY": f"{NEW},{OLD}"})
        finally:
            stop.set()
            sender.join(timeout=60)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == {"reencrypted": {"tenants.shared_secret": 2,
                                                           "tenants.webhook_secret": 1,
                                                           "tenants.webhook_secret_previous": 1,
                                                           "tenants.jira_token": 1,
                                                           "tenants.forge_system_token": 1,
                                                           "bindings.sentry_token": 3,
                                                           "meta.key_check": 1}}
        # Deliveries during the rewrite: verified (202), or at worst told to retry (W10).
        assert statuses and set(statuses) <= {202, 503}, statuses
        assert deliver(url, "after") == 202  # the running server reads the new ciphertext
        assert deliver(url, "forged", secret="not-the-secret-" * 3) == 401

    # Everything encrypted in the database, deliveries included, is in the registry.
    holding = columns_holding_fernet_tokens(database_path, [NEW])
    assert holding - {KEY_CHECK} <= set(ENCRYPTED_COLUMNS)

    with running_server({**base, "SENTRY_JIRA_SECRET_KEY": NEW}, log=log) as (url, _):
        assert deliver(url, "new-alone") == 202

    old_alone = subprocess.run(
        serve_command(free_port()), env=server_env({**base, "SENTRY_JIRA_SECRET_KEY": OLD}),
        capture_output=True, text=True, timeout=30)
    assert old_alone.returncode == 2
    lines = old_alone.stderr.strip().splitlines()
    assert len(lines) == 1 and "SENTRY_JIRA_SECRET_KEY" in lines[0] and OLD not in lines[0]

    text = log.read_text() + done.stdout + done.stderr + old_alone.stderr
    for value in [*SECRETS.values(), *SENTRY_TOKENS.values(), NEW, OLD]:
        assert value not in text
