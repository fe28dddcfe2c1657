"""End-to-end helpers for the `webhook` transport (SPEC §8.1): register a site over the admin
API, post deliveries signed as Jira signs them, and read the database the way an attacker with
the file would (read-only), to prove what is and is not stored.

Shared by tests/e2e/test_webhook_story.py, test_cli_sites.py and test_hostile_webhook.py.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from tests.support.builders import ADMIN_TOKEN, TEST_FERNET_KEY
from tests.support.encrypted_columns import FERNET_SHAPE
from tests.support.hub_signature import hub_signed_delivery

BASE = "https://sentry-jira.example.com"  # SENTRY_JIRA_BASE_URL: the public URL Jira posts to
SITES = "/api/sites"
# §8.1: the secret is at least 32 random bytes, url-safe: 43 base64url characters or more.
WEBHOOK_SECRET_SHAPE = re.compile(r"^[A-Za-z0-9_-]{43,}={0,2}$")


def webhook_path(site_id: int | str) -> str:
    """§8.1 inbound route of one site."""
    return f"/extensions/jira/webhook/{site_id}/"


def webhook_env(directory: Path, *, worker: bool, **extra: str) -> dict[str, str]:
    """`serve` on a fresh database in `directory`, Jira and Sentry fakes on loopback, a known
    Fernet key (so a test can decrypt what the server stored), the admin API on."""
    env = {
        "SENTRY_JIRA_DATABASE": str(directory / "sentry-jira.db"),
        "SENTRY_JIRA_SECRET_KEY": TEST_FERNET_KEY,
        "SENTRY_JIRA_BASE_URL": BASE,
        # An exact host (only the port is a wildcard): loopback is allowed because it is named.
        "SENTRY_JIRA_JIRA_HOSTS": "http://127.0.0.1:*",
        "SENTRY_JIRA_SENTRY_HOSTS": "http://127.0.0.1:*",
        "SENTRY_JIRA_ADMIN_TOKEN": ADMIN_TOKEN,
        "SENTRY_JIRA_HTTP_TIMEOUT_SECONDS": "3",
        "SENTRY_JIRA_RETRY_BASE_SECONDS": "0.05",
        "SENTRY_JIRA_MAX_ATTEMPTS": "3",
        "SENTRY_JIRA_WORKER": "true" if worker else "off",
    }
    env.update(extra)
    return env


def site_request(flavor: str, base_url: str, credential: str, email: str | None = None
                 ) -> dict[str, Any]:
    """The §8.1 `POST /api/sites` body: an API token (cloud) or a PAT (data-center)."""
    auth: dict[str, str] = {"kind": "pat"} if email is None else {"kind": "api-token",
                                                                  "email": email}
    return {"base_url": base_url, "flavor": flavor, "auth": auth, "credential": credential}


def admin_call(url: str, method: str, path: str, body: Any = None) -> httpx.Response:
    return httpx.request(method, url + path, json=body, timeout=15,
                         headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})


def deliver(url: str, site_id: int | str, secret: str, body: dict[str, Any] | bytes, *,
            identifier: str | None = None) -> httpx.Response:
    """POST one delivery signed with `secret` to the site's webhook route."""
    headers, raw = hub_signed_delivery(secret, body, identifier=identifier)
    return httpx.post(url + webhook_path(site_id), content=raw, headers=headers, timeout=15)


def table_rows(database: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, read through a read-only connection (never creates a file)."""
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)
    try:
        names = [row[0] for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {name: sorted(conn.execute(f'SELECT * FROM "{name}"').fetchall(), key=repr)
                for name in names}
    finally:
        conn.close()


def decrypted_values(database: Path, keys: tuple[str, ...] = (TEST_FERNET_KEY,)) -> list[str]:
    """Every Fernet token found in any column of any row, decrypted: what the stored secrets
    are, whatever the schema calls them. Tokens that do not decrypt are skipped."""
    box = MultiFernet([Fernet(key) for key in keys])
    found: list[str] = []
    for rows in table_rows(database).values():
        for row in rows:
            for value in row:
                text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
                if not isinstance(text, str):
                    continue
                for token in FERNET_SHAPE.findall(text):
                    try:
                        found.append(box.decrypt(token.encode("ascii")).decode("utf-8", "replace"))
                    except InvalidToken:
                        continue
    return found


def stored_anywhere(database: Path, secret: str) -> bool:
    """Whether `secret` is in the database: in clear in any row, or inside any encrypted value."""
    if any(secret in value for value in decrypted_values(database)):
        return True
    needle = secret.encode()
    for rows in table_rows(database).values():
        for row in rows:
            for value in row:
                blob = value.encode() if isinstance(value, str) else value
                if isinstance(blob, bytes) and needle in blob:
                    return True
    return False
