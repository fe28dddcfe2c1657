"""D1/D2: the descriptor routes."""

from __future__ import annotations

from typing import Any

from litestar import get
from litestar.handlers import HTTPRouteHandler

from adapters.wiring import Container
from core.describe import describe


def routes(container: Container) -> list[HTTPRouteHandler]:
    descriptor = describe(container.settings.app)  # configuration only: build once

    @get(
        ["/extensions/jira/descriptor/", "/atlassian-connect.json"],
        sync_to_thread=False,
        summary="Atlassian Connect app descriptor (D1)",
    )
    def get_descriptor() -> dict[str, Any]:
        return descriptor

    return [get_descriptor]
