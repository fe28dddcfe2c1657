"""`POST /extensions/jira/issue-updated/` (W1–W4, W10): the service's hot path.

A raw ASGI handler: the route needs the raw path, query, headers and body anyway, and
skipping Litestar's request/response machinery leaves the time to the checks themselves
(SPEC §7). Routing (404/405), the transport guard (431/413/415) and the exception map
still apply, since Litestar wraps this handler like any other.
"""

from __future__ import annotations

from litestar import asgi
from litestar.handlers import ASGIRouteHandler
from litestar.types import Receive, Scope, Send

from adapters.http.acknowledgement import acknowledge_and_answer, counted
from adapters.http.body import read_body
from adapters.http.connect.remembered import acknowledge_remembered
from adapters.http.transport import ALLOWED_METHODS_OPT, JSON_BODY_OPT
from adapters.postgres.inbox import PgInbox
from adapters.wiring import Container
from core.connect.tokens import ConnectRequest
from core.connect.verify import verify_connect_site
from core.describe import ISSUE_UPDATED_PATH


def routes(container: Container) -> list[ASGIRouteHandler]:
    settings = container.settings
    lookup = container.tenant_lookup or container.tenants

    @asgi(ISSUE_UPDATED_PATH, http_method="POST", copy_scope=False,
          opt={JSON_BODY_OPT: True, ALLOWED_METHODS_OPT: ("POST",)},
          summary="Jira issue-updated webhook (W1–W4)")
    @counted("connect", container)
    async def issue_updated(scope: Scope, receive: Receive, send: Send) -> str:
        authorization: list[str] = []
        webhook_id: str | None = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization.append(value.decode("latin-1"))
            elif name == b"x-atlassian-webhook-identifier":
                webhook_id = value.decode("latin-1")
        request = ConnectRequest.from_wire(
            method="POST",
            raw_path=scope.get("raw_path") or scope["path"].encode("utf-8"),
            raw_query=scope.get("query_string", b""),
            authorization=authorization,
            body=await read_body(receive, settings.max_body_bytes),
        )
        if container.remembered_tenants is not None and isinstance(container.inbox, PgInbox):
            # §9: PostgreSQL, one round trip (adapters/http/connect/remembered.py).
            return await acknowledge_remembered(
                request, webhook_id=webhook_id, remembered=container.remembered_tenants,
                inbox=container.inbox, container=container, send=send)
        # W1 before any parse: a request that is not verified is 401 whatever its body.
        site = await verify_connect_site(request, tenants=lookup, settings=settings.app,
                                         clock=container.clock)
        return await acknowledge_and_answer(site, request.body, webhook_id=webhook_id,
                                            container=container, send=send)

    return [issue_updated]
