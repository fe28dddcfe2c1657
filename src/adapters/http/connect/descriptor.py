"""D1/D2: the descriptor routes, and /health."""

from __future__ import annotations

from typing import Any

from litestar import Response, get
from litestar.handlers import HTTPRouteHandler

from adapters.wiring import Container, NoWorker
from core.describe import describe
from core.model.errors import Unavailable


def routes(container: Container) -> list[HTTPRouteHandler]:
    descriptor = describe(container.settings.app)  # configuration only: build once

    @get(
        ["/extensions/jira/descriptor/", "/atlassian-connect.json"],
        sync_to_thread=False,
        summary="Atlassian Connect app descriptor (D1)",
    )
    def get_descriptor() -> dict[str, Any]:
        return descriptor

    @get("/health", summary="Liveness and storage health")
    async def health() -> Response[dict[str, Any]]:
        try:
            figures = await container.health()
        except Unavailable as err:
            figures = err.figures if isinstance(err, NoWorker) else {}
            return Response(
                {"status": "unavailable", "detail": err.detail, **figures},
                status_code=503,
                headers={"Retry-After": str(err.retry_after)},
            )
        return Response({"status": "ok", **figures})

    return [get_descriptor, health]
