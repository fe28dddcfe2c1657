"""`/schema` offline (#18, §A): the OpenAPI JSON and a self-contained HTML page.

Litestar's default UIs (Scalar, Swagger, Redoc, …) load their JavaScript, CSS, fonts and a
favicon from CDNs: nothing shows without internet access, and every admin who opens the page
tells third parties so. Here the page is rendered on the server from the schema itself — a
table of routes with their summaries and parameters — with no script, no external URL and a
Content-Security-Policy that forbids loading anything. The JSON is at `/schema/openapi.json`.

Both add the two issue-update routes, which are raw ASGI handlers Litestar does not describe:
the Connect webhook and the plain Jira webhook (§8.1).

Access is the admin API's (adapters/http/admin.py `AdminGate`): only with an admin token
configured, and every request to `/schema/...` needs it (401); otherwise no route (404).
"""

from __future__ import annotations

import copy
import html
from typing import Any

from litestar import Request
from litestar.openapi.plugins import JsonRenderPlugin, OpenAPIRenderPlugin

from core.describe import ISSUE_UPDATED_PATH, WEBHOOK_PATH

METHODS = ("get", "put", "post", "delete", "patch", "options", "head")
# Nothing is loaded from anywhere: no script at all, styles inline only.
CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

_DELIVERY_ANSWERS: dict[str, Any] = {
    "202": {"description": "recorded; the worker syncs it (`{\"status\": \"accepted\", "
                           "\"delivery\": …}`)"},
    "200": {"description": "a duplicate, or not relevant (`{\"status\": \"duplicate\"}` / "
                           "`{\"status\": \"ignored\"}`)"},
    "400": {"description": "the verified body is not a `jira:issue_updated` event"},
    "401": {"description": "not verified: nothing recorded, nothing sent"},
    "405": {"description": "any method but POST"},
    "413": {"description": "body over SENTRY_JIRA_MAX_BODY_BYTES"},
    "415": {"description": "not application/json"},
    "431": {"description": "request headers over 16 KiB"},
    "503": {"description": "storage unavailable (Retry-After)"},
}
_JSON_BODY = {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}

TRANSPORT_ROUTES: dict[str, Any] = {
    ISSUE_UPDATED_PATH.rstrip("/"): {"post": {
        "summary": "Jira issue-updated webhook (Atlassian Connect, W1–W4)",
        "description": "Signed by Jira with the tenant's shared secret: `Authorization: JWT "
                       "<HS256 token>` whose `qsh` covers this request. Deduplicated by "
                       "`X-Atlassian-Webhook-Identifier` and recorded before the answer.",
        "parameters": [
            {"name": "Authorization", "in": "header", "required": True,
             "schema": {"type": "string"}, "description": "JWT <token>"},
            {"name": "X-Atlassian-Webhook-Identifier", "in": "header", "required": False,
             "schema": {"type": "string"}, "description": "delivery id (retries repeat it)"},
        ],
        "requestBody": _JSON_BODY,
        "responses": _DELIVERY_ANSWERS,
    }},
    WEBHOOK_PATH.rstrip("/"): {"post": {
        "summary": "Jira webhook signed with X-Hub-Signature (plain webhook sites, §8.1)",
        "description": "For a site registered with `POST /api/sites` (or `sentry-jira sites "
                       "add`): `X-Hub-Signature: sha256=<hex HMAC-SHA256 of the raw body>` "
                       "under the site's webhook secret. Deduplicated by the body's hash.",
        "parameters": [
            {"name": "site_id", "in": "path", "required": True,
             "schema": {"type": "integer"}, "description": "the site's id"},
            {"name": "X-Hub-Signature", "in": "header", "required": True,
             "schema": {"type": "string"}, "description": "sha256=<hex>"},
        ],
        "requestBody": _JSON_BODY,
        "responses": _DELIVERY_ANSWERS,
    }},
}


def complete(openapi_schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with the raw ASGI transport routes described (a copy)."""
    schema = copy.copy(openapi_schema)
    schema["paths"] = {**TRANSPORT_ROUTES, **(openapi_schema.get("paths") or {})}
    return schema


class SchemaJson(JsonRenderPlugin):
    """`/schema/openapi.json`, with the transport routes."""

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        return super().render(request, complete(openapi_schema))


class OfflineSchemaPage(OpenAPIRenderPlugin):
    """`/schema`: the routes as one HTML table, rendered here; nothing loaded from anywhere."""

    def __init__(self, path: str = "/") -> None:
        super().__init__(path=path, favicon="", style="")

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        schema = complete(openapi_schema)
        info = schema.get("info") or {}
        title = f"{info.get('title', 'API')} {info.get('version', '')}".strip()
        json_path = self.get_openapi_json_route(request)
        rows = []
        for path, item in sorted((schema.get("paths") or {}).items()):
            for method in METHODS:
                operation = (item or {}).get(method)
                if operation is None:
                    continue
                rows.append(_row(method, path, operation))
        page = _PAGE.format(
            csp=html.escape(CSP), title=html.escape(title), json=html.escape(json_path),
            count=len(rows), rows="\n".join(rows))
        return page.encode("utf-8")


def _row(method: str, path: str, operation: dict[str, Any]) -> str:
    parameters = ", ".join(
        f"{p.get('name', '?')} ({p.get('in', '?')}{', required' if p.get('required') else ''})"
        for p in operation.get("parameters") or [] if isinstance(p, dict))
    answers = ", ".join(sorted((operation.get("responses") or {}).keys()))
    description = operation.get("description") or ""
    return (
        f"<tr><td class=m>{html.escape(method.upper())}</td>"
        f"<td><code>{html.escape(path)}</code></td>"
        f"<td>{html.escape(str(operation.get('summary') or ''))}"
        f"{'<br><small>' + html.escape(str(description)) + '</small>' if description else ''}"
        f"</td><td><small>{html.escape(parameters)}</small></td>"
        f"<td><small>{html.escape(answers)}</small></td></tr>"
    )


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="referrer" content="no-referrer">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; width: 100%; }}
td, th {{ border-bottom: 1px solid #ddd; padding: .4em .6em; text-align: left;
          vertical-align: top; }}
td.m {{ font-weight: bold; font-family: monospace; }}
small {{ color: #555; }}
</style></head>
<body>
<h1>{title}</h1>
<p>{count} operations. The OpenAPI document: <a href="{json}">{json}</a>
(every request here needs the admin token).</p>
<table><thead><tr><th>method</th><th>path</th><th>what</th><th>parameters</th>
<th>answers</th></tr></thead>
<tbody>
{rows}
</tbody></table>
</body></html>
"""
