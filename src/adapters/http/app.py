"""The Litestar application factory."""

from __future__ import annotations

from litestar import Litestar, Router
from litestar.datastructures import State
from litestar.handlers import BaseRouteHandler
from litestar.openapi import OpenAPIConfig

from adapters.http import admin, health, journal, metrics
from adapters.http import search as search_routes
from adapters.http.connect import descriptor, issue_updated
from adapters.http.connect import lifecycle as lifecycle_routes
from adapters.http.errors import EXCEPTION_HANDLERS
from adapters.http.forge import routes as forge_routes
from adapters.http.hot_path import ServiceApp
from adapters.http.jira_webhooks import issue_updated as webhook_routes
from adapters.http.jira_webhooks import sites as site_routes
from adapters.http.pages import routes as page_routes
from adapters.http.schema_page import OfflineSchemaPage, SchemaJson
from adapters.http.transport import TransportGuard, guard_factory
from adapters.wiring import Container

VERSION = "0.1.0"


def create_app(container: Container) -> Litestar:
    """Build the app around a container; routes live under the base URL's path (SPEC §5)."""
    base_path = container.settings.app.base_path
    handlers: list[BaseRouteHandler] = [*descriptor.routes(container)]
    handlers += health.routes(container)
    handlers += admin.routes(container)
    handlers += lifecycle_routes.routes(container)
    connect_ack = issue_updated.routes(container)
    handlers += connect_ack
    handlers += site_routes.routes(container)
    handlers += webhook_routes.routes(container)
    forge = forge_routes.routes(container)
    handlers += forge
    handlers += search_routes.routes(container)
    handlers += journal.routes(container)
    handlers += metrics.routes(container)
    handlers += page_routes.routes(container)  # §10
    # /schema describes the admin API: served only with it on, and behind its token (§A).
    # Offline: the page is rendered here, no UI assets from a CDN (adapters/http/schema_page.py).
    admin_on = bool(container.settings.admin_tokens)
    admin_gate = admin.AdminGate(container) if admin_on else None
    openapi = OpenAPIConfig(title="sentry-jira", version=VERSION, path=f"{base_path}/schema",
                            render_plugins=[OfflineSchemaPage("/"),
                                            SchemaJson(path="/openapi.json")])
    app = ServiceApp(
        route_handlers=[Router(path=base_path or "/", route_handlers=handlers)],
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[guard_factory(container.settings.max_body_bytes, admin_gate)],
        request_max_body_size=container.settings.max_body_bytes,
        openapi_config=openapi if admin_on else None,
        state=State({"base_path": base_path}),  # errors.log_refusal names routes without it
        on_startup=[container.startup],
        on_shutdown=[container.shutdown],
        # §3: the one logging setup (adapters/logs.py) stays in place; Litestar's own would
        # replace the root handler at start-up.
        logging_config=None,
        debug=False,
    )
    # §7: the Connect and Forge acknowledgements, straight to their routes
    # (adapters/http/hot_path.py).
    forge_ack = [h for h in forge if h.name == f"forge-{forge_routes.ISSUE_UPDATED}"]
    for handler in [*connect_ack, *forge_ack]:
        app.add_lane(base_path, handler, TransportGuard(
            handler.fn, max_body_bytes=container.settings.max_body_bytes,
            admin_gate=admin_gate))
    return app
