"""`POST /extensions/jira/forge/{lifecycle,issue-updated,uninstall,keepalive}/` (SPEC §8.2):
raw ASGI handlers shaped like the Connect and webhook routes.

Only served while SENTRY_JIRA_FORGE_APP_ID is set (else 404). Routing (404/405) and the
transport guard (431/413/415) run first; then the Forge Invocation Token is verified —
header rules, the key by `kid` (the only egress a refused call may cause), signature and
claims, the route's own module key — before the body is read; a refusal is 401 with nothing
recorded. Then one store step spends the token's `jti` and records the site (created,
reactivated, switched from Connect; a newer system token; uninstalled), and the route
answers: 204, or for `issue-updated` the W3 acknowledgement of the mapped event.
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import asgi
from litestar.handlers import ASGIRouteHandler
from litestar.types import Receive, Scope, Send

from adapters.http.acknowledgement import acknowledge_body_and_answer, send_json
from adapters.http.body import decode_json, read_body
from adapters.http.transport import ALLOWED_METHODS_OPT, JSON_BODY_OPT
from adapters.logs import event, refusals
from adapters.wiring import Container
from core.forge.calls import record_forge_call, verify_forge_call
from core.forge.endpoints import FORGE_ENDPOINT_KEYS, FORGE_ROUTE_PREFIX
from core.forge.events import read_forge_event
from core.model.errors import ServiceError, Unauthorized, Unavailable

log = logging.getLogger("sentry_jira.forge")
SYSTEM_TOKEN_HEADER = b"x-forge-oauth-system"


def routes(container: Container) -> list[ASGIRouteHandler]:
    """The four Forge routes; none while SENTRY_JIRA_FORGE_APP_ID is unset (§8.2: 404)."""
    if container.settings.app.forge_app_id is None:
        return []
    return [_route(container, name, key) for name, key in FORGE_ENDPOINT_KEYS.items()]


def _route(container: Container, name: str, module_key: str) -> ASGIRouteHandler:
    settings = container.settings
    uninstall = name == "uninstall"
    issue_updated = name == "issue-updated"

    async def handle(scope: Scope, receive: Receive, send: Send) -> None:
        keys, sites = container.forge_keys, container.forge_sites
        if keys is None or sites is None:
            raise Unavailable("the Forge transport is not configured", retry_after=30)
        authorization: list[str] = []
        system_tokens: list[str] = []
        for header, value in scope["headers"]:
            if header == b"authorization":
                authorization.append(value.decode("latin-1"))
            elif header == SYSTEM_TOKEN_HEADER:
                system_tokens.append(value.decode("latin-1"))
        try:
            call = await verify_forge_call(authorization, module_key=module_key, keys=keys,
                                           settings=settings.app, clock=container.clock)
            site = await record_forge_call(call, system_tokens, uninstall=uninstall,
                                           sites=sites, settings=settings.app,
                                           clock=container.clock)
        except Unauthorized as err:
            _refused(name, err)
            raise
        if not issue_updated:
            if site is not None and name != "keepalive":
                event(log, logging.INFO, "forge_" + name.replace("-", "_"),
                      f"Forge {name} call", tenant=site.tenant.id,
                      status=site.tenant.status.value)
            await _no_content(send)
            return
        assert site is not None  # only preUninstall of an unknown installation gives None
        raw_body = await read_body(receive, settings.max_body_bytes)
        mapped = read_forge_event(decode_json(raw_body),
                                  installation_id=call.installation_id)
        if mapped.body is None:  # selfGenerated: an echo of this app's own writes
            await send_json(send, 200, {"status": "ignored"})
            return
        await acknowledge_body_and_answer(site, mapped.body, webhook_id=mapped.delivery_id,
                                          container=container, send=send)

    return asgi(f"{FORGE_ROUTE_PREFIX}/{name}/", http_method="POST", copy_scope=False,
                opt={JSON_BODY_OPT: True, ALLOWED_METHODS_OPT: ("POST",)},
                name=f"forge-{name}", summary=f"Forge Remote {name} (§8.2)")(handle)


def _refused(route: str, err: ServiceError) -> None:
    """§3: every refused Forge call with its reason (the core's fixed text), rate-limited."""
    refusals.refused("forge_refused", f"Forge {route} call refused: {err.detail}",
                     route=route)


async def _no_content(send: Send) -> None:
    start: Any = {"type": "http.response.start", "status": 204, "headers": []}
    await send(start)
    end: Any = {"type": "http.response.body", "body": b""}
    await send(end)
