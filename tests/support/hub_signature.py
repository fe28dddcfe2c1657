"""Deliveries of the `webhook` transport signed exactly as Jira signs them (SPEC §8.1).

Jira Cloud admin webhooks and Jira Data Center send `X-Hub-Signature: sha256=<hex>`: the
lowercase hex HMAC-SHA256 of the raw body bytes, keyed with the secret's UTF-8 bytes. Written
independently of `core.jira_webhooks` so that tests of the verifier are not circular.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from tests.support.paths import SHARED

DATA_CENTER_FIXTURE = SHARED / "fixtures" / "jira-datacenter-issue-updated.json"


def hub_signature(raw_body: bytes, secret: str) -> str:
    """The `X-Hub-Signature` value Jira sends for `raw_body` under `secret`."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), raw_body, hashlib.sha256).hexdigest()


def data_center_body() -> dict[str, Any]:
    """A fresh copy of the shared Data Center `jira:issue_updated` fixture."""
    body: dict[str, Any] = json.loads(DATA_CENTER_FIXTURE.read_text())
    return body


def hub_signed_delivery(secret: str, body: dict[str, Any] | bytes, *,
                        identifier: str | None = None) -> tuple[dict[str, str], bytes]:
    """(headers, raw body) of one delivery. Data Center sends no identifier header; Jira
    Cloud sends `X-Atlassian-Webhook-Identifier`, which is not signed (`identifier`)."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", "X-Hub-Signature": hub_signature(raw, secret)}
    if identifier is not None:
        headers["X-Atlassian-Webhook-Identifier"] = identifier
    return headers, raw
