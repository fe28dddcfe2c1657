"""§10 page tokens as Jira mints them: a page load's `?jwt=` (real qsh of the page URL, the
`jwt` parameter left out) and the context tokens `AP.context.getToken` hands a page."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

from core.connect.qsh import query_string_hash
from tests.support.connect_tokens import hs256_token

ADMIN_ACCOUNT = "557058:0c2d2d4e-admin"
OTHER_ACCOUNT = "712020:9f1e-someone-else"
# What Jira puts beside `jwt` in a page URL (the qsh covers them).
JIRA_PAGE_PARAMS = (
    "xdm_e=https%3A%2F%2Facme.atlassian.net&xdm_c=channel-sentry&cp=&lic=none&cv=1001.0.0"
)


def page_claims(*, client_key: str, now: datetime, path: str, query: str, base_path: str = "",
                account_id: str | None = ADMIN_ACCOUNT, lifetime: int = 180,
                method: str = "GET") -> dict[str, Any]:
    iat = int(now.timestamp())
    claims: dict[str, Any] = {
        "iss": client_key,
        "iat": iat,
        "exp": iat + lifetime,
        "qsh": query_string_hash(method, path, query, base_path),
    }
    if account_id is not None:
        claims["sub"] = account_id
    return claims


def page_url(path: str, query: str, token: str) -> str:
    """The URL Jira frames: its own parameters, then `jwt`."""
    joined = f"{query}&" if query else ""
    return f"{path}?{joined}jwt={quote(token, safe='')}"


def signed_page_url(*, client_key: str, secret: str, now: datetime, path: str,
                    query: str = JIRA_PAGE_PARAMS, base_path: str = "",
                    account_id: str | None = ADMIN_ACCOUNT, **claims: Any) -> str:
    values = page_claims(client_key=client_key, now=now, path=base_path + path, query=query,
                         base_path=base_path, account_id=account_id)
    values.update(claims)
    return page_url(path, query, hs256_token(values, secret))


def context_token(*, client_key: str, secret: str, now: datetime,
                  account_id: str | None = ADMIN_ACCOUNT, lifetime: int = 900,
                  **claims: Any) -> str:
    """What `AP.context.getToken` gives a page: qsh `context-qsh`, `sub` = the user."""
    iat = int(now.timestamp())
    values: dict[str, Any] = {"iss": client_key, "iat": iat, "exp": iat + lifetime,
                              "qsh": "context-qsh"}
    if account_id is not None:
        values["sub"] = account_id
    values.update(claims)
    return hs256_token(values, secret)
