"""`GET /metrics` (§3): this process's counters in the Prometheus text format.

Access (`SENTRY_JIRA_METRICS`, docs/security.md): `public` (the default, §3 "no auth, no
per-tenant labels") answers anyone and never reads the Authorization header. The opt-in
hardening modes: `token` answers 401 unless `Authorization: Bearer` carries a metrics token
(`SENTRY_JIRA_METRICS_TOKEN`) or an admin token — with neither configured the route does not
exist (404) — and `off` removes the route (404). The database-wide gauges are read at most
every 5 s (adapters/metrics.py).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.handlers import HTTPRouteHandler

from adapters.logs import refusals
from adapters.metrics import CONTENT_TYPE
from adapters.wiring import Container
from core.admin.bindings import check_admin_token
from core.model.errors import Unauthorized


def authorize_scrape(
    request: Request[Any, Any, Any], tokens: tuple[str, ...], route: str
) -> None:
    """401 unless exactly one `Authorization: Bearer` header carries one of `tokens`. The
    refusal line names `route` as every refusal line does (adapters/http/errors.py
    `log_refusal`): the route's template with the base path, e.g. `/jira/metrics`."""
    values = request.headers.getall("authorization", [])
    try:
        if len(values) > 1:
            raise Unauthorized("more than one Authorization header")
        check_admin_token(values[0] if values else None, tokens)
    except Unauthorized as err:
        client = request.scope.get("client")
        refusals.refused("metrics_refused", f"refused {request.method} {route}: {err.detail}",
                         reason=err.detail, route=route, method=request.method,
                         client=client[0] if client else None)
        raise Unauthorized("a metrics token is required: Authorization: Bearer <token>") from None


def routes(container: Container) -> list[HTTPRouteHandler]:
    settings = container.settings
    mode = settings.metrics_route
    if mode == "off":
        return []
    tokens = settings.metrics_tokens + settings.admin_tokens
    route = settings.app.base_path + "/metrics"  # the router mounts every route under it
    metrics = container.metrics

    @get("/metrics", summary="Prometheus metrics of this process (§3)", include_in_schema=False)
    async def scrape(request: Request[Any, Any, Any]) -> Response[bytes]:
        if mode == "token":  # `public` never looks at the Authorization header
            authorize_scrape(request, tokens, route)
        await metrics.refresh(inbox=container.inbox, journal=container.journal,
                              clock=container.clock)
        return Response(metrics.exposition(), media_type=CONTENT_TYPE,
                        headers={"cache-control": "no-store"})

    return [scrape]
