"""S1–S8: `GET /extensions/jira/search/{org}/{tenant_id}/`.

The handler declares its path parameters as plain strings (`FromPath[str]`) and reads the
query raw, so Litestar never answers (400) before the core has checked the token (§5 order
401 → 404 → 400). The raw query keeps repeats (`field` twice is a 400, not "the last one
wins"); it is form-decoded (`+` is a space), invalid UTF-8 becomes U+FFFD.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from litestar import Request, Response, get
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath

from adapters.wiring import Container
from core.model.errors import Unavailable
from core.search.search import SearchRequest, SearchSettings, search

SEARCH_PATH = "/extensions/jira/search/{org:str}/{tenant_id:str}/"
NO_STORE = {"Cache-Control": "no-store"}


def search_request(request: Request[Any, Any, Any], org: str, tenant_id: str) -> SearchRequest:
    """The request as received: every Authorization header, the query pairs in order."""
    scope = request.scope
    authorization = tuple(
        value.decode("latin-1") for name, value in scope["headers"] if name == b"authorization"
    )
    raw_query = scope.get("query_string", b"").decode("latin-1")
    parameters = tuple(
        parse_qsl(raw_query, keep_blank_values=True, encoding="utf-8", errors="replace")
    )
    return SearchRequest(
        org=org, tenant_id=tenant_id, authorization=authorization, parameters=parameters
    )


def routes(container: Container) -> list[HTTPRouteHandler]:
    settings = SearchSettings(admin_tokens=container.settings.admin_tokens)

    @get(SEARCH_PATH, summary="Search a tenant's Jira for the issue-link pickers (S1–S8)")
    async def search_jira(
        request: Request[Any, Any, Any], org: FromPath[str], tenant_id: FromPath[str]
    ) -> Response[list[dict[str, str]]]:
        if container.jira is None:
            raise Unavailable("search is not configured", retry_after=60)
        results = await search(
            search_request(request, org, tenant_id),
            tenants=container.tenants,
            bindings=container.admin.bindings,
            search_tokens=container.admin.search_tokens,
            jira=container.jira,
            settings=settings,
        )
        return Response(
            [{"label": result.label, "value": result.value} for result in results],
            headers=NO_STORE,
        )

    return [search_jira]
