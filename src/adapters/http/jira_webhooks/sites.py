"""§8.1 / §A webhook sites under `/api/sites`: register, rotate the secret, set the credential,
remove. Admin order of checks (§5): 404 (API off: no route) → 401 → 415 → 400 → 404.

Only the registration and the rotation answer a webhook secret (shown once, `no-store`); no
answer ever carries a Jira credential.
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import Response, delete, post, put
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath

from adapters.http.admin import AnyRequest, authorize, json_body
from adapters.presenters import registered_site_json, site_json
from adapters.wiring import Container
from core.admin import sites
from core.model.errors import UpstreamFailed
from ports.jira import JiraApi

SITE = "/api/sites/{site_id:str}"
_NO_STORE = {"Cache-Control": "no-store"}
log = logging.getLogger("sentry_jira")


def routes(container: Container) -> list[HTTPRouteHandler]:
    """None at all when no admin token is configured (API off → 404)."""
    if not container.settings.admin_tokens:
        return []
    tenants = container.tenants
    app = container.settings.app

    def jira() -> JiraApi:
        if container.jira is None:
            raise UpstreamFailed("no Jira client is configured")
        return container.jira

    @post("/api/sites", summary="Register a webhook site; its secret is shown once (§8.1)")
    async def register_site(request: AnyRequest) -> Response[dict[str, Any]]:
        authorize(request, container)
        command = sites.RegisterSite.parse(await json_body(request), app.jira_hosts)
        registered = await sites.register_site(command, tenants=tenants, jira=jira(),
                                               clock=container.clock)
        log.info("webhook site %d registered (%s)", registered.site.id,
                 registered.site.flavor.value)
        return Response(registered_site_json(registered, app.base_url), status_code=201,
                        headers=_NO_STORE)

    @post(SITE + "/webhook-secret", status_code=200,
          summary="Rotate a site's webhook secret; the previous one verifies for 1 h (§8.1)")
    async def rotate_secret(request: AnyRequest, site_id: FromPath[str]) -> Response[
            dict[str, Any]]:
        authorize(request, container)
        rotated = await sites.rotate_webhook_secret(site_id, tenants=tenants,
                                                    clock=container.clock)
        log.info("webhook site %d: webhook secret rotated", rotated.site.id)
        body = registered_site_json(rotated, app.base_url)
        shown = {key: body[key] for key in ("id", "webhook_url", "webhook_secret")}
        return Response(shown, status_code=200, headers=_NO_STORE)

    @put(SITE + "/credential", summary="Replace a site's Jira credential, tried first (§8.1)")
    async def set_credential(request: AnyRequest, site_id: FromPath[str]) -> dict[str, Any]:
        authorize(request, container)
        command = sites.SetCredential.parse(site_id, await json_body(request))
        site = await sites.set_site_credential(command, tenants=tenants, jira=jira(),
                                               clock=container.clock)
        log.info("webhook site %d: Jira credential replaced", site.id)
        return site_json(site, app.base_url)

    @delete(SITE, summary="Remove a site: uninstalled, secrets and credential erased (§8.1)")
    async def remove_site(request: AnyRequest, site_id: FromPath[str]) -> None:
        authorize(request, container)
        removed = await sites.remove_site(site_id, tenants=tenants)
        log.info("webhook site %d removed", removed.id)

    return [register_site, rotate_secret, set_credential, remove_site]
