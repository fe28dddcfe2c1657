"""§A journal and dead letters under `/api` (admin token; off → 404 like every admin route).

Order of checks: 404 (API off: no route) → 401 → 400 (ids, `issue_key`, `limit`; a query
parameter given twice) → 404 (unknown tenant or dead letter).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath

from adapters.http.admin import authorize
from adapters.presenters import dead_letter_json, journal_json
from adapters.wiring import Container
from core.admin import journal as sync_admin
from core.model.errors import BadRequest, Unavailable
from ports.journal import Journal

AnyRequest = Request[Any, Any, Any]


def query_value(request: AnyRequest, name: str) -> str | None:
    """One query parameter as sent; given twice → 400 (which one would count?)."""
    values = request.query_params.getall(name, [])
    if len(values) > 1:
        raise BadRequest(f"{name} is given more than once")
    return values[0] if values else None


def routes(container: Container) -> list[HTTPRouteHandler]:
    if not container.settings.admin_tokens:
        return []

    def store() -> Journal:
        if container.journal is None:
            raise Unavailable("the sync state is not available in this process")
        return container.journal

    @get("/api/tenants/{tenant_id:str}/journal", summary="A tenant's sync journal (§A)")
    async def journal(request: AnyRequest, tenant_id: FromPath[str]) -> list[dict[str, Any]]:
        authorize(request, container)
        query = sync_admin.JournalQuery.parse(
            tenant_id, query_value(request, "issue_key"), query_value(request, "limit"))
        entries = await sync_admin.read_journal(query, tenants=container.tenants,
                                               journal=store())
        return [journal_json(entry) for entry in entries]

    @get("/api/dead-letters", summary="Sync actions that failed for good (§A)")
    async def dead_letters(request: AnyRequest) -> list[dict[str, Any]]:
        authorize(request, container)
        letters = await sync_admin.list_dead_letters(query_value(request, "limit"),
                                                    journal=store())
        return [dead_letter_json(letter) for letter in letters]

    @post("/api/dead-letters/{dead_letter_id:str}/retry", summary="Retry a dead letter (§A)")
    async def retry(request: AnyRequest, dead_letter_id: FromPath[str]
                    ) -> Response[dict[str, Any]]:
        authorize(request, container)
        number = await sync_admin.retry_dead_letter(dead_letter_id, journal=store(),
                                                    clock=container.clock)
        container.wake_worker()
        return Response({"id": number, "status": "queued"}, status_code=202)

    return [journal, dead_letters, retry]
