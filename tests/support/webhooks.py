"""Signed `jira:issue_updated` deliveries, as Jira would send them (W1–W4)."""

from __future__ import annotations

import copy
import json
import time
from typing import Any

from core.connect.qsh import query_string_hash
from core.describe import ISSUE_UPDATED_PATH
from tests.support.connect_tokens import hs256_token
from tests.support.paths import fixture_json


def issue_updated_body(kind: str = "status", **changes: Any) -> dict[str, Any]:
    """A copy of the shared fixture `jira-issue-updated-<kind>.json`, top-level keys changed."""
    body = copy.deepcopy(fixture_json(f"jira-issue-updated-{kind}.json"))
    body.update(changes)
    return dict(body)


def webhook_token(client_key: str, secret: str, *, path: str = ISSUE_UPDATED_PATH,
                  query: str = "", base_path: str = "", method: str = "POST",
                  now: float | None = None, lifetime: int = 180, **claims: Any) -> str:
    """The HS256 token Jira signs a webhook with: iss = clientKey, qsh of this request."""
    issued = int(time.time() if now is None else now)
    values: dict[str, Any] = {
        "iss": client_key, "iat": issued, "exp": issued + lifetime,
        "qsh": query_string_hash(method, base_path + path, query, base_path),
    }
    values.update(claims)
    return hs256_token({k: v for k, v in values.items() if v is not None}, secret)


def signed_delivery(client_key: str, secret: str, body: dict[str, Any] | bytes | None = None,
                    *, delivery_id: str | None = "delivery-1", base_path: str = "",
                    **token_claims: Any) -> tuple[dict[str, str], bytes]:
    """(headers, raw body) of one delivery; `delivery_id=None` leaves the header out."""
    raw = body if isinstance(body, bytes) else json.dumps(
        body if body is not None else issue_updated_body()).encode()
    headers = {
        "Authorization": "JWT " + webhook_token(client_key, secret, base_path=base_path,
                                                **token_claims),
        "Content-Type": "application/json",
    }
    if delivery_id is not None:
        headers["X-Atlassian-Webhook-Identifier"] = delivery_id
    return headers, raw
