"""`POST /extensions/jira/forge/{lifecycle,issue-updated,uninstall,keepalive}/` (SPEC §8.2):
raw ASGI handlers shaped like the Connect and webhook routes.

Only served while SENTRY_JIRA_FORGE_APP_ID is set (else 404). Routing (404/405) and the
transport guard (431/413/415) run first; then the Forge Invocation Token is verified —
header rules, the key by `kid` (the only egress a refused call may cause), signature and
claims, `app.module.key` one of the route's own keys (FORGE_ROUTE_MODULE_KEYS) — before the
body is read; a refusal is 401 with nothing recorded, logged once as `forge_refused`
(adapters/http/errors.py). Then one store step spends the token's `jti` and records the site
(created, reactivated, switched from Connect; a newer system token; uninstalled), and the
route answers: 204, or for `issue-updated` the W3 acknowledgement of the mapped event
(counted on /metrics as `transport="forge"`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from litestar import asgi
from litestar.handlers import ASGIRouteHandler
from litestar.types import Receive, Scope, Send

from adapters.http.acknowledgement import acknowledge_body_and_answer, counted, send_json
from adapters.http.body import decode_json, read_body
from adapters.http.transport import ALLOWED_METHODS_OPT, JSON_BODY_OPT
from adapters.logs import event
from adapters.wiring import Container
from core.forge.calls import record_forge_call, verify_forge_call
from core.forge.endpoints import FORGE_ROUTE_MODULE_KEYS, FORGE_ROUTE_PATHS
from core.forge.events import read_forge_event
from core.model.errors import Unavailable
from core.model.forge import VerifiedForgeCall
from core.model.tenant import VerifiedSite

log = logging.getLogger("sentry_jira.forge")
SYSTEM_TOKEN_HEADER = b"x-forge-oauth-system"
ISSUE_UPDATED = "issue-updated"


def routes(container: Container) -> list[ASGIRouteHandler]:
    """The four Forge routes; none while SENTRY_JIRA_FORGE_APP_ID is unset (§8.2: 404)."""
    if container.settings.app.forge_app_id is None:
        return []
    return [_issue_updated_route(container) if name == ISSUE_UPDATED
            else _site_route(container, name) for name in FORGE_ROUTE_PATHS]


Verifier = Callable[[Scope], Awaitable[tuple[VerifiedForgeCall, VerifiedSite | None]]]


def _verifier(container: Container, name: str) -> Verifier:
    """The steps every Forge route takes before its own: verify the FIT against the route's
    module keys (§8.2), then record the call. A refusal raises `Unauthorized` (401, logged
    once as `forge_refused` by adapters/http/errors.py) with nothing recorded."""
    settings = container.settings.app
    module_keys = FORGE_ROUTE_MODULE_KEYS[name]
    uninstall = name == "uninstall"

    async def verified(scope: Scope) -> tuple[VerifiedForgeCall, VerifiedSite | None]:
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
        call = await verify_forge_call(authorization, module_keys=module_keys, keys=keys,
                                       settings=settings, clock=container.clock,
                                       decode=decode_json)
        site = await record_forge_call(call, system_tokens, uninstall=uninstall, sites=sites,
                                       settings=settings, clock=container.clock)
        return call, site

    return verified


def _site_route(container: Container, name: str) -> ASGIRouteHandler:
    """lifecycle, uninstall, keepalive: the site recorded, then 204."""
    verified = _verifier(container, name)

    async def handle(scope: Scope, receive: Receive, send: Send) -> None:
        _, site = await verified(scope)
        if site is not None and name != "keepalive":
            event(log, logging.INFO, "forge_" + name, f"Forge {name} call",
                  tenant=site.tenant.id, status=site.tenant.status.value)
        await _no_content(send)

    return _asgi(name)(handle)


def _issue_updated_route(container: Container) -> ASGIRouteHandler:
    """issue-updated: the W3 acknowledgement of the mapped event, counted like the Connect and
    webhook deliveries (`transport="forge"` on /metrics, §3)."""
    verified = _verifier(container, ISSUE_UPDATED)
    max_body_bytes = container.settings.max_body_bytes

    @counted("forge", container)
    async def handle(scope: Scope, receive: Receive, send: Send) -> str:
        call, site = await verified(scope)
        assert site is not None  # only preUninstall of an unknown installation gives None
        raw_body = await read_body(receive, max_body_bytes)
        mapped = read_forge_event(decode_json(raw_body), installation_id=call.installation_id)
        if mapped.body is None:  # selfGenerated: an echo of this app's own writes
            await send_json(send, 200, {"status": "ignored"})
            return "ignored"
        return await acknowledge_body_and_answer(site, mapped.body,
                                                 webhook_id=mapped.delivery_id,
                                                 container=container, send=send)

    return _asgi(ISSUE_UPDATED)(handle)


def _asgi(name: str) -> Callable[[Any], ASGIRouteHandler]:
    return asgi(FORGE_ROUTE_PATHS[name], http_method="POST", copy_scope=False,
                opt={JSON_BODY_OPT: True, ALLOWED_METHODS_OPT: ("POST",)},
                name=f"forge-{name}", summary=f"Forge Remote {name} (§8.2)")


async def _no_content(send: Send) -> None:
    start: Any = {"type": "http.response.start", "status": 204, "headers": []}
    await send(start)
    end: Any = {"type": "http.response.body", "body": b""}
    await send(end)
