"""L1–L6: the signed lifecycle callbacks `installed` and `uninstalled` (SPEC §5 order).

405 / 431 / 413 / 415 are answered before these handlers (router and TransportGuard);
everything after — 401, 400, key fetch, signature, single use — is the core's.
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, post
from litestar.handlers import HTTPRouteHandler

from adapters.http.errors import STATUS_OF
from adapters.http.transport import JSON_BODY_OPT
from adapters.logs import event, refusals
from adapters.wiring import Container
from core.connect.tokens import ConnectRequest
from core.describe import INSTALLED_PATH, UNINSTALLED_PATH
from core.lifecycle.install import install, uninstall
from core.model.errors import ServiceError, Unavailable
from core.model.used_tokens import LifecycleResult

log = logging.getLogger("sentry_jira.lifecycle")


async def connect_request(request: Request[Any, Any, Any]) -> ConnectRequest:
    """The request as it came over the wire: raw path and query, every Authorization."""
    scope = request.scope
    raw_path = scope.get("raw_path") or scope["path"].encode("utf-8")
    authorization = [
        value.decode("latin-1") for name, value in scope["headers"] if name == b"authorization"
    ]
    return ConnectRequest.from_wire(
        method=scope["method"],
        raw_path=raw_path,
        raw_query=scope.get("query_string", b""),
        authorization=authorization,
        body=await request.body(),
    )


def routes(container: Container) -> list[HTTPRouteHandler]:
    def ports() -> dict[str, Any]:
        if container.lifecycle is None or container.install_keys is None:
            raise Unavailable("app installation is not configured", retry_after=60)
        return {
            "lifecycle": container.lifecycle,
            "keys": container.install_keys,
            "clock": container.clock,
            "settings": container.settings.app,
        }

    @post(
        INSTALLED_PATH,
        opt={JSON_BODY_OPT: True},
        status_code=204,
        summary="Signed `installed` lifecycle callback (L1–L4, L6)",
    )
    async def installed(request: Request[Any, Any, Any]) -> None:
        try:
            result = await install(await connect_request(request), **ports())
        except ServiceError as err:
            lifecycle_refused("installed", err)
            raise
        lifecycle_done("install", "app installed", result)

    @post(
        UNINSTALLED_PATH,
        opt={JSON_BODY_OPT: True},
        status_code=204,
        summary="Signed `uninstalled` lifecycle callback (L5)",
    )
    async def uninstalled(request: Request[Any, Any, Any]) -> None:
        try:
            result = await uninstall(await connect_request(request), **ports())
        except ServiceError as err:
            lifecycle_refused("uninstalled", err)
            raise
        lifecycle_done("uninstall", "app uninstalled", result)

    return [installed, uninstalled]


def lifecycle_done(name: str, message: str, result: LifecycleResult) -> None:
    """§3: one line per install / uninstall (identifiers only, never the shared secret)."""
    tenant = result.tenant
    event(log, logging.INFO, name, message,
          tenant_id=tenant.id if tenant else None,
          client_key=tenant.client_key if tenant else None,
          base_url=tenant.base_url if tenant else None,
          replay=result.replay.name.lower())


def lifecycle_refused(callback: str, err: ServiceError) -> None:
    """§3: every refused lifecycle call with its reason — the core's fixed text, never a
    value from the request; rate-limited, since the caller is not authenticated."""
    status = next((code for kind, code in STATUS_OF.items() if isinstance(err, kind)), 500)
    refusals.refused("lifecycle_refused", f"{callback} callback refused: {err.detail}",
                     callback=callback, status=status, reason=err.detail)
