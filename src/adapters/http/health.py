"""GET /health: 200 with the figures, 503 with `Retry-After` when storage or the worker is
missing (§A). Not a transport route: no authentication, no body."""

from __future__ import annotations

from typing import Any

from litestar import Response, get
from litestar.handlers import HTTPRouteHandler

from adapters.wiring import Container
from core.admin.health import NoWorker, check_health
from core.model.errors import Unavailable


async def health_of(container: Container) -> dict[str, Any]:
    """The health use case over this container's ports."""
    return await check_health(
        inbox=container.inbox,
        journal=container.journal,
        clock=container.clock,
        workers_running=container.workers_running,
        ping=container.ping if container.has_database else None,
    )


def routes(container: Container) -> list[HTTPRouteHandler]:
    @get("/health", summary="Liveness and storage health")
    async def health() -> Response[dict[str, Any]]:
        try:
            figures = await health_of(container)
        except Unavailable as err:
            figures = err.figures if isinstance(err, NoWorker) else {}
            return Response(
                {"status": "unavailable", "detail": err.detail, **figures},
                status_code=503,
                headers={"Retry-After": str(err.retry_after)},
            )
        return Response({"status": "ok", **figures})

    return [health]
