"""`POST /extensions/jira/issue-updated/` (W1–W4, W10): the service's hot path.

A raw ASGI handler: the route needs the raw path, query, headers and body anyway, and
skipping Litestar's request/response machinery leaves the time to the checks themselves
(SPEC §7). Routing (404/405), the transport guard (431/413/415) and the exception map
still apply, since Litestar wraps this handler like any other.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import asgi
from litestar.handlers import ASGIRouteHandler
from litestar.types import Receive, Scope, Send

from adapters.http.body import decode_json, read_body
from adapters.http.transport import ALLOWED_METHODS_OPT, JSON_BODY_OPT
from adapters.wiring import Container
from core.connect.tokens import ConnectRequest
from core.connect.verify import verify_connect_site
from core.describe import ISSUE_UPDATED_PATH
from core.issue_update.acknowledge import acknowledge_issue_update

_JSON = [(b"content-type", b"application/json")]
_encode = msgspec.json.Encoder().encode


def routes(container: Container) -> list[ASGIRouteHandler]:
    settings = container.settings
    lookup = container.tenant_lookup or container.tenants

    @asgi(ISSUE_UPDATED_PATH, http_method="POST", copy_scope=False,
          opt={JSON_BODY_OPT: True, ALLOWED_METHODS_OPT: ("POST",)},
          summary="Jira issue-updated webhook (W1–W4)")
    async def issue_updated(scope: Scope, receive: Receive, send: Send) -> None:
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
        # W1 before any parse: a request that is not verified is 401 whatever its body.
        site = await verify_connect_site(request, tenants=lookup, settings=settings.app,
                                         clock=container.clock)
        ack = await acknowledge_issue_update(
            site, request.body, webhook_id=webhook_id, inbox=container.inbox,
            clock=container.clock, decode=decode_json, encode=_encode)
        if ack.status == "accepted":
            container.wake_worker()
            status, body = 202, {"status": "accepted", "delivery": ack.delivery}
        else:
            status, body = 200, {"status": ack.status}
        payload = _encode(body)
        start: Any = {"type": "http.response.start", "status": status,
                      "headers": [*_JSON, (b"content-length", str(len(payload)).encode())]}
        await send(start)
        end: Any = {"type": "http.response.body", "body": payload}
        await send(end)

    return [issue_updated]
